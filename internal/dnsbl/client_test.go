package dnsbl

import (
	"bytes"
	"context"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/greypit/greypit/internal/dnsx"
	"github.com/greypit/greypit/internal/testenv"
)

// testEntries are the RFC 5782 §5 test records a healthy list serves.
func testEntries(zone string) []string {
	return []string{
		"2.0.0.127." + zone + ". 300 IN A 127.0.0.2",
		"2.0.0.0.0.0.f.7.f.f.f.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0." + zone + ". 300 IN A 127.0.0.2",
	}
}

func newDNS(t *testing.T, zones ...string) *testenv.DNSServer {
	s := testenv.StartDNS(t, zones...)
	for _, z := range zones {
		s.Add(t, testEntries(z)...)
	}
	return s
}

func checker(t *testing.T, srv *testenv.DNSServer, sites []string, o Options) *Checker {
	t.Helper()
	ss, err := ParseSites(sites)
	if err != nil {
		t.Fatal(err)
	}
	o.Sites = ss
	o.DNS = &dnsx.Client{Server: srv.Addr}
	if o.Timeout == 0 {
		o.Timeout = 2 * time.Second
	}
	if o.Threshold == 0 {
		o.Threshold = 3
	}
	if o.AllowThreshold == 0 {
		o.AllowThreshold = -1
	}
	return NewChecker(o)
}

func TestScoring(t *testing.T) {
	srv := newDNS(t, "bl.test", "pbl.test", "wl.test")
	srv.Add(t,
		"9.2.0.192.bl.test. 300 IN A 127.0.0.4",
		"9.2.0.192.bl.test. 300 IN TXT \"listed: bot\"",
		"9.2.0.192.pbl.test. 300 IN A 127.0.0.20", // outside pbl.test's filter
		"7.2.0.192.wl.test. 300 IN A 127.0.10.2",
		"7.2.0.192.pbl.test. 300 IN A 127.0.0.10",
	)
	c := checker(t, srv, []string{"bl.test=127.0.0.[2..11]*3", "pbl.test=127.0.0.[10..11]*1", "wl.test=127.0.[0..255].[1..3]*-2"}, Options{})
	ctx := context.Background()

	r := c.Check(ctx, netip.MustParseAddr("192.0.2.9"))
	if r.Score != 3 || !r.Black || r.Allow || len(r.Listed) != 2 {
		t.Fatalf("192.0.2.9: %+v", r)
	}
	if h := r.Listed[0]; h.Zone != "bl.test" || h.Weight != 3 || h.TXT != "listed: bot" || h.Answers[0] != "127.0.0.4" {
		t.Errorf("bl.test hit %+v", h)
	}
	if h := r.Listed[1]; h.Zone != "pbl.test" || h.Weight != 0 {
		t.Errorf("pbl.test answer outside its filter weighs %+v", h)
	}
	if got := r.Names(); got != "bl.test (127.0.0.4)" {
		t.Errorf("Names() = %q", got)
	}

	r = c.Check(ctx, netip.MustParseAddr("192.0.2.7"))
	if r.Score != -1 || r.Black || !r.Allow {
		t.Errorf("192.0.2.7 (allow-listed, PBL): %+v", r)
	}
	r = c.Check(ctx, netip.MustParseAddr("192.0.2.1"))
	if r.Score != 0 || r.Black || r.Allow || len(r.Listed) != 0 || len(r.Skipped) != 0 {
		t.Errorf("192.0.2.1 (on no list): %+v", r)
	}
}

