package testenv

import (
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// DNSServer is an authoritative DNS server on loopback (UDP and TCP, same
// port) serving records a test adds: test DNSBL zones, SPF TXT records.
// It stands in for the recursive resolver greypit is configured with, so
// it also answers RD=1 queries, but only for its own zones; other names get
// REFUSED, as a resolver without internet would fail them.
type DNSServer struct {
	Addr string // 127.0.0.1:port

	mu      sync.Mutex
	zones   []string
	rrs     map[string][]dns.RR // "name type" -> records
	names   map[string]bool
	drop    map[string]bool // zones whose queries are never answered
	queries map[string]int  // "name type" -> count
}

// ListenUDPTCP opens UDP and TCP listeners on one loopback port, as a
// DNS server needs. The kernel picks a free UDP port, whose TCP twin a
// connection of a busy test run may hold; then another is tried.
func ListenUDPTCP(t testing.TB) (net.PacketConn, net.Listener) {
	t.Helper()
	var err error
	for range 50 {
		var pc net.PacketConn
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln
		}
		pc.Close()
	}
	t.Fatalf("testenv: no loopback port free for both UDP and TCP: %v", err)
	return nil, nil
}

// StartDNS starts a server authoritative for zones; it stops at cleanup.
func StartDNS(t testing.TB, zones ...string) *DNSServer {
	t.Helper()
	pc, ln := ListenUDPTCP(t)
	s := &DNSServer{Addr: pc.LocalAddr().String(), rrs: map[string][]dns.RR{}, names: map[string]bool{},
		drop: map[string]bool{}, queries: map[string]int{}}
	for _, z := range zones {
		s.zones = append(s.zones, dns.CanonicalName(z))
	}
	h := dns.HandlerFunc(s.serve)
	us := &dns.Server{PacketConn: pc, Handler: h}
	ts := &dns.Server{Listener: ln, Handler: h}
	started := make(chan struct{}, 2)
	us.NotifyStartedFunc = func() { started <- struct{}{} }
	ts.NotifyStartedFunc = func() { started <- struct{}{} }
	go us.ActivateAndServe()
	go ts.ActivateAndServe()
	<-started
	<-started
	t.Cleanup(func() { us.Shutdown(); ts.Shutdown() })
	return s
}

// Add adds records in zone-file syntax, e.g.
// "2.0.0.127.bl.test. 300 IN A 127.0.0.2".
func (s *DNSServer) Add(t testing.TB, records ...string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range records {
		rr, err := dns.NewRR(r)
		if err != nil {
			t.Fatalf("DNS record %q: %v", r, err)
		}
		h := rr.Header()
		h.Name = dns.CanonicalName(h.Name)
		k := h.Name + " " + dns.TypeToString[h.Rrtype]
		s.rrs[k] = append(s.rrs[k], rr)
		s.names[h.Name] = true
	}
}

// Remove deletes every record of name and type ("A", "TXT").
func (s *DNSServer) Remove(name, typ string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.rrs, dns.CanonicalName(name)+" "+typ)
}

// Drop makes the server swallow every query for names in zone without an
// answer, as an overloaded or firewalled list does: the client times out.
func (s *DNSServer) Drop(zone string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drop[dns.CanonicalName(zone)] = on
}

// Queries reports how many queries for name and type ("A", "TXT") arrived.
func (s *DNSServer) Queries(name, typ string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queries[dns.CanonicalName(name)+" "+typ]
}

func (s *DNSServer) serve(w dns.ResponseWriter, req *dns.Msg) {
	if len(req.Question) != 1 {
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeFormatError)
		w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	name := dns.CanonicalName(q.Name)
	k := name + " " + dns.TypeToString[q.Qtype]
	s.mu.Lock()
	s.queries[k]++
	zone := ""
	for _, z := range s.zones {
		if name == z || strings.HasSuffix(name, "."+z) {
			zone = z
		}
	}
	drop := s.drop[zone]
	answer := append([]dns.RR(nil), s.rrs[k]...)
	exists := s.names[name]
	s.mu.Unlock()
	if drop {
		return
	}
	m := new(dns.Msg)
	m.SetReply(req)
	m.RecursionAvailable = req.RecursionDesired
	if zone == "" {
		m.SetRcode(req, dns.RcodeRefused)
		w.WriteMsg(m)
		return
	}
	m.Authoritative = true
	m.Answer = answer
	if len(answer) == 0 {
		if !exists {
			m.Rcode = dns.RcodeNameError
		}
		m.Ns = []dns.RR{&dns.SOA{
			Hdr: dns.RR_Header{Name: zone, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 60},
			Ns:  "ns." + zone, Mbox: "hostmaster." + zone, Serial: 1, Refresh: 3600, Retry: 600, Expire: 86400, Minttl: 60,
		}}
	}
	w.WriteMsg(m)
}
