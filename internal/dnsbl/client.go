// Package dnsbl owns greypit's use of DNS blocklists, both ways.
//
// As a client (Checker) it asks the lists of dnsbl.sites about each
// connecting host, in parallel and within dnsbl.timeout, and scores the
// answers the way Postfix postscreen does (a weighted sum compared with a
// black and an allow threshold). Answers are cached by their TTL, and a
// list that fails the RFC 5782 §5 test entries, answers with an error code
// (Spamhaus 127.255.255.x) or times out is skipped and reported rather
// than trusted: a broken list must never make every host black.
//
// As a server (Server) it publishes greypit's own black store entries as
// an RFC 5782 zone, authoritative only.
package dnsbl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/greypit/greypit/internal/dnsx"
)

// Exchanger sends one DNS query; *dnsx.Client is the real one.
type Exchanger interface {
	Exchange(ctx context.Context, m *dns.Msg) (*dns.Msg, error)
}

// Options configure a Checker.
type Options struct {
	Sites          []Site
	Threshold      int           // score >= Threshold: black
	AllowThreshold int           // score <= AllowThreshold (< 0): good enough to skip greylisting; 0: off
	Timeout        time.Duration // for all lookups of one host together
	CacheSize      int           // answers kept; 0: 10000
	DNS            Exchanger
	Now            func() time.Time // for tests; nil: time.Now
	// Log, if set, gets a warning when a list times out or answers with
	// an error, at most once a minute per list.
	Log *slog.Logger
}

// Checker queries the configured lists. It is safe for concurrent use.
type Checker struct {
	o     Options
	zones []string
	cache *cache

	mu     sync.Mutex
	health map[string]*Health   // by zone
	warned map[string]time.Time // by zone: last failure logged
}

// Health is the last RFC 5782 §5 test-entry check of one list.
type Health struct {
	Zone    string    `json:"zone"`
	Checked time.Time `json:"checked"`
	V4Err   string    `json:"v4_error,omitempty"` // why the list is skipped for IPv4 hosts
	V6Err   string    `json:"v6_error,omitempty"` // … and for IPv6 hosts
}