func TestIPv6Nibbles(t *testing.T) {
	srv := newDNS(t, "bl.test")
	srv.Add(t, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.test. 300 IN A 127.0.0.2")
	c := checker(t, srv, []string{"bl.test*3"}, Options{})
	if r := c.Check(context.Background(), netip.MustParseAddr("2001:db8::1")); !r.Black {
		t.Errorf("2001:db8::1: %+v", r)
	}
	if r := c.Check(context.Background(), netip.MustParseAddr("2001:db8::2")); r.Black || len(r.Listed) != 0 {
		t.Errorf("2001:db8::2: %+v", r)
	}
}

// Spamhaus answers 127.255.255.x to queries it refuses; that is no listing.
func TestErrorCodes(t *testing.T) {
	srv := newDNS(t, "zen.test")
	srv.Add(t, "9.2.0.192.zen.test. 300 IN A 127.255.255.254")
	c := checker(t, srv, []string{"zen.test*3"}, Options{})
	r := c.Check(context.Background(), netip.MustParseAddr("192.0.2.9"))
	if r.Black || r.Score != 0 || len(r.Skipped) != 1 || !strings.Contains(r.Skipped[0].Why, "127.255.255.254") {
		t.Errorf("error code: %+v", r)
	}
}

func TestCacheByTTL(t *testing.T) {
	srv := newDNS(t, "bl.test")
	srv.Add(t, "9.2.0.192.bl.test. 120 IN A 127.0.0.2")
	clock := testenv.NewClock(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	c := checker(t, srv, []string{"bl.test*3"}, Options{Now: clock.Now})
	a := netip.MustParseAddr("192.0.2.9")
	ctx := context.Background()
	if r := c.Check(ctx, a); !r.Black || r.Listed[0].Cached {
		t.Fatalf("first check: %+v", r)
	}
	srv.Remove("9.2.0.192.bl.test", "A") // delisted; the cache still knows
	clock.Advance(119 * time.Second)
	if r := c.Check(ctx, a); !r.Black || !r.Listed[0].Cached {
		t.Errorf("within the TTL: %+v", r)
	}
	if n := srv.Queries("9.2.0.192.bl.test", "A"); n != 1 {
		t.Errorf("%d A queries within the TTL, want 1", n)
	}
	clock.Advance(2 * time.Second)
	if r := c.Check(ctx, a); r.Black {
		t.Errorf("after the TTL, still listed: %+v", r)
	}
	if n := srv.Queries("9.2.0.192.bl.test", "A"); n != 2 {
		t.Errorf("%d A queries after the TTL, want 2", n)
	}
}

func TestCacheBounded(t *testing.T) {
	c := newCache(100)
	now := time.Now()
	for i := range 1000 {
		c.put(string(rune(i))+"x", nil, now.Add(time.Hour), now)
		if c.len() > 100 {
			t.Fatalf("cache holds %d entries, bound 100", c.len())
		}
	}
}

// A list that does not answer is skipped for this host, and the check
// returns by the deadline: the banner is never held longer.
func TestTimeout(t *testing.T) {
	srv := newDNS(t, "slow.test", "bl.test")
	srv.Add(t, "9.2.0.192.bl.test. 300 IN A 127.0.0.2")
	srv.Drop("slow.test", true)
	var logBuf bytes.Buffer
	c := checker(t, srv, []string{"slow.test*3", "bl.test*1"}, Options{Timeout: 300 * time.Millisecond, Log: slog.New(slog.NewTextHandler(&logBuf, nil))})
	start := time.Now()
	r := c.Check(context.Background(), netip.MustParseAddr("192.0.2.9"))
	took := time.Since(start)
	if r.Score != 1 || len(r.Skipped) != 1 || r.Skipped[0].Zone != "slow.test" || r.Skipped[0].Why != "timeout" {
		t.Errorf("with a silent list: %+v", r)
	}
	if took > 2*time.Second {
		t.Errorf("check took %v with a 300ms timeout", took)
	}
	c.Check(context.Background(), netip.MustParseAddr("192.0.2.10"))
	// A caller that gives up (classify decided otherwise) is not a failure.
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	c.warned = map[string]time.Time{}
	c.Check(gone, netip.MustParseAddr("192.0.2.11"))
	if n := strings.Count(logBuf.String(), "dnsbl list skipped for a host"); n != 1 || !strings.Contains(logBuf.String(), "zone=slow.test") {
		t.Errorf("%d warnings for two timeouts within a minute, want 1:\n%s", n, logBuf.String())
	}
}

func TestHealthCheck(t *testing.T) {
	srv := testenv.StartDNS(t, "good.test", "empty.test", "world.test", "v4only.test")
	srv.Add(t, testEntries("good.test")...)
	srv.Add(t, testEntries("world.test")...)
	srv.Add(t, "1.0.0.127.world.test. 300 IN A 127.0.0.2") // a list answering for everything
	srv.Add(t, testEntries("v4only.test")[0])
	for _, z := range []string{"good.test", "empty.test", "world.test", "v4only.test"} {
		srv.Add(t, "9.2.0.192."+z+". 300 IN A 127.0.0.2")
	}
	c := checker(t, srv, []string{"good.test", "empty.test", "world.test", "v4only.test"}, Options{Threshold: 10})
	hs := c.CheckHealth(context.Background())
	want := map[string][2]string{
		"good.test":   {"", ""},
		"empty.test":  {"127.0.0.2 is not listed", "::ffff:127.0.0.2 is not listed"},
		"world.test":  {"lists everything", ""},
		"v4only.test": {"", "::ffff:127.0.0.2 is not listed"},
	}
	for _, h := range hs {
		w := want[h.Zone]
		if w[0] == "" && h.V4Err != "" || w[0] != "" && !strings.Contains(h.V4Err, w[0]) ||
			w[1] == "" && h.V6Err != "" || w[1] != "" && !strings.Contains(h.V6Err, w[1]) {
			t.Errorf("health of %s: %+v, want %q", h.Zone, h, w)
		}
	}
	r := c.Check(context.Background(), netip.MustParseAddr("192.0.2.9"))
	if r.Score != 2 || len(r.Skipped) != 2 {
		t.Errorf("after the health check: %+v (want good and v4only used, the others skipped)", r)
	}
	for _, s := range r.Skipped {
		if !strings.HasPrefix(s.Why, "failed health check") {
			t.Errorf("skip %+v", s)
		}
	}
	if got := len(c.HealthReport()); got != 4 {
		t.Errorf("HealthReport has %d lists", got)
	}
}
