package dnsbl

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/greypit/greypit/internal/store"
)

// Server answers DNSBL queries for Zone from the store's black entries
// (addresses and prefixes, including escalated networks) per RFC 5782: a
// listed address has an A record 127.0.0.2 and a TXT record with the
// reason; an unlisted one is NXDOMAIN. It is authoritative only: names
// outside Zone are REFUSED and recursion is never offered (RA=0), so it
// cannot be used as an open resolver or to amplify attacks.
type Server struct {
	Zone     string // e.g. "bl.example.org"
	Hostname string // the name server's own name, for the SOA and NS records
	Store    store.Store
	TTL      time.Duration // of answers; an entry that expires sooner gets less
	// Rate is how many queries a second one client network (IPv4 /24,
	// IPv6 /56) may send; above it (after a burst of as many again)
	// queries are dropped unanswered. 0: unlimited.
	Rate int
	Log  *slog.Logger
	Now  func() time.Time // for tests; nil: time.Now

	once    sync.Once
	zone    string // canonical, with the trailing dot
	limiter *limiter
}

func (s *Server) init() {
	s.once.Do(func() {
		s.zone = dns.CanonicalName(s.Zone)
		if s.Now == nil {
			s.Now = time.Now
		}
		s.limiter = &limiter{rate: float64(s.Rate), m: map[netip.Prefix]*bucket{}}
	})
}

// Serve answers on pc (UDP) and ln (TCP) until ctx ends.
func (s *Server) Serve(ctx context.Context, pc net.PacketConn, ln net.Listener) error {
	s.init()
	us := &dns.Server{PacketConn: pc, Handler: s}
	ts := &dns.Server{Listener: ln, Handler: s, ReadTimeout: 5 * time.Second, IdleTimeout: func() time.Duration { return 10 * time.Second }}
	errc := make(chan error, 2)
	go func() { errc <- us.ActivateAndServe() }()
	go func() { errc <- ts.ActivateAndServe() }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	us.Shutdown()
	ts.Shutdown()
	return err
}

// ServeDNS implements dns.Handler.
func (s *Server) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	s.init()
	client := addrOf(w.RemoteAddr())
	if !s.limiter.allow(client, s.Now()) {
		return // dropped: answering a flood would make us its amplifier
	}
	m := s.answer(req)
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		// RFC 1035 §4.2.1 and RFC 6891 §6.2.5: a long reason must not
		// exceed what the client can take over UDP; TC=1 sends it to TCP.
		size := dns.MinMsgSize
		if o := req.IsEdns0(); o != nil {
			size = max(int(o.UDPSize()), dns.MinMsgSize)
		}
		m.Truncate(size)
	}
	if err := w.WriteMsg(m); err != nil && s.Log != nil {
		s.Log.Debug("dnsbl server: write failed", "client", client.String(), "err", err)
	}
}

// answer builds the reply to req.
func (s *Server) answer(req *dns.Msg) *dns.Msg {
	s.init()
	m := new(dns.Msg)
	m.SetReply(req)
	m.RecursionAvailable = false
	m.Compress = true
	if req.Opcode != dns.OpcodeQuery {
		m.SetRcode(req, dns.RcodeNotImplemented)
		return m
	}
	if len(req.Question) != 1 {
		m.SetRcode(req, dns.RcodeFormatError)
		return m
	}
	q := req.Question[0]
	name := dns.CanonicalName(q.Name)
	if q.Qclass != dns.ClassINET && q.Qclass != dns.ClassANY {
		m.SetRcode(req, dns.RcodeRefused)
		return m
	}
	addr, ok, err := ParseQueryName(name, s.zone)
	if errors.Is(err, ErrNotInZone) {
		m.Rcode = dns.RcodeRefused
		return m
	}
	m.Authoritative = true
	if !ok && err == nil { // the apex
		switch q.Qtype {
		case dns.TypeSOA, dns.TypeANY:
			m.Answer = append(m.Answer, s.soa())
		case dns.TypeNS:
			m.Answer = append(m.Answer, &dns.NS{Hdr: s.hdr(s.zone, dns.TypeNS, s.TTL), Ns: dns.Fqdn(s.Hostname)})
		}
		if len(m.Answer) == 0 {
			m.Ns = []dns.RR{s.soa()}
		}
		return m
	}
	if err != nil {
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{s.soa()}
		return m
	}
	reason, ttl, listed, err := s.lookup(addr)
	if err != nil {
		if s.Log != nil {
			s.Log.Warn("dnsbl server: store lookup failed", "addr", addr.String(), "err", err)
		}
		m.Rcode = dns.RcodeServerFailure
		return m
	}
	if !listed {
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{s.soa()}
		return m
	}
	if q.Qtype == dns.TypeA || q.Qtype == dns.TypeANY {
		m.Answer = append(m.Answer, &dns.A{Hdr: s.hdr(name, dns.TypeA, ttl), A: net.IPv4(127, 0, 0, 2)})
	}
	if q.Qtype == dns.TypeTXT || q.Qtype == dns.TypeANY {
		m.Answer = append(m.Answer, &dns.TXT{Hdr: s.hdr(name, dns.TypeTXT, ttl), Txt: chunks(reason)})
	}
	if len(m.Answer) == 0 {
		m.Ns = []dns.RR{s.soa()}
	}
	return m
}

