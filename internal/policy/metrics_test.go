package policy

import (
	"testing"
	"time"

	"github.com/greypit/greypit/internal/metrics"
)

// Each answer is counted by its action verb, before it is written.
func TestActionMetrics(t *testing.T) {
	f := newFixture(t, nil)
	p := dial(t, f.addr)
	deferred, prepend, dunno := metrics.Policy.With("DEFER_IF_PERMIT").Value(), metrics.Policy.With("PREPEND").Value(), metrics.Policy.With("DUNNO").Value()
	p.ask(req("198.51.100.20", "m@example.org", "metrics@example.test"))
	p.ask(req("198.51.100.20", "m@example.org", "metrics@example.test"))
	f.clock.Advance(61 * time.Second) // past the fixture's 60 s delay
	p.ask(req("198.51.100.20", "m@example.org", "metrics@example.test"))
	p.ask(req("198.51.100.20", "m@example.org", "metrics@example.test"))
	for verb, want := range map[string]uint64{"DEFER_IF_PERMIT": deferred + 2, "PREPEND": prepend + 1, "DUNNO": dunno + 1} {
		if got := metrics.Policy.With(verb).Value(); got != want {
			t.Errorf("%s answers %d, want %d", verb, got, want)
		}
	}
}
