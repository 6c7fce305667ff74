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
	s.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	res, _ := spf.CheckHostWithSender(net.IP(client.Unmap().AsSlice()), helo, sender,
		spf.WithContext(ctx), spf.WithResolver(s.Resolver))
	pass := res == spf.Pass

	s.mu.Lock()
	if s.cache == nil || len(s.cache) >= spfCacheMax {
		s.cache = map[string]spfCached{}
	}
	s.cache[key] = spfCached{pass, now.Add(spfCacheTTL)}
	s.mu.Unlock()
	return domain, pass
}