// NewChecker returns a checker; with no sites it answers score 0.
func NewChecker(o Options) *Checker {
	if o.CacheSize <= 0 {
		o.CacheSize = 10000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	o.Threshold = max(o.Threshold, 1) // 0 would make every host black
	c := &Checker{o: o, cache: newCache(o.CacheSize), health: map[string]*Health{}, warned: map[string]time.Time{}}
	for _, s := range o.Sites {
		if !slices.Contains(c.zones, s.Zone) {
			c.zones = append(c.zones, s.Zone)
		}
	}
	return c
}

// Enabled reports whether any list is configured.
func (c *Checker) Enabled() bool { return c != nil && len(c.zones) > 0 }

// Result is the DNSBL view of one host.
type Result struct {
	Score   int    `json:"score"`
	Black   bool   `json:"black,omitempty"` // Score >= dnsbl.threshold
	Allow   bool   `json:"allow,omitempty"` // Score <= dnsbl.allow_threshold
	Listed  []Hit  `json:"listed,omitempty"`
	Skipped []Skip `json:"skipped,omitempty"`
}

// Hit is a list that has the host, with the weights its answers matched.
type Hit struct {
	Zone    string   `json:"zone"`
	Answers []string `json:"answers"`
	TXT     string   `json:"txt,omitempty"`
	Weight  int      `json:"weight"`           // sum of the matching sites' weights
	Sites   []string `json:"sites,omitempty"`  // the matching dnsbl.sites entries
	Cached  bool     `json:"cached,omitempty"` // answered from the cache
}

// Skip is a list that was not used for this host, and why.
type Skip struct {
	Zone string `json:"zone"`
	Why  string `json:"why"`
}

// Names lists the zones of the hits that count towards a black verdict.
func (r *Result) Names() string {
	var s []string
	for _, h := range r.Listed {
		if h.Weight > 0 {
			s = append(s, fmt.Sprintf("%s (%s)", h.Zone, strings.Join(h.Answers, ",")))
		}
	}
	return strings.Join(s, ", ")
}

// Check asks every healthy list about addr, all at once, and waits at most
// Timeout (or ctx) for the answers; a list that has not answered by then
// is skipped for this host.
func (c *Checker) Check(ctx context.Context, addr netip.Addr) Result {
	var r Result
	if !c.Enabled() {
		return r
	}
	addr = addr.Unmap()
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
	defer cancel()
	type answer struct {
		zone string
		lk   lookup
		err  error
	}
	ch := make(chan answer, len(c.zones))
	n := 0
	for _, z := range c.zones {
		if why := c.unhealthy(z, addr.Is4()); why != "" {
			r.Skipped = append(r.Skipped, Skip{Zone: z, Why: why})
			continue
		}
		n++
		go func() {
			lk, err := c.lookup(ctx, QueryName(addr, z), true)
			ch <- answer{z, lk, err}
		}()
	}
	got := map[string]answer{}
	for range n {
		a := <-ch
		got[a.zone] = a
	}
	for _, z := range c.zones { // report in configuration order
		a, ok := got[z]
		if ok {
			countLookup(z, a.err, len(a.lk.addrs) > 0)
		}
		switch {
		case !ok:
		case a.err != nil:
			r.Skipped = append(r.Skipped, Skip{Zone: z, Why: a.err.Error()})
			if parent.Err() == nil { // not when the caller gave up on the answer
				c.warn(z, addr, a.err)
			}
		case len(a.lk.addrs) > 0:
			h := Hit{Zone: z, TXT: a.lk.txt, Cached: a.lk.cached}
			for _, ip := range a.lk.addrs {
				h.Answers = append(h.Answers, ip.String())
			}
			for _, s := range c.o.Sites {
				if s.Zone == z && slices.ContainsFunc(a.lk.addrs, s.Filter.Match) {
					h.Weight += s.Weight
					h.Sites = append(h.Sites, s.Text)
				}
			}
			r.Score += h.Weight
			r.Listed = append(r.Listed, h)
		}
	}
	r.Black = r.Score >= c.o.Threshold
	r.Allow = c.o.AllowThreshold < 0 && r.Score <= c.o.AllowThreshold
	return r
}

// warn logs a failed lookup, once a minute per list at most.
func (c *Checker) warn(zone string, addr netip.Addr, err error) {
	if c.o.Log == nil {
		return
	}
	now := c.o.Now()
	c.mu.Lock()
	last, ok := c.warned[zone]
	if !ok || now.Sub(last) >= time.Minute {
		c.warned[zone] = now
	}
	c.mu.Unlock()
	if !ok || now.Sub(last) >= time.Minute {
		c.o.Log.Warn("dnsbl list skipped for a host", "zone", zone, "client", addr.String(), "err", err.Error())
	}
}

// lookup is one list's answer for one name.
type lookup struct {
	addrs  []netip.Addr // A answers, error codes removed
	txt    string
	cached bool
}

// errorCode matches the answers lists use for "your query was refused"
// rather than "listed": Spamhaus returns 127.255.255.0/24 for queries
// through public resolvers or over quota, which must not be read as a
// reputation (https://www.spamhaus.org/news/article/788/).
var errorCode = netip.MustParsePrefix("127.255.255.0/24")

func (c *Checker) lookup(ctx context.Context, name string, wantTXT bool) (lookup, error) {
	addrs, cached, err := c.query(ctx, name, dns.TypeA)
	if err != nil {
		return lookup{}, err
	}
	lk := lookup{cached: cached}
	for _, a := range addrs {
		if a, err := netip.ParseAddr(a); err == nil {
			if errorCode.Contains(a) {
				return lookup{}, fmt.Errorf("error code %s (query refused by the list; use a local resolver)", a)
			}
			lk.addrs = append(lk.addrs, a)
		}
	}
	if len(lk.addrs) > 0 && wantTXT {
		if txt, _, err := c.query(ctx, name, dns.TypeTXT); err == nil {
			lk.txt = strings.Join(txt, " ")
		}
	}
	return lk, nil
}

// Bounds on cached lifetimes: a list's TTL of 0 must not make every
// connection a query, and a week-long TTL must not keep a delisted host.
const (
	minTTL = 30 * time.Second
	maxTTL = time.Hour
	negTTL = 5 * time.Minute // NXDOMAIN without an SOA to say otherwise
)

// query returns the A (as strings) or TXT data for name, from the cache
// when it has a live answer.
func (c *Checker) query(ctx context.Context, name string, qtype uint16) ([]string, bool, error) {
	key := dns.TypeToString[qtype] + " " + name
	now := c.o.Now()
	if v, ok := c.cache.get(key, now); ok {
		return v, true, nil
	}
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = true
	resp, err := c.o.DNS.Exchange(ctx, m)
	if err != nil {
		if errors.Is(err, dnsx.ErrTimeout) {
			return nil, false, errTimeout
		}
		return nil, false, err
	}
	var out []string
	ttl := maxTTL
	switch resp.Rcode {
	case dns.RcodeSuccess, dns.RcodeNameError:
	default:
		return nil, false, fmt.Errorf("answer %s", dns.RcodeToString[resp.Rcode])
	}
	for _, rr := range resp.Answer {
		switch v := rr.(type) {
		case *dns.A:
			out = append(out, v.A.String())
		case *dns.TXT:
			out = append(out, strings.Join(v.Txt, ""))
		default:
			continue
		}
		ttl = min(ttl, time.Duration(rr.Header().Ttl)*time.Second)
	}
	if len(out) == 0 {
		ttl = negTTL
		for _, rr := range resp.Ns {
			if soa, ok := rr.(*dns.SOA); ok { // RFC 2308 §5
				ttl = time.Duration(min(soa.Minttl, soa.Hdr.Ttl)) * time.Second
			}
		}
	}
	c.cache.put(key, out, now.Add(min(max(ttl, minTTL), maxTTL)), now)
	return out, false, nil
}

// test entries of RFC 5782 §5: 127.0.0.2 (IPv6 ::FFFF:7F00:2) must be
// listed, 127.0.0.1 (::FFFF:7F00:1) must not.
var (
	testListed    = netip.AddrFrom4([4]byte{127, 0, 0, 2})
	testNotListed = netip.AddrFrom4([4]byte{127, 0, 0, 1})
)

// CheckHealth runs the test-entry checks of every list and returns them;
// lists that fail are skipped by Check until a later check passes.
func (c *Checker) CheckHealth(ctx context.Context) []Health {
	var wg sync.WaitGroup
	out := make([]Health, len(c.zones))
	for i, z := range c.zones {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
			defer cancel()
			h := Health{Zone: z, Checked: c.o.Now()}
			h.V4Err = c.testEntries(ctx, z, testListed, testNotListed)
			h.V6Err = c.testEntries(ctx, z, netip.AddrFrom16(testListed.As16()), netip.AddrFrom16(testNotListed.As16()))
			out[i] = h
		}()
	}
	wg.Wait()
	c.mu.Lock()
	for i := range out {
		c.health[out[i].Zone] = &out[i]
	}
	c.mu.Unlock()
	return out
}

