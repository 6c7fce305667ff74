package store

import (
	"context"
	"net/netip"
	"path/filepath"
	"testing"
	"time"
)

// MatchAll looks only at the prefix lengths that occur; entries written by
// Put, Refresh and PutAll, and entries already in the file at open, are
// all found.
func TestMatchAllPrefixLengths(t *testing.T) {
	path := filepath.Join(t.TempDir(), "g.db")
	b, err := OpenBolt(path, BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	now := time.Now()
	a := netip.MustParseAddr("198.51.100.7")
	if es, err := b.MatchAll(ctx, White, a); err != nil || len(es) != 0 {
		t.Fatalf("empty store: %v %v", es, err)
	}
	b.Put(ctx, Entry{Kind: White, Key: "198.51.0.0/16", Created: now, Updated: now})
	b.Refresh(ctx, "198.51.100.7", "r", "greylist", now, time.Hour)
	b.PutAll(ctx, []Entry{{Kind: Black, Key: "2001:db8::/33", Created: now, Updated: now}})
	check := func(b *Bolt, when string) {
		t.Helper()
		if es, err := b.MatchAll(ctx, White, a); err != nil || len(es) != 2 || es[0].Key != "198.51.100.7" || es[1].Key != "198.51.0.0/16" {
			t.Errorf("%s: white %+v %v", when, es, err)
		}
		if e, err := b.Match(ctx, Black, netip.MustParseAddr("2001:db8:1::1")); err != nil || e.Key != "2001:db8::/33" {
			t.Errorf("%s: black %+v %v", when, e, err)
		}
		if _, err := b.Match(ctx, Black, a); err != ErrNotFound {
			t.Errorf("%s: IPv4 black: %v", when, err)
		}
	}
	check(b, "after writes")
	b.Close()
	if _, err := b.MatchAll(ctx, White, netip.MustParseAddr("2001:db8::1")); err == nil {
		t.Error("MatchAll on a closed store: no error")
	}
	b2, err := OpenBolt(path, BoltOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	check(b2, "reopened")
}
