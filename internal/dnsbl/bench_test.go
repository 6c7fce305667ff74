package dnsbl

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/greypit/greypit/internal/dnsx"
	"github.com/greypit/greypit/internal/store"
	"github.com/greypit/greypit/internal/testenv"
)

// BenchmarkCheckCached is the per-connection cost of three lists whose
// answers are cached: what every repeat client costs.
func BenchmarkCheckCached(b *testing.B) {
	srv := testenv.StartDNS(b, "a.test", "b.test", "c.test")
	srv.Add(b, "9.2.0.192.a.test. 3600 IN A 127.0.0.2", "9.2.0.192.a.test. 3600 IN TXT \"listed\"")
	ss, err := ParseSites([]string{"a.test=127.0.0.[2..11]*2", "b.test", "c.test*-1"})
	if err != nil {
		b.Fatal(err)
	}
	c := NewChecker(Options{Sites: ss, Threshold: 2, Timeout: 2 * time.Second, DNS: &dnsx.Client{Server: srv.Addr}})
	addr := netip.MustParseAddr("192.0.2.9")
	if r := c.Check(context.Background(), addr); !r.Black {
		b.Fatalf("warm-up: %+v", r)
	}
	b.ReportAllocs()
	for b.Loop() {
		c.Check(context.Background(), addr)
	}
}

// BenchmarkServerAnswer is the cost of answering one query from a store
// of 10,000 black entries (without the network).
func BenchmarkServerAnswer(b *testing.B) {
	st, err := store.OpenBolt(filepath.Join(b.TempDir(), "greypit.db"), store.BoltOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	for i := range 10000 {
		key := fmt.Sprintf("10.%d.%d.0/24", i/256, i%256)
		if i%2 == 0 {
			key = fmt.Sprintf("10.%d.%d.7", i/256, i%256)
		}
		if err := st.Put(context.Background(), store.Entry{Kind: store.Black, Key: key, Reason: "bench", Created: now, Updated: now}); err != nil {
			b.Fatal(err)
		}
	}
	s := &Server{Zone: "bl.test", Hostname: "ns.test", Store: st, TTL: time.Minute}
	for _, tc := range []struct{ name, q string }{
		{"address", "7.8.0.10.bl.test."},
		{"prefix", "9.9.0.10.bl.test."},
		{"unlisted", "1.1.1.192.bl.test."},
	} {
		b.Run(tc.name, func(b *testing.B) {
			m := new(dns.Msg)
			m.SetQuestion(tc.q, dns.TypeA)
			b.ReportAllocs()
			for b.Loop() {
				if r := s.answer(m); r.Rcode == dns.RcodeServerFailure {
					b.Fatal("SERVFAIL")
				}
			}
		})
	}
}
