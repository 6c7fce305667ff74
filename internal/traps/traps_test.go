package traps

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/greypit/greypit/internal/classify"
	"github.com/greypit/greypit/internal/lists"
	"github.com/greypit/greypit/internal/store"
)

// fixture is a checker over a real bolt store, real list files and a real
// traps file.
type fixture struct {
	c   *Checker
	st  *store.Bolt
	now time.Time
}

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	allow := writeFile(t, "allow", "192.0.2.1\n")
	block := writeFile(t, "block", "")
	set, err := lists.NewSet([]string{allow}, []string{block})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "greypit.db"), store.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	files, err := LoadFiles([]string{writeFile(t, "traps", "# traps\nfile-trap@example.org\n\n Other@Example.ORG # comment\n")})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{st: st, now: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	f.c = &Checker{
		Classifier: &classify.Classifier{Lists: set, Store: st},
		Store:      st, Files: files,
		Domains:   []string{"example.org"},
		WebDomain: "trap.example.net",
		BlackTTL:  24 * time.Hour, MaxTTL: 72 * time.Hour, Keep: 90 * 24 * time.Hour,
		Now: func() time.Time { return f.now },
	}
	ctx := context.Background()
	now := time.Now()
	for _, e := range []store.Entry{
		{Kind: store.Trap, Key: "stored@example.org", Source: "db", Created: now, Updated: now},
		{Kind: store.White, Key: "192.0.2.2", Source: classify.SourceGreylist, Created: now, Updated: now},
		{Kind: store.Black, Key: "192.0.2.3", Source: "db", Created: now, Updated: now},
	} {
		if err := st.Put(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func TestCheck(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if err := f.st.PutHarvest(ctx, store.Harvest{Address: "kalo.mip@trap.example.net", Visitor: "198.51.100.9", Time: f.now}); err != nil {
		t.Fatal(err)
	}
	grey := "192.0.2.99"
	for _, tt := range []struct {
		client, from, rcpt string
		field, rule        string // "" means no hit
	}{
		{grey, "a@example.com", "user@example.org", "", ""},
		{grey, "a@example.com", "stored@example.org", "rcpt", "store spamtrap stored@example.org"},
		{grey, "a@example.com", "<Stored@EXAMPLE.org.>", "rcpt", "store spamtrap stored@example.org"},
		{grey, "a@example.com", "stored+tag@example.org", "rcpt", "store spamtrap stored@example.org"},
		{grey, "a@example.com", "file-trap@example.org", "rcpt", "traps.files"},
		{grey, "a@example.com", "other@example.org", "rcpt", "traps.files"},
		{grey, "stored@example.org", "user@example.org", "from", "store spamtrap stored@example.org"},
		{grey, "stored@example.org", "", "from", "store spamtrap stored@example.org"},
		{grey, "a@example.com", "x@sub.example.org", "", ""},
		{grey, "a@example.com", "x@example.org.evil", "rcpt", "traps.domains: example.org.evil is not ours"},
		{grey, "a@example.com", "x@badexample.org", "rcpt", "traps.domains"},
		{grey, "a@example.com", "x@[192.0.2.7]", "rcpt", "traps.domains"},
		// The domains rule is for recipients only.
		{grey, "a@foreign.example", "", "", ""},
		{grey, "a@example.com", "kalo.mip@trap.example.net", "rcpt", "traps.web_domain trap.example.net"},
		{grey, "a@example.com", "never.issued@trap.example.net", "rcpt", "traps.web_domain"},
		// Role addresses, anywhere.
		{grey, "a@example.com", "postmaster@example.org", "", ""},
		{grey, "a@example.com", "Abuse@foreign.example", "", ""},
		{grey, "a@example.com", "postmaster+x@trap.example.net", "", ""},
		{grey, "a@example.com", "postmaster", "", ""},
		{grey, "postmaster@trap.example.net", "", "", ""},
		// The null sender's bounces.
		{grey, "", "stored@example.org", "", ""},
		{grey, "", "x@foreign.example", "", ""},
		// Only grey hosts: allow-listed, white and black ones never.
		{"192.0.2.1", "a@example.com", "stored@example.org", "", ""},
		{"192.0.2.2", "a@example.com", "stored@example.org", "", ""},
		{"192.0.2.3", "a@example.com", "stored@example.org", "", ""},
		{"::ffff:192.0.2.1", "stored@example.org", "", "", ""},
	} {
		h, ok, err := f.c.Check(ctx, netip.MustParseAddr(tt.client), tt.from, tt.rcpt)
		if err != nil {
			t.Fatalf("%+v: %v", tt, err)
		}
		if ok != (tt.field != "") || ok && (h.Field != tt.field || !strings.HasPrefix(h.Rule, tt.rule)) {
			t.Errorf("Check(%s, %q, %q) = %+v %v, want field %q rule %q", tt.client, tt.from, tt.rcpt, h, ok, tt.field, tt.rule)
		}
		if ok && strings.Contains(h.Address, "kalo") && (h.Harvest == nil || h.Harvest.Visitor != "198.51.100.9") {
			t.Errorf("harvested address without its visit: %+v", h)
		}
	}
	// A nil checker (traps off) traps nothing.
	var none *Checker
	if _, ok, _ := none.Check(ctx, netip.MustParseAddr(grey), "a@b.example", "stored@example.org"); ok {
		t.Error("nil checker hit")
	}
}

// Record blacklists with TTLs doubling per earlier hit, capped, and the
// classifier then tells the client nothing about the trap.
func TestRecord(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	client := netip.MustParseAddr("203.0.113.7")
	hv := &store.Harvest{Address: "kalo.mip@trap.example.net", Visitor: "198.51.100.9", UserAgent: "Harvester/2", Time: f.now.Add(-time.Hour)}
	for i, want := range []time.Duration{24 * time.Hour, 48 * time.Hour, 72 * time.Hour, 72 * time.Hour} {
		e, err := f.c.Record(ctx, client, "bot.example", "a@example.com", Hit{Field: "rcpt", Address: "kalo.mip@trap.example.net", Rule: "traps.web_domain trap.example.net", Harvest: hv})
		if err != nil {
			t.Fatal(err)
		}
		if got := e.Expires.Sub(f.now); got != want || e.Count != int64(i+1) || e.Source != SourceTrap {
			t.Errorf("hit %d: ttl %v count %d source %q, want %v", i, got, e.Count, e.Source, want)
		}
		f.now = f.now.Add(time.Minute)
	}
	d, err := f.c.Classifier.Classify(ctx, client)
	if err != nil {
		t.Fatal(err)
	}
	if d.Path != classify.Black || d.Reason != classify.TrapReason {
		t.Errorf("decision %+v", d)
	}
	for _, want := range []string{"spamtrap hit by 203.0.113.7 (helo bot.example)", "RCPT TO <kalo.mip@trap.example.net>", "harvested by 198.51.100.9 at 2026-12-01T11:00:00Z", "Harvester/2", "3 earlier hit(s)"} {
		if !strings.Contains(d.Rule, want) {
			t.Errorf("rule lacks %q: %s", want, d.Rule)
		}
	}
	var hits []store.TrapHit
	f.st.ListTrapHits(ctx, func(h store.TrapHit) error { hits = append(hits, h); return nil })
	if len(hits) != 4 || hits[3].Prior != 3 || hits[0].Harvest == nil {
		t.Errorf("hits %+v", hits)
	}
	// Hits older than Keep no longer count.
	f.now = f.now.Add(91 * 24 * time.Hour)
	e, _ := f.c.Record(ctx, client, "", "a@example.com", Hit{Field: "from", Address: "stored@example.org", Rule: "x"})
	if e.Expires.Sub(f.now) != 24*time.Hour {
		t.Errorf("after keep: ttl %v", e.Expires.Sub(f.now))
	}
}

func TestCanonical(t *testing.T) {
	for in, want := range map[string]string{
		"Bait@Example.ORG":    "bait@example.org",
		" <bait@example.org>": "bait@example.org",
		"bait@example.org.":   "bait@example.org",
		"a@b@example.org":     "a@b@example.org",
	} {
		if got, err := Canonical(in); err != nil || got != want {
			t.Errorf("Canonical(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "bait", "@example.org", "bait@", "ba it@example.org", "bait@.example.org",
		"bait@exa..mple", "bait@x\x00", strings.Repeat("a", 65) + "@example.org", "a@" + strings.Repeat("b", 253)} {
		if got, err := Canonical(bad); err == nil {
			t.Errorf("Canonical(%q) = %q, want an error", bad, got)
		}
	}
}
