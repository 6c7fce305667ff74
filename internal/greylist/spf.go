package greylist

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"blitiri.com.ar/go/spf"
)

// SPF decides whether an envelope sender's domain passes SPF (RFC 7208)
// for a client address. A pass lets the greylist tuple key on that domain
// rather than the client's network: large senders retry from another
// address of a pool that spans many networks, and every address of the
// pool is authorised by the same record.
type SPF struct {
	Resolver spf.DNSResolver // e.g. dnsx.NetResolver(dnsbl.resolver)
	Timeout  time.Duration   // one check; past it the network key is used

	mu    sync.Mutex
	cache map[string]spfCached
	// A resolver that does not answer would hold every new sender's
	// recipients for Timeout: after spfTripAfter timeouts in a row, checks
	// are skipped (network keys, as for any failure) until skipUntil.
	timeouts  int
	skipUntil time.Time
}

type spfCached struct {
	pass    bool
	expires time.Time
}

// spfCacheTTL and spfCacheMax bound the per-attempt cache: every
// recipient of a session asks the same question.
const (
	spfCacheTTL = time.Minute
	spfCacheMax = 10000
)

// spfTripAfter timeouts in a row (one broken sender domain does not do
// it, as any answer in between resets the count) skip SPF for spfSkipFor.
const (
	spfTripAfter = 5
	spfSkipFor   = 30 * time.Second
)

// Pass returns the sender's domain, lower-cased, when SPF passes for it.
// The null sender never passes here (its SPF identity is the HELO name,
// RFC 7208 §2.4, which is not what the tuple keys on). Errors, timeouts
// and every other result are "no".
func (s *SPF) Pass(ctx context.Context, client netip.Addr, helo, sender string) (string, bool) {
	at := strings.LastIndexByte(sender, '@')
	if s == nil || at < 0 || at == len(sender)-1 {
		return "", false
	}
	domain := strings.ToLower(strings.TrimSuffix(sender[at+1:], "."))
	key := client.String() + " " + domain + " " + strings.ToLower(sender[:at])
	now := time.Now()
	s.mu.Lock()
	if c, ok := s.cache[key]; ok && now.Before(c.expires) {
		s.mu.Unlock()
		return domain, c.pass
	}
	if now.Before(s.skipUntil) {
		s.mu.Unlock()
		return domain, false
	}
	s.mu.Unlock()

	cctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	res, _ := spf.CheckHostWithSender(net.IP(client.Unmap().AsSlice()), helo, sender,
		spf.WithContext(cctx), spf.WithResolver(s.Resolver))
	pass := res == spf.Pass

	s.mu.Lock()
	switch {
	case time.Since(now) >= s.Timeout && ctx.Err() == nil:
		// It cost the whole wait.
		s.timeouts++
		if s.timeouts >= spfTripAfter {
			s.timeouts = 0
			s.skipUntil = time.Now().Add(spfSkipFor)
		}
	case res != spf.TempError:
		s.timeouts = 0 // an answer: the resolver works
	}
	if s.cache == nil || len(s.cache) >= spfCacheMax {
		s.cache = map[string]spfCached{}
	}
	s.cache[key] = spfCached{pass, now.Add(spfCacheTTL)}
	s.mu.Unlock()
	return domain, pass
}