// testEntries returns why a list fails its test entries, or "".
func (c *Checker) testEntries(ctx context.Context, zone string, listed, notListed netip.Addr) string {
	lk, err := c.lookup(ctx, queryName16(listed, zone), false)
	if err != nil {
		return "test entry " + listed.String() + ": " + err.Error()
	}
	if len(lk.addrs) == 0 {
		return "test entry " + listed.String() + " is not listed (RFC 5782 §5)"
	}
	lk, err = c.lookup(ctx, queryName16(notListed, zone), false)
	if err != nil {
		return "test entry " + notListed.String() + ": " + err.Error()
	}
	if len(lk.addrs) > 0 {
		return "test entry " + notListed.String() + " is listed: the list lists everything"
	}
	return ""
}

// queryName16 is QueryName without unmapping, for the IPv6 test entries
// ::FFFF:7F00:2 and ::FFFF:7F00:1, which are asked in nibble form.
func queryName16(a netip.Addr, zone string) string {
	if a.Is4In6() {
		return queryName6(a, zone)
	}
	return QueryName(a, zone)
}

// HealthReport returns the last health check of every list.
func (c *Checker) HealthReport() []Health {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Health
	for _, z := range c.zones {
		if h := c.health[z]; h != nil {
			out = append(out, *h)
		}
	}
	return out
}

func (c *Checker) unhealthy(zone string, v4 bool) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	h := c.health[zone]
	switch {
	case h == nil:
		return ""
	case v4 && h.V4Err != "":
		return "failed health check: " + h.V4Err
	case !v4 && h.V6Err != "":
		return "failed health check: " + h.V6Err
	}
	return ""
}

// RunHealth checks the lists now and every interval until ctx ends,
// logging each list that fails (and recovers).
func (c *Checker) RunHealth(ctx context.Context, every time.Duration, log *slog.Logger) {
	if !c.Enabled() {
		return
	}
	prev := map[string]string{}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		for _, h := range c.CheckHealth(ctx) {
			state := h.V4Err + "|" + h.V6Err
			switch {
			case h.V4Err != "" || h.V6Err != "":
				if prev[h.Zone] != state {
					log.Warn("dnsbl list skipped: failed RFC 5782 test-entry check", "zone", h.Zone, "ipv4", dashIfEmpty(h.V4Err), "ipv6", dashIfEmpty(h.V6Err))
				}
			case prev[h.Zone] != "" && prev[h.Zone] != "|":
				log.Info("dnsbl list passed its test-entry check again", "zone", h.Zone)
			}
			prev[h.Zone] = state
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func dashIfEmpty(s string) string {
	if s == "" {
		return "ok"
	}
	return s
}
