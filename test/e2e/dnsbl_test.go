package e2e

import (
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/greypit/greypit/internal/testenv"
)

// dnsConfig points greypit's DNSBL, SPF and big-sender lookups at srv and
// keeps the built-in big-sender list out of the way (it is not resolvable
// without internet; its failures are only logged).
func dnsConfig(srv *testenv.DNSServer, more string) string {
	return fmt.Sprintf("\n[dnsbl]\nresolver = %q\n%s\n", srv.Addr, more)
}

// rfc5782 returns the §5 test entries of a healthy zone.
func rfc5782(zone string) []string {
	return []string{
		"2.0.0.127." + zone + ". 300 IN A 127.0.0.2",
		"2.0.0.0.0.0.f.7.f.f.f.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0." + zone + ". 300 IN A 127.0.0.2",
	}
}

// swaksFrom sends one message from the loopback address local with
// envelope sender from.
func (g *Greypit) swaksFrom(local, from, rcpt, subject string) testenv.SwaksResult {
	g.t.Helper()
	return testenv.Swaks(g.t, "--server", "127.0.0.1", "--port", fmt.Sprint(g.Port), "--local-interface", local,
		"--helo", "mx.pool.test", "--from", from, "--to", rcpt, "--h-Subject", subject, "--timeout", "30s")
}

// A host listed by a DNSBL is black (tarpitted, refused with the lists'
// names); an unlisted one is greylisted without its banner waiting past
// dnsbl.timeout for a list that never answers; lists that fail their test
// entries or time out are reported in the log and by `db why`; answers
// are cached.
func TestDNSBLClient(t *testing.T) {
	pf := backend(t, testenv.ModeProxy)
	srv := testenv.StartDNS(t, "bl.test", "broken.test", "slow.test")
	srv.Add(t, rfc5782("bl.test")...)
	srv.Add(t, rfc5782("slow.test")...)
	srv.Add(t,
		"7.0.0.127.bl.test. 300 IN A 127.0.0.4",
		`7.0.0.127.bl.test. 300 IN TXT "bot seen at trap"`,
		"7.0.0.127.broken.test. 300 IN A 127.0.0.2",
	)
	g := startGreypit(t, greypitOpts{backend: pf.Addr(), extra: dnsConfig(srv, `
sites = ["bl.test=127.0.0.[2..11]*2", "broken.test*5", "slow.test"]
threshold = 2
timeout = "1s"`)})
	// broken.test has no test entries: skipped (it would make 127.0.0.7 score 7).
	g.WaitLog(regexpMust(`dnsbl list skipped: failed RFC 5782 test-entry check.*zone=broken\.test`), 20*time.Second)
	before := quietBackend(t, pf, 0)
	srv.Drop("slow.test", true) // from now on it never answers

	r := g.swaks("127.0.0.7", "carol@example.test", "listed")
	if r.Code == 0 || !strings.Contains(r.Out, "listed in bl.test (127.0.0.4)") {
		t.Fatalf("listed host was not refused with the list's name:\n%s", r)
	}
	v := g.WaitVerdicts(1)
	if !strings.Contains(v[0], "path=black") || !strings.Contains(v[0], `rule="dnsbl score 2: bl.test 127.0.0.4 weight 2"`) {
		t.Errorf("verdict: %s", v[0])
	}
	if n := connectCount(pf); n != before {
		t.Errorf("the backend saw %d connections from a DNSBL-black host", n-before)
	}
	out, code := g.DB("why", "127.0.0.7")
	for _, want := range []string{"127.0.0.7: BLACK", "dnsbl: score 2", `dnsbl listed: bl.test 127.0.0.4 weight 2 "bot seen at trap"`,
		"dnsbl skipped: broken.test: failed health check: test entry 127.0.0.2 is not listed", "dnsbl skipped: slow.test: timeout"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("db why 127.0.0.7 lacks %q (exit %d):\n%s", want, code, out)
		}
	}
	if n := srv.Queries("7.0.0.127.bl.test", "A"); n != 1 {
		t.Errorf("bl.test was asked %d times about 127.0.0.7, want 1 (the rest from the cache)", n)
	}

	// An unlisted host: grey, and its banner is not held past the timeout.
	c := testenv.DialSMTP(t, "127.0.0.8:0", g.Addr)
	start := time.Now()
	c.Expect(220, "")
	// The greet pause (300ms) runs during the lookups, not after them.
	if took := time.Since(start); took > time.Second+800*time.Millisecond {
		t.Errorf("banner after %v with dnsbl.timeout 1s and greet_wait 300ms", took)
	}
	c.Close()
	r = g.swaks("127.0.0.8", "carol@example.test", "unlisted")
	expectGreylisted(t, r, "unlisted host")
	g.WaitLog(regexpMust(`dnsbl list skipped for a host.*zone=slow\.test.*err=timeout`), 10*time.Second)
	v = g.WaitVerdicts(3)
	if !strings.Contains(v[2], "client=127.0.0.8 path=grey") || !strings.Contains(v[2], "dnsbl_score=0") {
		t.Errorf("verdict of the unlisted host: %s", v[2])
	}
}

