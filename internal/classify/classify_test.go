package classify

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/greypit/greypit/internal/lists"
	"github.com/greypit/greypit/internal/store"
)

// fixture is a classifier over real list files and a real bolt store.
type fixture struct {
	c                    *Classifier
	st                   *store.Bolt
	allowFile, blockFile string
}

func newFixture(t *testing.T, allow, block string) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{allowFile: filepath.Join(dir, "allow"), blockFile: filepath.Join(dir, "block")}
	if err := os.WriteFile(f.allowFile, []byte(allow), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.blockFile, []byte(block), 0o644); err != nil {
		t.Fatal(err)
	}
	set, err := lists.NewSet([]string{f.allowFile}, []string{f.blockFile})
	if err != nil {
		t.Fatalf("NewSet: %v", err)
	}
	st, err := store.OpenBolt(filepath.Join(dir, "greypit.db"), store.BoltOptions{})
	if err != nil {
		t.Fatalf("OpenBolt: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	f.st = st
	f.c = &Classifier{Lists: set, Store: st}
	return f
}

func (f *fixture) put(t *testing.T, k store.Kind, key, source, reason string) {
	t.Helper()
	now := time.Now().Round(0)
	e := store.Entry{Kind: k, Key: key, Source: source, Reason: reason, Created: now, Updated: now}
	if err := f.st.Put(context.Background(), e); err != nil {
		t.Fatalf("Put %s %s: %v", k, key, err)
	}
}

func (f *fixture) classify(t *testing.T, addr string) Decision {
	t.Helper()
	d, err := f.c.Classify(context.Background(), netip.MustParseAddr(addr))
	if err != nil {
		t.Fatalf("Classify(%s): %v", addr, err)
	}
	return d
}

const allowList = `# operator's allow list
192.0.2.1
2001:db8:a::/48   # partner
`

const blockList = `203.0.113.0/24
# comment

198.51.100.166
`

func TestPrecedence(t *testing.T) {
	f := newFixture(t, allowList, blockList)
	// Rule 1 vs 2: allowed address also black in the store.
	f.put(t, store.Black, "192.0.2.1", "trap", "spamtrap hit")
	f.put(t, store.Black, "2001:db8:a::/64", "db", "")
	// Rule 2 vs 3: black prefix, operator-white address inside it.
	f.put(t, store.Black, "198.51.100.0/25", "trap", "hit the trap")
	f.put(t, store.White, "198.51.100.7", "db", "")
	// Rule 3 vs 4: operator-white address inside a blocked prefix.
	f.put(t, store.White, "203.0.113.5", "db", "customer")
	// Rule 4 vs 5: greylist-earned white inside a blocked prefix.
	f.put(t, store.White, "203.0.113.9", SourceGreylist, "passed greylisting")
	// Rule 4 vs 5 again, block list by single address.
	f.put(t, store.White, "198.51.100.166", SourceGreylist, "passed greylisting")
	// Rule 5 alone.
	f.put(t, store.White, "192.0.2.50", SourceGreylist, "passed greylisting")
	// Black with no reason.
	f.put(t, store.Black, "192.0.2.60", "db", "")

	tests := []struct {
		addr       string
		path       Path
		rulePrefix string
		reason     string
		entryKey   string // "" means no store entry decided
		listText   string // "" means no list entry decided
	}{
		// 1. allow beats store black.
		{"192.0.2.1", White, "lists.allow " + f.allowFile + ":2 (192.0.2.1)", "", "", "192.0.2.1"},
		{"2001:db8:a::1", White, "lists.allow " + f.allowFile + ":3 (2001:db8:a::/48)", "", "", "2001:db8:a::/48"},
		// IPv4-mapped clients meet IPv4 list entries.
		{"::ffff:192.0.2.1", White, "lists.allow " + f.allowFile + ":2 (192.0.2.1)", "", "", "192.0.2.1"},
		// 2. store black beats store white, even a more specific white.
		// A trap entry's reason names the trap: the client gets TrapReason.
		{"198.51.100.7", Black, "store black 198.51.100.0/25, source trap, reason \"hit the trap\"", TrapReason, "198.51.100.0/25", ""},
		// 3. manual white beats the block list.
		{"203.0.113.5", White, "store white 203.0.113.5, source db, reason \"customer\"", "", "203.0.113.5", ""},
		// 4. block list beats greylist-earned white.
		{"203.0.113.9", Black, "lists.block " + f.blockFile + ":1 (203.0.113.0/24)", "listed in local block list", "", "203.0.113.0/24"},
		{"198.51.100.166", Black, "lists.block " + f.blockFile + ":4 (198.51.100.166)", "listed in local block list", "", "198.51.100.166"},
		// Plain block-list hit.
		{"203.0.113.200", Black, "lists.block " + f.blockFile + ":1 (203.0.113.0/24)", "listed in local block list", "", "203.0.113.0/24"},
		// 5. greylist-earned white.
		{"192.0.2.50", White, "store white 192.0.2.50, source greylist", "", "192.0.2.50", ""},
		// A black entry without reason still gives the client one.
		{"192.0.2.60", Black, "store black 192.0.2.60, source db", "blacklisted", "192.0.2.60", ""},
		// 6. default grey.
		{"192.0.2.99", Grey, "no entry: unknown hosts are greylisted", "", "", ""},
		{"2001:db8:b::1", Grey, "no entry: unknown hosts are greylisted", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			d := f.classify(t, tt.addr)
			if d.Path != tt.path {
				t.Errorf("Path = %s, want %s (rule %q)", d.Path, tt.path, d.Rule)
			}
			if !strings.HasPrefix(d.Rule, tt.rulePrefix) {
				t.Errorf("Rule = %q, want prefix %q", d.Rule, tt.rulePrefix)
			}
			if d.Reason != tt.reason {
				t.Errorf("Reason = %q, want %q", d.Reason, tt.reason)
			}
			switch {
			case tt.entryKey == "" && d.Entry != nil:
				t.Errorf("Entry = %+v, want none", *d.Entry)
			case tt.entryKey != "" && (d.Entry == nil || d.Entry.Key != tt.entryKey):
				t.Errorf("Entry = %+v, want key %q", d.Entry, tt.entryKey)
			}
			switch {
			case tt.listText == "" && d.List != nil:
				t.Errorf("List = %+v, want none", *d.List)
			case tt.listText != "" && (d.List == nil || d.List.Text != tt.listText):
				t.Errorf("List = %+v, want text %q", d.List, tt.listText)
			}
		})
	}
}

