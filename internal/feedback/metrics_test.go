package feedback

import (
	"context"
	"testing"
	"time"

	"github.com/greypit/greypit/internal/metrics"
	"github.com/greypit/greypit/internal/store"
)

// Verdicts that changed the store are counted by source and kind; one an
// operator's white entry stood against as skipped; a dry run and a bad
// verdict not at all.
func TestVerdictMetrics(t *testing.T) {
	ctx := context.Background()
	a, st := newApplier(t)
	now := time.Now()
	st.Put(ctx, store.Entry{Kind: store.White, Key: "198.51.100.0/24", Source: "db", Created: now, Updated: now})
	get := func(source, verdict string) uint64 { return metrics.Feedback.With(source, verdict).Value() }
	spam, skipped, ham := get("follow:metrics", Spam), get("follow:metrics", "skipped"), get("feedback:metrics", Ham)

	a.Apply(ctx, Verdict{Kind: Spam, Client: "203.0.113.5", Source: "follow:metrics"})
	a.Apply(ctx, Verdict{Kind: Spam, Client: "198.51.100.7", Source: "follow:metrics"})
	a.Apply(ctx, Verdict{Kind: Ham, Client: "203.0.113.5", Source: "feedback:metrics"})
	a.Apply(ctx, Verdict{Kind: Ham, Client: "nonsense", Source: "feedback:metrics"})
	a.DryRun = true
	a.Apply(ctx, Verdict{Kind: Spam, Client: "203.0.113.6", Source: "follow:metrics"})

	if d := get("follow:metrics", Spam) - spam; d != 1 {
		t.Errorf("spam verdicts moved by %d, want 1", d)
	}
	if d := get("follow:metrics", "skipped") - skipped; d != 1 {
		t.Errorf("skipped verdicts moved by %d, want 1", d)
	}
	if d := get("feedback:metrics", Ham) - ham; d != 1 {
		t.Errorf("ham verdicts moved by %d, want 1", d)
	}
}
