package feedback

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/greypit/greypit/internal/classify"
	"github.com/greypit/greypit/internal/lists"
	"github.com/greypit/greypit/internal/store"
)

func newApplier(t *testing.T) (*Applier, *store.Bolt) {
	t.Helper()
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "db"), store.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ls, err := lists.NewSet(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &Applier{Store: st, Classifier: &classify.Classifier{Lists: ls, Store: st},
		BlackTTL: 24 * time.Hour, WhiteTTL: 36 * 24 * time.Hour, PrefixV4: 24, PrefixV6: 64}, st
}

func TestSpamThenHam(t *testing.T) {
	ctx := context.Background()
	a, st := newApplier(t)
	now := time.Now()
	st.Put(ctx, store.Entry{Kind: store.White, Key: "192.0.2.9", Source: classify.SourceGreylist, Reason: "passed greylisting", Created: now, Updated: now, Expires: now.Add(time.Hour)})

	r, err := a.Apply(ctx, Verdict{Kind: Spam, Client: "192.0.2.9", Reason: "GTUBE", Source: "feedback:cli"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Path != classify.Black || len(r.Changes) != 2 || !strings.Contains(r.Rule, "source feedback:cli") {
		t.Fatalf("spam: %+v", r)
	}
	if _, err := st.Get(ctx, store.White, "192.0.2.9"); err == nil {
		t.Error("white entry kept")
	}
	e, err := st.Get(ctx, store.Black, "192.0.2.9")
	if err != nil || e.Reason != "spam verdict: GTUBE" || e.Expires.Sub(now) < 23*time.Hour {
		t.Fatalf("black entry: %+v %v", e, err)
	}

	r, err = a.Apply(ctx, Verdict{Kind: Ham, Client: "::ffff:192.0.2.9", Source: "feedback:http"})
	if err != nil || r.Path != classify.White || !strings.Contains(r.Rule, "feedback:http") {
		t.Fatalf("ham: %+v %v", r, err)
	}
	if _, err := st.Get(ctx, store.Black, "192.0.2.9"); err == nil {
		t.Error("black entry kept")
	}
	for _, bad := range []Verdict{{Kind: Spam, Client: "nonsense", Source: "x"}, {Kind: "maybe", Client: "192.0.2.1", Source: "x"}, {Kind: Spam, Client: "192.0.2.1"}} {
		if _, err := a.Apply(ctx, bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// A log's spam verdict does not override an operator's white entry; an
// operator's verdict does. A dry run changes nothing.
func TestLogVerdictRespectsOperator(t *testing.T) {
	ctx := context.Background()
	a, st := newApplier(t)
	now := time.Now()
	st.Put(ctx, store.Entry{Kind: store.White, Key: "198.51.100.0/24", Source: "db", Reason: "partner", Created: now, Updated: now})
	r, err := a.Apply(ctx, Verdict{Kind: Spam, Client: "198.51.100.7", Source: "follow:rspamd"})
	if err != nil || r.Skipped == "" || r.Path != classify.White {
		t.Fatalf("log verdict: %+v %v", r, err)
	}
	a.DryRun = true
	r, err = a.Apply(ctx, Verdict{Kind: Spam, Client: "203.0.113.5", Source: "follow:rspamd"})
	if err != nil || len(r.Changes) != 1 || r.Path != classify.Grey {
		t.Fatalf("dry run: %+v %v", r, err)
	}
	a.DryRun = false
	r, err = a.Apply(ctx, Verdict{Kind: Spam, Client: "198.51.100.7", Source: "feedback:cli"})
	if err != nil || r.Path != classify.Black {
		t.Fatalf("operator verdict: %+v %v", r, err)
	}
}

func TestCandidatesAndPromotion(t *testing.T) {
	ctx := context.Background()
	a, st := newApplier(t)
	dir := t.TempDir()
	prot := filepath.Join(dir, "users")
	os.WriteFile(prot, []byte("# users\nAlice@Example.org\n\nformer@example.org # left 2025\n"), 0o600)
	var err error
	if a.Protected, err = LoadProtected([]string{prot}); err != nil {
		t.Fatal(err)
	}
	if a.Protected.Len() != 2 {
		t.Fatalf("%d protected addresses", a.Protected.Len())
	}
	a.PromoteNetworks, a.PromoteDays = 3, 2
	day := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

	for _, addr := range []string{"alice@example.org", "Postmaster@example.org", "abuse@example.org", "former@example.org"} {
		r, err := a.Candidate(ctx, addr, "192.0.2.1", "test", "", day)
		if err != nil || r.Skipped == "" {
			t.Errorf("%s proposed: %+v %v", addr, r, err)
		}
	}
	// Three networks on one day are not enough, nor is a second day from a
	// network already counted; a third network on the second day is.
	steps := []struct {
		client string
		day    int
		state  string
	}{
		{"192.0.2.1", 0, "pending"}, {"192.0.2.200", 0, "pending"}, {"198.51.100.1", 0, "pending"},
		{"198.51.100.2", 1, "pending"}, {"203.0.113.9", 1, "approved"},
	}
	for _, s := range steps {
		r, err := a.Candidate(ctx, "ghost@example.org", s.client, "test", "", day.AddDate(0, 0, s.day))
		if err != nil || r.State != s.state {
			t.Fatalf("%s day %d: %+v %v, want %s", s.client, s.day, r, err, s.state)
		}
	}
	if e, err := st.Get(ctx, store.Trap, "ghost@example.org"); err != nil || e.Source != "candidates:auto" {
		t.Fatalf("trap entry: %+v %v", e, err)
	}
	if r, _ := a.Candidate(ctx, "ghost@example.org", "203.0.113.1", "test", "", day); r.Skipped != "already a spamtrap" {
		t.Errorf("after promotion: %+v", r)
	}

	if _, err := a.Approve(ctx, []string{"new@example.org", "alice@example.org"}, "cli"); err == nil {
		t.Error("protected address approved")
	}
	if _, err := st.Get(ctx, store.Trap, "new@example.org"); err == nil {
		t.Error("approve stored something before refusing")
	}
	// A reload picks up a new user; a broken file keeps the old set.
	os.WriteFile(prot, []byte("alice@example.org\nnew@example.org\n"), 0o600)
	if err := a.Protected.Reload(); err != nil || a.NeverTrap("new@example.org") == "" || a.NeverTrap("former@example.org") != "" {
		t.Fatalf("reload: %v", err)
	}
	os.WriteFile(prot, []byte("not an address\n"), 0o600)
	if err := a.Protected.Reload(); err == nil || !strings.Contains(err.Error(), ":1:") || a.NeverTrap("new@example.org") == "" {
		t.Fatalf("broken reload: %v", err)
	}
	if n, err := a.Reject(ctx, []string{"typo@example.org"}, "cli"); n != 1 || err != nil {
		t.Fatal(n, err)
	}
	for i := range 5 {
		r, _ := a.Candidate(ctx, "typo@example.org", "10.0."+string(rune('0'+i))+".1", "test", "", day.AddDate(0, 0, i))
		if r.State != "rejected" {
			t.Fatalf("rejected candidate: %+v", r)
		}
	}
	if _, err := st.Get(ctx, store.Trap, "typo@example.org"); err == nil {
		t.Error("rejected candidate promoted")
	}
}
