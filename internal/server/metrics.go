package server

import (
	"github.com/greypit/greypit/internal/classify"
	"github.com/greypit/greypit/internal/metrics"
)

// The per-session gauges, resolved once: the hot path is an atomic add.
var (
	activeWhite = metrics.Active.With(string(classify.White))
	activeGrey  = metrics.Active.With(string(classify.Grey))
	activeBlack = metrics.Active.With(string(classify.Black))
	proxyErrors = metrics.Sessions.With("none", "proxy-error")
)

// activeGauge is the open-sessions gauge of path.
func activeGauge(p classify.Path) *metrics.Gauge {
	switch p {
	case classify.White:
		return activeWhite
	case classify.Black:
		return activeBlack
	}
	return activeGrey
}

// countStoreErr counts a failed store operation and returns err.
func countStoreErr(op string, err error) error {
	if err != nil {
		metrics.StoreErrors.With(op).Inc()
	}
	return err
}
