package handoff

import (
	"errors"

	"github.com/greypit/greypit/internal/metrics"
)

var (
	splices  = metrics.Handoffs.With("splice")
	handoffs = metrics.Handoffs.With("handoff")
)

// count records a backend set-up: a *Error is a backend error at its
// step; anything else means the backend session was set up (a later
// splice error is the client's or the network's).
func count(kind *metrics.Counter, err error) {
	var he *Error
	if errors.As(err, &he) {
		metrics.BackendErrors.With(he.Step).Inc()
		return
	}
	kind.Inc()
}
