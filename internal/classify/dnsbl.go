package classify

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"

	"github.com/greypit/greypit/internal/bigsenders"
	"github.com/greypit/greypit/internal/dnsbl"
)

// startDNSBL starts the DNSBL lookups for addr and returns a function
// that waits for their result (nil when no lists are configured). The
// checker's own deadline (dnsbl.timeout) bounds the wait.
func startDNSBL(ctx context.Context, chk *dnsbl.Checker, addr netip.Addr) func() *dnsbl.Result {
	if !chk.Enabled() {
		return func() *dnsbl.Result { return nil }
	}
	ch := make(chan dnsbl.Result, 1)
	go func() { ch <- chk.Check(ctx, addr) }()
	return sync.OnceValue(func() *dnsbl.Result {
		r := <-ch
		return &r
	})
}

// dnsblDecision applies rules 7 and 8 of Classify.
func dnsblDecision(result func() *dnsbl.Result, selective bool) (Decision, bool) {
	r := result()
	switch {
	case r == nil:
		return Decision{}, false
	case r.Black:
		return Decision{Path: Black, Rule: fmt.Sprintf("dnsbl score %d: %s", r.Score, hits(r)),
			Reason: "listed in " + r.Names(), DNSBL: r}, true
	case r.Allow && selective:
		return Decision{Path: White, Rule: fmt.Sprintf("dnsbl allow score %d (selective mode): %s", r.Score, hits(r)), DNSBL: r}, true
	}
	return Decision{}, false
}

// hits lists the lists that had the host, with their weights.
func hits(r *dnsbl.Result) string {
	var s []string
	for _, h := range r.Listed {
		s = append(s, fmt.Sprintf("%s %s weight %d", h.Zone, strings.Join(h.Answers, ","), h.Weight))
	}
	return strings.Join(s, "; ")
}

// bigSender applies rule 5 of Classify.
func bigSender(big *bigsenders.Set, addr netip.Addr) (Decision, bool) {
	found, ok := big.Lookup(addr)
	if !ok {
		return Decision{}, false
	}
	src := found // escapes only when found
	return Decision{Path: White, Rule: fmt.Sprintf("bigsenders %s (%s, SPF %s: %s)", src.Provider.Domain, src.Prefix, src.Record, src.Provider.Source),
		BigSender: &src}, true
}
