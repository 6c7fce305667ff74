package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

func TestCandidates(t *testing.T) { forBackends(t, testCandidates) }

func testCandidates(t *testing.T, openTest opener) {
	ctx := context.Background()
	b, err := OpenBolt(filepath.Join(t.TempDir(), "db"), BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.GetCandidate(ctx, "ghost@example.org"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing candidate: %v", err)
	}
	day := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	var c Candidate
	for i := range 100 {
		ev := Evidence{Time: day.Add(time.Duration(i%3) * 24 * time.Hour), Client: fmt.Sprintf("192.0.%d.1", i), Source: "test"}
		if c, err = b.AddCandidateEvidence(ctx, "ghost@example.org", fmt.Sprintf("192.0.%d.0/24", i), ev); err != nil {
			t.Fatal(err)
		}
	}
	if c.State != CandidatePending || c.Count != 100 || len(c.Networks) != MaxCandidateNetworks ||
		len(c.Days) != 3 || len(c.Evidence) != MaxCandidateEvidence || !c.First.Equal(day) {
		t.Fatalf("after 100 rejects: %+v", c)
	}
	if c.Evidence[len(c.Evidence)-1].Client != "192.0.99.1" {
		t.Errorf("latest evidence not kept: %+v", c.Evidence)
	}
	// Rejected stays rejected when new evidence arrives.
	if _, err := b.DecideCandidate(ctx, "ghost@example.org", CandidateRejected, "cli", day); err != nil {
		t.Fatal(err)
	}
	c, err = b.AddCandidateEvidence(ctx, "ghost@example.org", "198.51.100.0/24", Evidence{Time: day, Client: "198.51.100.1"})
	if err != nil || c.State != CandidateRejected || c.Count != 101 {
		t.Fatalf("after rejection: %+v %v", c, err)
	}
	// A rejection may come before any evidence.
	if c, err = b.DecideCandidate(ctx, "real@example.org", CandidateRejected, "cli", day); err != nil || c.State != CandidateRejected {
		t.Fatalf("decide first: %+v %v", c, err)
	}
	if _, err := b.DecideCandidate(ctx, "x@example.org", "maybe", "cli", day); err == nil {
		t.Fatal("bad state accepted")
	}
	var got []string
	b.Candidates(ctx, func(c Candidate) error { got = append(got, c.Address+" "+string(c.State)); return nil })
	if fmt.Sprint(got) != "[ghost@example.org rejected real@example.org rejected]" {
		t.Errorf("list: %v", got)
	}
}
