package greylist

import (
	"time"

	"github.com/greypit/greypit/internal/metrics"
	"github.com/greypit/greypit/internal/store"
)

var (
	greyNew     = metrics.Greylist.With("new")
	greyEarly   = metrics.Greylist.With("early")
	greyPass    = metrics.Greylist.With("pass")
	storeErrors = metrics.StoreErrors.With("greylist")
)

// countOutcome counts one greylist check. The delay is observed for the
// retry that made a tuple pass (its Passed is this check's time), not for
// later uses of a tuple that passed before.
func countOutcome(out store.GreyOutcome, e store.Entry, now time.Time) {
	switch out {
	case store.GreyNew:
		greyNew.Inc()
	case store.GreyEarly:
		greyEarly.Inc()
	case store.GreyPass:
		greyPass.Inc()
		// A store may keep times coarser than Go's nanoseconds.
		if !e.Passed.IsZero() && e.Passed.Sub(now).Abs() < time.Millisecond {
			metrics.GreylistDelay.Observe(now.Sub(e.Created).Seconds())
		}
	}
}
