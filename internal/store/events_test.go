package store

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

func TestEvents(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "db")
	b, err := OpenBolt(path, BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	var evs []Event
	for i := range 10 {
		evs = append(evs, Event{Time: t0.Add(time.Duration(i) * time.Minute), Client: "192.0.2.1", Path: "black", Outcome: "quit", Tarpit: float64(i)})
	}
	evs = append(evs, evs[3]) // same time twice: both kept
	if err := b.AddEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	count := func(since, until time.Time) (n int, sum float64) {
		t.Helper()
		last := time.Time{}
		if err := b.Events(ctx, since, until, func(e Event) error {
			if e.Time.Before(last) {
				t.Errorf("out of order: %v after %v", e.Time, last)
			}
			last = e.Time
			n++
			sum += e.Tarpit
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return n, sum
	}
	if n, _ := count(time.Time{}, time.Time{}); n != 11 {
		t.Errorf("all: %d", n)
	}
	if n, sum := count(t0.Add(3*time.Minute), t0.Add(5*time.Minute)); n != 3 || sum != 3+3+4 {
		t.Errorf("window: %d events, %v s", n, sum)
	}
	// Kept across a reopen; expiry drops the old ones only.
	b.Close()
	if b, err = OpenBolt(path, BoltOptions{}); err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if n, err := b.ExpireEvents(ctx, t0.Add(4*time.Minute)); err != nil || n != 5 {
		t.Errorf("expired %d, %v; want 5", n, err)
	}
	if n, _ := count(time.Time{}, time.Time{}); n != 6 {
		t.Errorf("after expiry: %d", n)
	}
}