// SPF-aware keying end to end: a retry from another /24 of the pool that
// the sender's SPF record authorises is delivered through Postfix; the
// same without SPF stays greylisted.
func TestSPFGreylist(t *testing.T) {
	pf := backend(t, testenv.ModeProxy)
	srv := testenv.StartDNS(t, "pool.test", "nospf.test")
	srv.Add(t, `pool.test. 300 IN TXT "v=spf1 ip4:127.0.1.0/24 ip4:127.0.2.0/24 -all"`, "nospf.test. 300 IN A 127.0.0.1")
	g := startGreypit(t, greypitOpts{backend: pf.Addr(), extra: dnsConfig(srv, "")})

	r := g.swaksFrom("127.0.1.5", "bounce-1@pool.test", "alice@example.test", "spf")
	first := time.Now()
	expectGreylisted(t, r, "first attempt")
	r = g.swaksFrom("127.0.1.5", "x@nospf.test", "alice@example.test", "no spf")
	expectGreylisted(t, r, "first attempt without SPF")
	out, _ := g.DB("list", "-type", "grey")
	if !strings.Contains(out, "spf:pool.test bounce-#@pool.test alice@example.test") || !strings.Contains(out, "127.0.1.0/24 x@nospf.test alice@example.test") {
		t.Errorf("grey tuples:\n%s", out)
	}
	waitUntil(first.Add(passDelay))

	r = g.swaksFrom("127.0.2.9", "bounce-2@pool.test", "alice@example.test", "spf")
	if r.Code != 0 || !strings.Contains(r.Out, "queued as") {
		t.Fatalf("retry from another /24 of the SPF pool was not delivered:\n%s", r)
	}
	pf.WaitLog(t, regexp.MustCompile(`client=\S*\[127\.0\.2\.9\]`), 20*time.Second)
	pf.WaitMessages(t, 1, 20*time.Second)

	r = g.swaksFrom("127.0.4.9", "x@nospf.test", "alice@example.test", "no spf")
	expectGreylisted(t, r, "retry without SPF from another /24")
	if n := len(pf.Messages()); n != 1 {
		t.Errorf("backend has %d messages, want 1", n)
	}
}