// lookup says whether addr is listed, why, and for how long to cache it.
func (s *Server) lookup(addr netip.Addr) (reason string, ttl time.Duration, listed bool, err error) {
	addr = addr.Unmap()
	switch addr {
	case testListed: // RFC 5782 §5: clients check that this one is listed
		return "RFC 5782 test entry", s.TTL, true, nil
	case testNotListed: // … and that this one is not
		return "", 0, false, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	e, err := s.Store.Match(ctx, store.Black, addr)
	if errors.Is(err, store.ErrNotFound) {
		return "", 0, false, nil
	}
	if err != nil {
		return "", 0, false, err
	}
	reason = e.Reason
	if reason == "" {
		reason = "blacklisted"
	}
	if strings.Contains(e.Key, "/") {
		reason += " (network " + e.Key + ")"
	}
	ttl = s.TTL
	if !e.Expires.IsZero() {
		ttl = min(ttl, e.Expires.Sub(s.Now()))
	}
	return "greypit: " + reason, max(ttl, time.Second), true, nil
}

func (s *Server) hdr(name string, t uint16, ttl time.Duration) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: uint32(ttl / time.Second)}
}

// soa is the zone's SOA; its minimum (RFC 2308) lets resolvers cache
// "not listed" for the answer TTL.
func (s *Server) soa() dns.RR {
	host := dns.Fqdn(s.Hostname)
	return &dns.SOA{Hdr: s.hdr(s.zone, dns.TypeSOA, s.TTL), Ns: host, Mbox: "hostmaster." + host,
		Serial: uint32(s.Now().Unix()), Refresh: 3600, Retry: 600, Expire: 86400, Minttl: uint32(s.TTL / time.Second)}
}

// chunks splits a TXT string into the 255-byte pieces DNS allows.
func chunks(s string) []string {
	var out []string
	for len(s) > 255 {
		out = append(out, s[:255])
		s = s[255:]
	}
	return append(out, s)
}

func addrOf(a net.Addr) netip.Addr {
	switch v := a.(type) {
	case *net.UDPAddr:
		return v.AddrPort().Addr().Unmap()
	case *net.TCPAddr:
		return v.AddrPort().Addr().Unmap()
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap.Addr().Unmap()
}

// limiter is a token bucket per client network.
type limiter struct {
	rate float64
	mu   sync.Mutex
	m    map[netip.Prefix]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// maxBuckets bounds the limiter's memory under a spoofed-source flood;
// past it the table starts afresh, which only forgives some clients.
const maxBuckets = 100000

func (l *limiter) allow(a netip.Addr, now time.Time) bool {
	if l.rate <= 0 {
		return true
	}
	bits := 56
	if a.Is4() {
		bits = 24
	}
	p, _ := a.Prefix(bits)
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.m[p]
	if b == nil {
		if len(l.m) >= maxBuckets {
			clear(l.m)
		}
		b = &bucket{tokens: 2 * l.rate, last: now}
		l.m[p] = b
	}
	b.tokens = min(2*l.rate, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
