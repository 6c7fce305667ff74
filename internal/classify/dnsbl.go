package classify

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"

	"github.com/greypit/greypit/internal/dnsbl"
)

// startDNSBL starts the DNSBL lookups for addr and returns a function
// that waits for their result (nil when no lists are configured). The
// checker's own deadline (dnsbl.timeout) bounds the wait.
func (c *Classifier) startDNSBL(ctx context.Context, addr netip.Addr) func() *dnsbl.Result {
	if !c.DNSBL.Enabled() {
		return func() *dnsbl.Result { return nil }
	}
	ch := make(chan dnsbl.Result, 1)
	go func() { ch <- c.DNSBL.Check(ctx, addr) }()
	return sync.OnceValue(func() *dnsbl.Result {
		r := <-ch
		return &r
	})
}

// dnsblDecision applies rules 7 and 8 of Classify.
func (c *Classifier) dnsblDecision(result func() *dnsbl.Result) (Decision, bool) {
	r := result()
	switch {
	case r == nil:
		return Decision{}, false
	case r.Black:
		return Decision{Path: Black, Rule: fmt.Sprintf("dnsbl score %d: %s", r.Score, hits(r)),
			Reason: "listed in " + r.Names(), DNSBL: r}, true
	case r.Allow && c.Selective:
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
func (c *Classifier) bigSender(addr netip.Addr) (Decision, bool) {
	found, ok := c.BigSenders.Lookup(addr)
	if !ok {
		return Decision{}, false
	}
	src := found // escapes only when found
	return Decision{Path: White, Rule: fmt.Sprintf("bigsenders %s (%s, SPF %s: %s)", src.Provider.Domain, src.Prefix, src.Record, src.Provider.Source),
		BigSender: &src}, true
}
