package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestHarvest(t *testing.T) { forBackends(t, testHarvest) }

func testHarvest(t *testing.T, openTest opener) {
	b, _ := openTest(t)
	ctx := context.Background()
	if _, err := b.GetHarvest(ctx, "x@trap.example"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("empty store: %v", err)
	}
	h := Harvest{Address: "x@trap.example", Visitor: "192.0.2.1", UserAgent: "ua", Time: now(), Expires: now().Add(time.Hour)}
	if err := b.PutHarvest(ctx, h); err != nil {
		t.Fatal(err)
	}
	if err := b.PutHarvest(ctx, Harvest{Address: "x@trap.example", Visitor: "192.0.2.2"}); !errors.Is(err, ErrExists) {
		t.Errorf("second visit with the same address: %v", err)
	}
	got, err := b.GetHarvest(ctx, "x@trap.example")
	if err != nil || got.Visitor != "192.0.2.1" || !got.Time.Equal(h.Time) {
		t.Errorf("GetHarvest = %+v, %v", got, err)
	}
	// The sweep removes it once expired.
	if n, err := b.Expire(ctx, now().Add(2*time.Hour)); err != nil || n != 1 {
		t.Errorf("Expire = %d, %v", n, err)
	}
	if _, err := b.GetHarvest(ctx, "x@trap.example"); !errors.Is(err, ErrNotFound) {
		t.Errorf("after expiry: %v", err)
	}
}

func TestTrapHits(t *testing.T) { forBackends(t, testTrapHits) }

func testTrapHits(t *testing.T, openTest opener) {
	b, _ := openTest(t)
	ctx := context.Background()
	t0 := now()
	add := func(client string, at time.Time) int {
		t.Helper()
		p, err := b.AddTrapHit(ctx, TrapHit{Time: at, Client: client, Field: "rcpt", Address: "t@example.org", Expires: at.Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	// Prior counts the same client's unexpired hits; a client that is a
	// prefix of another ("192.0.2.1" of "192.0.2.10") is not mixed up.
	if p := add("192.0.2.1", t0.Add(-90*time.Minute)); p != 0 {
		t.Errorf("first: %d", p)
	}
	add("192.0.2.10", t0)
	if p := add("192.0.2.1", t0); p != 0 {
		t.Errorf("after an expired hit: %d", p)
	}
	if p := add("192.0.2.1", t0.Add(time.Second)); p != 1 {
		t.Errorf("second live hit: %d", p)
	}
	var listed []TrapHit
	b.ListTrapHits(ctx, func(h TrapHit) error { listed = append(listed, h); return nil })
	if len(listed) != 3 || listed[1].Prior != 1 || listed[2].Client != "192.0.2.10" {
		t.Errorf("listed %+v", listed)
	}
	if n, err := b.Expire(ctx, t0.Add(2*time.Hour)); err != nil || n != 4 {
		t.Errorf("Expire = %d, %v", n, err)
	}
}
