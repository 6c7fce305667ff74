package dnsbl

import (
	"context"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/greypit/greypit/internal/store"
	"github.com/greypit/greypit/internal/testenv"
)

func startServer(t *testing.T, rate int, now func() time.Time) (addr string, st store.Store) {
	t.Helper()
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "greypit.db"), store.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	pc, ln := testenv.ListenUDPTCP(t)
	s := &Server{Zone: "bl.greypit.test", Hostname: "mx.greypit.test", Store: st, TTL: 5 * time.Minute, Rate: rate, Now: now}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Serve(ctx, pc, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return pc.LocalAddr().String(), st
}

func ask(t *testing.T, netw, addr, name string, qtype uint16, rd bool) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = rd
	c := &dns.Client{Net: netw, Timeout: 3 * time.Second}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s %s %s: %v", netw, name, dns.TypeToString[qtype], err)
	}
	if r.RecursionAvailable {
		t.Errorf("%s: RA=1; the server must not offer recursion", name)
	}
	return r
}

func TestServer(t *testing.T) {
	addr, st := startServer(t, 0, nil)
	now := time.Now()
	for _, e := range []store.Entry{
		{Kind: store.Black, Key: "192.0.2.9", Reason: "spamtrap hit", Created: now, Updated: now},
		{Kind: store.Black, Key: "198.51.100.0/24", Reason: "escalated: 5 black hosts", Created: now, Updated: now, Expires: now.Add(time.Minute)},
		{Kind: store.Black, Key: "2001:db8::/48", Reason: "escalated v6", Created: now, Updated: now},
	} {
		if err := st.Put(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	for _, netw := range []string{"udp", "tcp"} {
		for _, tc := range []struct {
			name  string
			rcode int
			txt   string
		}{
			{"9.2.0.192.bl.greypit.test", dns.RcodeSuccess, "greypit: spamtrap hit"},
			{"77.100.51.198.bl.greypit.test", dns.RcodeSuccess, "greypit: escalated: 5 black hosts (network 198.51.100.0/24)"},
			{"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.greypit.test", dns.RcodeSuccess, "greypit: escalated v6 (network 2001:db8::/48)"},
			{"2.0.0.127.bl.greypit.test", dns.RcodeSuccess, "RFC 5782 test entry"},
			{"2.0.0.0.0.0.f.7.f.f.f.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.bl.greypit.test", dns.RcodeSuccess, "RFC 5782 test entry"},
			{"1.0.0.127.bl.greypit.test", dns.RcodeNameError, ""},
			{"1.0.0.0.0.0.f.7.f.f.f.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.bl.greypit.test", dns.RcodeNameError, ""},
			{"10.2.0.192.bl.greypit.test", dns.RcodeNameError, ""},
			{"foo.bl.greypit.test", dns.RcodeNameError, ""},
		} {
			r := ask(t, netw, addr, tc.name, dns.TypeA, false)
			if r.Rcode != tc.rcode || !r.Authoritative {
				t.Errorf("%s A %s: rcode %s aa %v, want %s", netw, tc.name, dns.RcodeToString[r.Rcode], r.Authoritative, dns.RcodeToString[tc.rcode])
				continue
			}
			if tc.rcode != dns.RcodeSuccess {
				if len(r.Ns) != 1 || r.Ns[0].Header().Rrtype != dns.TypeSOA {
					t.Errorf("%s NXDOMAIN without SOA: %v", tc.name, r.Ns)
				}
				continue
			}
			if len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "127.0.0.2" {
				t.Errorf("%s A: %v", tc.name, r.Answer)
			}
			r = ask(t, netw, addr, tc.name, dns.TypeTXT, false)
			if len(r.Answer) != 1 || strings.Join(r.Answer[0].(*dns.TXT).Txt, "") != tc.txt {
				t.Errorf("%s TXT: %v, want %q", tc.name, r.Answer, tc.txt)
			}
		}
	}
	// A prefix entry that expires in a minute is not cached for five.
	r := ask(t, "udp", addr, "77.100.51.198.bl.greypit.test", dns.TypeA, false)
	if ttl := r.Answer[0].Header().Ttl; ttl > 60 || ttl < 50 {
		t.Errorf("TTL of an entry expiring in 60s: %d", ttl)
	}
	// Not a resolver: other names are refused, asked with RD=1 or not.
	for _, n := range []string{"example.com", "greypit.test", "9.2.0.192.zen.spamhaus.org"} {
		if r := ask(t, "udp", addr, n, dns.TypeA, true); r.Rcode != dns.RcodeRefused || len(r.Answer) != 0 {
			t.Errorf("%s: rcode %s answers %v, want REFUSED", n, dns.RcodeToString[r.Rcode], r.Answer)
		}
	}
	if r := ask(t, "udp", addr, "bl.greypit.test", dns.TypeSOA, false); len(r.Answer) != 1 || r.Rcode != dns.RcodeSuccess {
		t.Errorf("apex SOA: %v", r)
	}

	// A reason too long for a 512-byte UDP answer: truncated over UDP,
	// whole over TCP, in 255-byte strings.
	long := strings.Repeat("very long reason ", 60)
	if err := st.Put(context.Background(), store.Entry{Kind: store.Black, Key: "192.0.2.10", Reason: long, Created: now, Updated: now}); err != nil {
		t.Fatal(err)
	}
	m := new(dns.Msg)
	m.SetQuestion("10.2.0.192.bl.greypit.test.", dns.TypeTXT)
	r, _, err := (&dns.Client{Net: "udp", Timeout: 3 * time.Second}).Exchange(m, addr)
	if err != nil || !r.Truncated || r.Len() > 512 {
		t.Errorf("long TXT over UDP: truncated %v, %d bytes, %v", r != nil && r.Truncated, r.Len(), err)
	}
	r = ask(t, "tcp", addr, "10.2.0.192.bl.greypit.test", dns.TypeTXT, false)
	if txt := r.Answer[0].(*dns.TXT).Txt; strings.Join(txt, "") != "greypit: "+long || len(txt[0]) != 255 {
		t.Errorf("long TXT over TCP: %d strings", len(txt))
	}
}

// Past the rate and its burst, a client's queries go unanswered; another
// client network is not affected.
func TestServerRateLimit(t *testing.T) {
	clock := testenv.NewClock(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	addr, _ := startServer(t, 5, clock.Now)
	m := new(dns.Msg)
	m.SetQuestion("2.0.0.127.bl.greypit.test.", dns.TypeA)
	c := &dns.Client{Net: "udp", Timeout: 200 * time.Millisecond}
	answered := 0
	for range 15 {
		if _, _, err := c.Exchange(m, addr); err == nil {
			answered++
		}
	}
	if answered != 10 {
		t.Errorf("%d of 15 queries answered at a frozen clock, want the burst of 10", answered)
	}
	clock.Advance(time.Second)
	if _, _, err := c.Exchange(m, addr); err != nil {
		t.Errorf("after a second: %v", err)
	}
	l := &limiter{rate: 1, m: map[netip.Prefix]*bucket{}}
	now := clock.Now()
	if !l.allow(netip.MustParseAddr("192.0.2.1"), now) || !l.allow(netip.MustParseAddr("192.0.2.1"), now) || l.allow(netip.MustParseAddr("192.0.2.200"), now) {
		t.Error("limiter does not share a bucket within a /24")
	}
	if !l.allow(netip.MustParseAddr("192.0.3.1"), now) {
		t.Error("limiter: another /24 is limited")
	}
}
