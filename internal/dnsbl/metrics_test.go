package dnsbl

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/greypit/greypit/internal/metrics"
)

// Each list's answer is counted: a hit, a miss, and a silent list's timeout.
func TestLookupMetrics(t *testing.T) {
	srv := newDNS(t, "slow.metrics.test", "bl.metrics.test")
	srv.Add(t, "9.2.0.192.bl.metrics.test. 300 IN A 127.0.0.2")
	srv.Drop("slow.metrics.test", true)
	c := checker(t, srv, []string{"slow.metrics.test", "bl.metrics.test"}, Options{Timeout: 300 * time.Millisecond})
	// The counters are process-wide: compare what this run added.
	type key struct{ zone, result string }
	before := map[key]uint64{}
	for _, z := range []string{"bl.metrics.test", "slow.metrics.test"} {
		for _, r := range []string{"hit", "miss", "timeout"} {
			before[key{z, r}] = metrics.DNSBLLookups.With(z, r).Value()
		}
	}
	c.Check(context.Background(), netip.MustParseAddr("192.0.2.9"))
	c.Check(context.Background(), netip.MustParseAddr("192.0.2.10"))
	for _, tc := range []struct {
		zone, result string
		want         uint64
	}{
		{"bl.metrics.test", "hit", 1},
		{"bl.metrics.test", "miss", 1},
		{"slow.metrics.test", "timeout", 2},
		{"bl.metrics.test", "timeout", 0},
	} {
		if got := metrics.DNSBLLookups.With(tc.zone, tc.result).Value() - before[key{tc.zone, tc.result}]; got != tc.want {
			t.Errorf("%s %s = %d, want %d", tc.zone, tc.result, got, tc.want)
		}
	}
}
