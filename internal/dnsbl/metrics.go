package dnsbl

import (
	"context"
	"errors"
	"net"

	"github.com/greypit/greypit/internal/metrics"
)

// errTimeout is a list that did not answer in time; its text is what
// `db why` shows as the reason the list was skipped.
var errTimeout = errors.New("timeout")

// countLookup counts one list's answer for one host: hit, miss, timeout
// (no answer within dnsbl.timeout) or error.
func countLookup(zone string, err error, listed bool) {
	result := "miss"
	var ne net.Error
	switch {
	case errors.Is(err, errTimeout) || errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		result = "timeout"
	case err != nil:
		result = "error"
	case listed:
		result = "hit"
	}
	metrics.DNSBLLookups.With(zone, result).Inc()
}
