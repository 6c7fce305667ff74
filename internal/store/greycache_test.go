package store

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// Sightings wait in memory but are seen by Get and decide the next
// attempt; a first pass is on disk when Greylist returns; List and Delete
// see the newest state.
func TestGreyCache(t *testing.T) {
	b, err := OpenBolt(filepath.Join(t.TempDir(), "g.db"), BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := NewGreyCache(b)
	defer c.Close()
	ctx := context.Background()
	p := GreyParams{PassDelay: time.Minute, RetryWindow: time.Hour, PassedTTL: time.Hour}
	t0 := time.Now()
	if _, o, _ := c.Greylist(ctx, "k", "c", t0, p); o != GreyNew {
		t.Fatalf("first: %v", o)
	}
	if _, err := b.Get(ctx, Grey, "k"); err != ErrNotFound {
		t.Errorf("a sighting was written at once: %v", err)
	}
	if e, err := c.Get(ctx, Grey, "k"); err != nil || e.Count != 1 {
		t.Errorf("Get of a pending sighting: %+v %v", e, err)
	}
	if _, o, _ := c.Greylist(ctx, "k", "c", t0.Add(30*time.Second), p); o != GreyEarly {
		t.Errorf("early: %v", o)
	}
	if _, o, _ := c.Greylist(ctx, "k", "c", t0.Add(2*time.Minute), p); o != GreyPass {
		t.Errorf("pass: %v", o)
	}
	if e, err := b.Get(ctx, Grey, "k"); err != nil || e.Passed.IsZero() || e.Count != 3 {
		t.Errorf("first pass not on disk: %+v %v", e, err)
	}
	c.Greylist(ctx, "other", "c", t0, p)
	if c.Pending() != 1 {
		t.Errorf("pending %d, want 1", c.Pending())
	}
	n := 0
	c.List(ctx, Grey, func(Entry) error { n++; return nil })
	if n != 2 || c.Pending() != 0 {
		t.Errorf("List saw %d entries, %d pending", n, c.Pending())
	}
	c.Greylist(ctx, "other", "c", t0.Add(time.Second), p)
	if ok, err := c.Delete(ctx, Grey, "other"); !ok || err != nil {
		t.Errorf("delete: %v %v", ok, err)
	}
	if _, err := c.Get(ctx, Grey, "other"); err != ErrNotFound {
		t.Errorf("deleted entry still there: %v", err)
	}
	if _, o, _ := c.Greylist(ctx, "other", "c", t0.Add(2*time.Second), p); o != GreyNew {
		t.Errorf("after delete: %v", o)
	}
	// A loaded entry replaces the pending sighting, also after a flush.
	if err := c.Put(ctx, Entry{Kind: Grey, Key: "other", Created: t0, Updated: t0, Expires: t0.Add(time.Hour), Count: 42, Pass: t0}); err != nil {
		t.Fatal(err)
	}
	c.Flush(ctx)
	if e, err := b.Get(ctx, Grey, "other"); err != nil || e.Count != 42 {
		t.Errorf("loaded entry after a flush: %+v %v", e, err)
	}
}

// postgrey's auto-whitelist count: one per gap, restarted after the ttl,
// and a counter from the future counts at once.
func TestCountPass(t *testing.T) {
	b, err := OpenBolt(filepath.Join(t.TempDir(), "g.db"), BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	t0 := time.Unix(1764590000, 0)
	for _, s := range []struct {
		at   time.Duration
		want int64
	}{{0, 1}, {time.Minute, 1}, {time.Hour, 2}, {3 * time.Hour, 3}, {-time.Hour, 4}, {30 * time.Hour, 1}} {
		n, err := b.CountPass(ctx, "192.0.2.1", t0.Add(s.at), time.Hour, 24*time.Hour)
		if err != nil || n != s.want {
			t.Errorf("at %v: %d %v, want %d", s.at, n, err, s.want)
		}
	}
	if _, err := b.CountPass(ctx, "192.0.2.1/32", t0, time.Hour, time.Hour); err == nil {
		t.Error("a non-canonical key was counted")
	}
	// The sweep removes a stale counter (it expires 24h after t0+30h).
	if n, err := b.Expire(ctx, t0.Add(55*time.Hour)); err != nil || n != 1 {
		t.Errorf("expire: %d %v, want 1 counter removed", n, err)
	}
	if n, _ := b.CountPass(ctx, "192.0.2.1", t0.Add(55*time.Hour), time.Hour, 24*time.Hour); n != 1 {
		t.Errorf("after the sweep: count %d, want 1", n)
	}
}
