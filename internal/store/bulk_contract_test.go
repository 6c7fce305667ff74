package store

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// TestPutAll: the import path (policy import-postgrey) writes every entry
// or, if one is not canonical, none, on both backends.
func TestPutAll(t *testing.T) { forBackends(t, testPutAll) }

func testPutAll(t *testing.T, openTest opener) {
	s, _ := openTest(t)
	b := s.(interface {
		PutAll(context.Context, []Entry) error
	})
	ctx := context.Background()
	t0 := now()
	var es []Entry
	for i := range 1200 { // more than one Redis chunk
		es = append(es, Entry{Kind: Grey, Key: fmt.Sprintf("192.0.2.0/24 s%d@example.org r@example.net", i),
			Created: t0, Updated: t0, Expires: t0.Add(time.Hour), Count: 1, Pass: t0})
	}
	es = append(es, Entry{Kind: White, Key: "192.0.2.7", Created: t0, Updated: t0, Expires: t0.Add(time.Hour)})
	bad := append(es[:10:10], Entry{Kind: White, Key: "192.0.2.7/32"})
	if err := b.PutAll(ctx, bad); err == nil {
		t.Fatal("PutAll with a non-canonical key succeeded")
	}
	if n := len(listAll(t, s, "")); n != 0 {
		t.Fatalf("a refused PutAll wrote %d entries", n)
	}
	if err := b.PutAll(ctx, es); err != nil {
		t.Fatal(err)
	}
	if n := len(listAll(t, s, Grey)); n != 1200 {
		t.Fatalf("%d grey entries, want 1200", n)
	}
	if _, err := s.Match(ctx, White, netip.MustParseAddr("192.0.2.7")); err != nil {
		t.Fatalf("imported white entry: %v", err)
	}
}