func TestExpiredEntriesDoNotDecide(t *testing.T) {
	f := newFixture(t, "", "")
	past := time.Now().Add(-time.Hour).Round(0)
	for _, k := range []store.Kind{store.Black, store.White} {
		e := store.Entry{Kind: k, Key: "192.0.2.7", Source: "db", Created: past.Add(-time.Hour), Updated: past.Add(-time.Hour), Expires: past}
		if err := f.st.Put(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	if d := f.classify(t, "192.0.2.7"); d.Path != Grey {
		t.Errorf("expired entries: Path = %s (%s), want grey", d.Path, d.Rule)
	}
}

func TestDescribeExpiry(t *testing.T) {
	f := newFixture(t, "", "")
	exp := time.Date(2099, 1, 2, 3, 4, 5, 0, time.UTC)
	now := time.Now().Round(0)
	e := store.Entry{Kind: store.Black, Key: "192.0.2.0/24", Source: "db", Reason: `say "no"`, Created: now, Updated: now, Expires: exp}
	if err := f.st.Put(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	d := f.classify(t, "192.0.2.1")
	want := `store black 192.0.2.0/24, source db, reason "say \"no\"", expires 2099-01-02T03:04:05Z`
	if d.Rule != want || d.Reason != `say "no"` {
		t.Errorf("Rule = %q, Reason = %q; want %q, %q", d.Rule, d.Reason, want, `say "no"`)
	}
}

// A store failure must not turn a host white or black: the decision is
// grey (greylisting then answers 4xx) and the error is reported. The allow
// list, which needs no store, still decides.
func TestStoreError(t *testing.T) {
	f := newFixture(t, "192.0.2.1\n", "")
	if err := f.st.Close(); err != nil {
		t.Fatal(err)
	}
	d, err := f.c.Classify(context.Background(), netip.MustParseAddr("192.0.2.2"))
	if err == nil {
		t.Fatal("Classify on a closed store: no error")
	}
	if d.Path != Grey || d.Rule != "store unavailable" {
		t.Errorf("decision on store error = %s %q, want grey \"store unavailable\"", d.Path, d.Rule)
	}
	d, err = f.c.Classify(context.Background(), netip.MustParseAddr("192.0.2.1"))
	if err != nil || d.Path != White {
		t.Errorf("allow-listed host with store down = %s, %v; want white, nil", d.Path, err)
	}
}

// After a reload the new lists decide.
func TestReloadedListsApply(t *testing.T) {
	f := newFixture(t, "", "")
	if d := f.classify(t, "192.0.2.1"); d.Path != Grey {
		t.Fatalf("before reload: %s", d.Path)
	}
	if err := os.WriteFile(f.blockFile, []byte("192.0.2.0/24\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := f.c.Lists.Reload(); err != nil {
		t.Fatal(err)
	}
	if d := f.classify(t, "192.0.2.1"); d.Path != Black {
		t.Errorf("after reload: %s (%s), want black", d.Path, d.Rule)
	}
}

func ExampleClassifier_Classify() {
	dir, _ := os.MkdirTemp("", "classify")
	defer os.RemoveAll(dir)
	os.WriteFile(filepath.Join(dir, "allow"), []byte("192.0.2.0/24\n"), 0o644)
	set, _ := lists.NewSet([]string{filepath.Join(dir, "allow")}, nil)
	st, _ := store.OpenBolt(filepath.Join(dir, "db"), store.BoltOptions{})
	defer st.Close()
	c := &Classifier{Lists: set, Store: st}
	d, _ := c.Classify(context.Background(), netip.MustParseAddr("192.0.2.9"))
	fmt.Println(d.Path)
	d, _ = c.Classify(context.Background(), netip.MustParseAddr("198.51.100.9"))
	fmt.Println(d.Path, d.Rule)
	// Output:
	// white
	// grey no entry: unknown hosts are greylisted
}

// An address white by greylisting inside an operator's white prefix that
// the block list also covers: the operator's entry decides (rule 3), even
// though the earned /32 is the more specific white entry.
func TestEarnedWhiteDoesNotHideManualPrefix(t *testing.T) {
	f := newFixture(t, "", "192.0.2.0/24\n")
	f.put(t, store.White, "192.0.2.0/24", "db", "partner")
	f.put(t, store.White, "192.0.2.5", SourceGreylist, "passed greylisting")
	for _, a := range []string{"192.0.2.5", "192.0.2.6"} {
		d := f.classify(t, a)
		if d.Path != White || d.Entry == nil || d.Entry.Key != "192.0.2.0/24" {
			t.Errorf("%s: %+v, want white by the operator's 192.0.2.0/24", a, d)
		}
	}
	// Without the operator's prefix, the block list beats the earned entry.
	if _, err := f.st.Delete(context.Background(), store.White, "192.0.2.0/24"); err != nil {
		t.Fatal(err)
	}
	if d := f.classify(t, "192.0.2.5"); d.Path != Black {
		t.Errorf("192.0.2.5 without the operator prefix: %+v, want black", d)
	}
}
