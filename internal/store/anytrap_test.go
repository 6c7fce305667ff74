package store

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

// Get of a trap answers "not found" without a transaction only while no
// trap entry exists: one put, and one already in the file at open, are
// found.
func TestGetTrapFastPath(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "g.db")
	b, err := OpenBolt(path, BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, Trap, "trap@example.test"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("empty store: %v", err)
	}
	now := time.Now()
	if err := b.Put(ctx, Entry{Kind: Trap, Key: "trap@example.test", Created: now, Updated: now}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, Trap, "trap@example.test"); err != nil {
		t.Fatalf("after put: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, Trap, "other@example.test"); err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("closed store: %v, want the closed error", err)
	}
	b, err = OpenBolt(path, BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.Get(ctx, Trap, "trap@example.test"); err != nil {
		t.Fatalf("after reopen: %v", err)
	}
}