// greypit's own zone answers a real DNS client (dig) for a black address
// and a black prefix (as escalation writes them), A and TXT, IPv4 and
// IPv6, over UDP and TCP, with the RFC 5782 test entries, and refuses
// names outside its zone without offering recursion.
func TestDNSBLZone(t *testing.T) {
	testenv.Require(t, "dig")
	port := testenv.FreePort(t)
	g := startGreypit(t, greypitOpts{backend: testenv.ClosedPort(t), extra: fmt.Sprintf(`
[dnsbl]
serve_listen = "127.0.0.1:%d"
serve_zone = "bl.greypit.test"
`, port)})
	for _, add := range [][]string{
		{"-reason", "trap hit", "192.0.2.9"},
		{"-reason", "escalated: 5 black hosts", "198.51.100.0/24"},
		{"-reason", "escalated v6", "2001:db8::/48"},
	} {
		if out, code := g.DB(append([]string{"add", "-type", "black"}, add...)...); code != 0 {
			t.Fatalf("db add: %s", out)
		}
	}
	dig := func(args ...string) string {
		t.Helper()
		a := append([]string{"@127.0.0.1", "-p", fmt.Sprint(port), "+tries=1", "+time=3"}, args...)
		out, err := exec.Command("dig", a...).CombinedOutput()
		if err != nil {
			t.Fatalf("dig %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	v6 := "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.greypit.test"
	for _, proto := range []string{"+notcp", "+tcp"} {
		for _, tc := range []struct{ name, txt string }{
			{"9.2.0.192.bl.greypit.test", `"greypit: trap hit"`},
			{"77.100.51.198.bl.greypit.test", `"greypit: escalated: 5 black hosts (network 198.51.100.0/24)"`},
			{v6, `"greypit: escalated v6 (network 2001:db8::/48)"`},
			{"2.0.0.127.bl.greypit.test", `"RFC 5782 test entry"`},
			{"2.0.0.0.0.0.f.7.f.f.f.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.bl.greypit.test", `"RFC 5782 test entry"`},
		} {
			if got := strings.TrimSpace(dig(proto, "+short", tc.name, "A")); got != "127.0.0.2" {
				t.Errorf("dig %s %s A: %q", proto, tc.name, got)
			}
			if got := strings.TrimSpace(dig(proto, "+short", tc.name, "TXT")); got != tc.txt {
				t.Errorf("dig %s %s TXT: %q, want %s", proto, tc.name, got, tc.txt)
			}
		}
		for _, n := range []string{"1.0.0.127.bl.greypit.test", "10.2.0.192.bl.greypit.test"} {
			if out := dig(proto, n, "A"); !strings.Contains(out, "status: NXDOMAIN") || !regexp.MustCompile(`flags: qr aa rd;`).MatchString(out) {
				t.Errorf("dig %s %s: want an authoritative NXDOMAIN without ra:\n%s", proto, n, out)
			}
		}
	}
	// Not a resolver: a recursive query for another name is refused.
	out := dig("+recurse", "example.com", "A")
	if !strings.Contains(out, "status: REFUSED") || strings.Contains(out, " ra") || strings.Contains(out, "ANSWER: 1") {
		t.Errorf("recursive query for example.com:\n%s", out)
	}
}

// The big-sender list (an operator's addition here, resolved from its SPF
// record on the loopback DNS server) makes the provider's network white:
// spliced on the first try. `greypit lists show` prints it with its
// provenance.
func TestBigSenders(t *testing.T) {
	pf := backend(t, testenv.ModeProxy)
	srv := testenv.StartDNS(t, "bigmail.test")
	srv.Add(t, `bigmail.test. 300 IN TXT "v=spf1 include:_spf.bigmail.test -all"`,
		`_spf.bigmail.test. 300 IN TXT "v=spf1 ip4:127.0.9.0/24 ip6:2001:db8:9::/48 ~all"`)
	g := startGreypit(t, greypitOpts{backend: pf.Addr(), extra: dnsConfig(srv, `
[bigsenders]
add = ["bigmail.test"]
`)})
	g.WaitLog(regexpMust(`bigsenders: resolved`), 20*time.Second)
	r := g.swaks("127.0.9.5", "alice@example.test", "big sender")
	if r.Code != 0 {
		t.Fatalf("big sender was not delivered on the first try:\n%s", r)
	}
	if rs := r.Replies(); len(rs) == 0 || !strings.Contains(rs[0], pf.Hostname()) {
		t.Errorf("banner did not come from the backend: %q", rs)
	}
	pf.WaitMessages(t, 1, 20*time.Second)
	v := g.WaitVerdicts(1)
	if !strings.Contains(v[0], "path=white") || !strings.Contains(v[0], "bigsenders bigmail.test (127.0.9.0/24, SPF _spf.bigmail.test") {
		t.Errorf("verdict: %s", v[0])
	}
	out, code := runGreypit(g.args("lists", "show")...)
	for _, want := range []string{"bigmail.test: SPF bigmail.test", "source: config bigsenders.add", "127.0.9.0/24 (SPF record of _spf.bigmail.test)",
		"2001:db8:9::/48", "gmail.com: SPF _spf.google.com", "source: https://support.google.com/"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("lists show lacks %q (exit %d):\n%s", want, code, out)
		}
	}
	// Turned off, the same host is greylisted.
	g.Stop()
	g.Sets = []string{"bigsenders.enabled=false"}
	g.Start()
	r = g.swaks("127.0.9.6", "alice@example.test", "big sender off")
	expectGreylisted(t, r, "with bigsenders.enabled=false")
}

// Selective mode: a host with a good DNSWL score skips greylisting and is
// spliced on its first try; one without good signals is greylisted; in
// mode "all" the DNSWL host is greylisted too.
func TestSelectiveMode(t *testing.T) {
	pf := backend(t, testenv.ModeProxy)
	srv := testenv.StartDNS(t, "wl.test", "pool.test")
	srv.Add(t, rfc5782("wl.test")...)
	srv.Add(t, "12.0.0.127.wl.test. 300 IN A 127.0.10.2", "13.0.0.127.wl.test. 300 IN A 127.0.10.2",
		`pool.test. 300 IN TXT "v=spf1 ip4:127.0.1.0/24 ip4:127.0.2.0/24 -all"`)
	conf := dnsConfig(srv, `
sites = ["wl.test=127.0.[0..255].[1..3]*-2"]
allow_threshold = -1`)
	g := startGreypit(t, greypitOpts{backend: pf.Addr(), extra: conf, sets: []string{"greylist.mode=selective"}})
	r := g.swaks("127.0.0.12", "alice@example.test", "dnswl")
	if r.Code != 0 {
		t.Fatalf("DNSWL host in selective mode was not delivered on the first try:\n%s", r)
	}
	pf.WaitMessages(t, 1, 20*time.Second)
	r = g.swaks("127.0.0.14", "alice@example.test", "unknown")
	expectGreylisted(t, r, "host without good signals")
	v := g.WaitVerdicts(2)
	if !strings.Contains(v[0], "path=white") || !strings.Contains(v[0], "dnsbl allow score -2 (selective mode)") {
		t.Errorf("verdict: %s", v[0])
	}

	// A known SPF sender: once it has passed greylisting, a new recipient
	// from another address of its pool is delivered on the first try.
	r = g.swaksFrom("127.0.1.5", "news@pool.test", "bob@example.test", "spf first")
	first := time.Now()
	expectGreylisted(t, r, "SPF sender's first attempt")
	waitUntil(first.Add(passDelay))
	if r = g.swaksFrom("127.0.1.5", "news@pool.test", "bob@example.test", "spf retry"); r.Code != 0 {
		t.Fatalf("SPF sender's retry:\n%s", r)
	}
	if r = g.swaksFrom("127.0.2.7", "alerts@pool.test", "carol@example.test", "known sender"); r.Code != 0 || !strings.Contains(r.Out, "queued as") {
		t.Fatalf("known SPF sender, new recipient, another /24: not delivered on the first try:\n%s", r)
	}
	pf.WaitMessages(t, 3, 20*time.Second)

	g.Stop()
	g.Sets = []string{"greylist.mode=all"}
	g.Start()
	r = g.swaks("127.0.0.13", "erin@example.test", "dnswl, mode all")
	expectGreylisted(t, r, "DNSWL host in mode all")
	r = g.swaksFrom("127.0.2.8", "alerts@pool.test", "dave@example.test", "known sender, mode all")
	expectGreylisted(t, r, "known SPF sender in mode all")
}

// expectGreylisted checks that the recipient of r was greylisted.
func expectGreylisted(t *testing.T, r testenv.SwaksResult, what string) {
	t.Helper()
	if got := replyTo(r, "RCPT TO"); !strings.HasPrefix(got, "451 4.7.1") {
		t.Fatalf("%s: RCPT reply %q, want 451 4.7.1 (greylisted)\n%s", what, got, r)
	}
}
