package e2e

import (
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/greypit/greypit/internal/testenv"
)

// swaksVia sends one message through the balancer at lb from src.
func swaksVia(t *testing.T, lb, src, rcpt, subject string) testenv.SwaksResult {
	t.Helper()
	host, port, _ := net.SplitHostPort(lb)
	return testenv.Swaks(t, "--server", host, "--port", port, "--local-interface", src,
		"--helo", "client.example.org", "--from", "sender@example.org", "--to", rcpt,
		"--h-Subject", subject, "--timeout", "30s")
}

// verdictFor waits for the verdict line of client.
func (g *Greypit) verdictFor(client string) string {
	g.t.Helper()
	return g.WaitLog(regexp.MustCompile(`msg=verdict .*client=`+regexp.QuoteMeta(client)+` `), 30*time.Second)
}

// Behind a real HAProxy (send-proxy-v2 and send-proxy; IPv4 and IPv6
// clients, and IPv4 ones through an IPv6 socket), greypit judges the
// true client: greylisting keys on it, an allow-listed one is spliced and
// the real Postfix logs its address, a block-listed one is tarpitted, an
// early talker behind the balancer is caught by the pregreet test. A
// direct connection from an address outside smtp.proxy_trusted, a
// trusted one without a header and one with a malformed header are closed
// without a banner. HAProxy's v2 LOCAL health checks are closed quietly.
func TestProxyProtocolIn(t *testing.T) {
	testenv.Require(t, "haproxy", "promtool")
	maddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	pf := backend(t, testenv.ModeProxy)
	g := startGreypit(t, greypitOpts{backend: pf.Addr(), allow: []string{"127.0.3.5"}, block: []string{"127.0.3.66"},
		sets: []string{"smtp.proxy_protocol=true", "smtp.proxy_trusted=127.0.0.1/32", "smtp.proxy_timeout=1s", "tarpit.stutter=2ms",
			"metrics.listen=" + maddr}})
	v2 := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	v1 := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	v6 := fmt.Sprintf("[::1]:%d", testenv.FreePort(t))
	// An IPv6 socket taking IPv4 clients: HAProxy sends them as TCP6 with
	// a v4-mapped source.
	mappedPort := testenv.FreePort(t)
	mapped := fmt.Sprintf("127.0.0.1:%d", mappedPort)
	lb := testenv.StartHAProxy(t,
		testenv.HAProxyRoute{Listen: v2, Server: g.Addr, Send: "send-proxy-v2", Check: true},
		testenv.HAProxyRoute{Listen: v1, Server: g.Addr, Send: "send-proxy"},
		testenv.HAProxyRoute{Listen: v6, Server: g.Addr, Send: "send-proxy-v2"},
		testenv.HAProxyRoute{Listen: fmt.Sprintf("[::ffff:127.0.0.1]:%d v4v6", mappedPort), Server: g.Addr, Send: "send-proxy-v2"},
	)
	defer func() {
		if t.Failed() {
			t.Logf("haproxy output:\n%s", lb.Output())
		}
	}()

	// Grey, through v2, v1 and the IPv6 socket: the tuple is the true
	// client's network (IPv4, also when mapped), not the balancer's
	// (127.0.0.1 is in another /24).
	for _, tc := range []struct{ lb, src string }{{v2, "127.0.3.7"}, {v1, "127.0.4.7"}, {mapped, "127.0.9.7"}} {
		r := swaksVia(t, tc.lb, tc.src, "alice@example.test", "grey")
		expectGreylisted(t, r, "new client "+tc.src+" via "+tc.lb)
		v := g.verdictFor(tc.src)
		if !strings.Contains(v, "path=grey") || !strings.Contains(v, "outcome=greylisted") {
			t.Errorf("verdict of %s: %s", tc.src, v)
		}
		net24 := tc.src[:strings.LastIndex(tc.src, ".")]
		if out := why(t, g, tc.src); !strings.Contains(out, net24+".0/24") {
			t.Errorf("db why %s shows no tuple of its /24:\n%s", tc.src, out)
		}
	}
	if out := why(t, g, "127.0.0.1"); strings.Contains(out, "127.0.0.0/24") {
		t.Errorf("the balancer's network got a greylist tuple:\n%s", out)
	}

	// IPv6 client through the v6 frontend, forwarded over IPv4.
	expectGreylisted(t, swaksVia(t, v6, "::1", "alice@example.test", "grey v6"), "::1 via "+v6)
	if v := g.verdictFor("::1"); !strings.Contains(v, "path=grey") {
		t.Errorf("verdict of ::1: %s", v)
	}

	// White: spliced, and Postfix (PROXY v2 hand-off) logs the true
	// client; the splice carried only the client's bytes, not HAProxy's
	// header, or Postfix would have rejected the session.
	for i, via := range []string{v2, v1} {
		r := swaksVia(t, via, "127.0.3.5", "bob@example.test", fmt.Sprintf("white %d", i))
		if r.Code != 0 {
			t.Fatalf("white client via %s not delivered:\n%s", via, r)
		}
		pf.WaitLogN(t, regexp.MustCompile(`client=\S*\[127\.0\.3\.5\]`), i+1, 20*time.Second)
		pf.WaitMessages(t, i+1, 20*time.Second)
	}
	if v := g.verdictFor("127.0.3.5"); !strings.Contains(v, "path=white") || !strings.Contains(v, "outcome=spliced") {
		t.Errorf("white verdict: %s", v)
	}

	// Black: tarpitted under its own address.
	before := connectCount(pf)
	tarpitFinal2 := func(via string) string {
		r := swaksVia(t, via, "127.0.3.66", "victim@foreign.example", "listed")
		return replyTo(r, ".")
	}
	if final := tarpitFinal2(v2); !strings.HasPrefix(final, "451 4.7.1") || !strings.Contains(final, "127.0.3.66") {
		t.Errorf("black client's final reply: %q", final)
	}
	if v := g.verdictFor("127.0.3.66"); !strings.Contains(v, "path=black") || !strings.Contains(v, "held=") {
		t.Errorf("black verdict: %s", v)
	}
	if n := connectCount(pf); n != before {
		t.Errorf("the backend saw %d connection(s) from the black client", n-before)
	}

	// Pregreet behind the balancer: what follows the header before the
	// banner is early talk of the true client.
	c := testenv.DialSMTP(t, "127.0.5.8:0", v2)
	c.Send("EHLO eager.example")
	if r := c.ReadReply(); r.Code != 220 {
		t.Fatalf("banner after pregreet: %s", r)
	}
	c.Close()
	g.waitWhy("127.0.5.8", "BLACK", 10*time.Second)
	if v := g.verdictFor("127.0.5.8"); !strings.Contains(v, "pregreet") {
		t.Errorf("pregreet verdict: %s", v)
	}

	// Direct connections: untrusted source, trusted without a header,
	// trusted with a malformed one. None gets a byte, each is a verdict.
	for _, tc := range []struct{ src, send, err string }{
		{"127.0.6.9", "", "127.0.6.9 is not in smtp.proxy_trusted"},
		{"127.0.0.1", "", "i/o timeout"},
		{"127.0.0.1", "GET / HTTP/1.0\r\n\r\n", "no PROXY header"},
	} {
		conn := testenv.Dial(t, tc.src, g.Addr)
		conn.Write([]byte(tc.send))
		start := time.Now()
		// Unread input makes the close a reset; either way, no banner.
		got, err := io.ReadAll(conn)
		if len(got) != 0 || (err != nil && !errors.Is(err, syscall.ECONNRESET)) {
			t.Errorf("direct %s (%q): read %q, %v; want a bare close", tc.src, tc.send, got, err)
		}
		if tc.err == "i/o timeout" && time.Since(start) > 10*time.Second {
			t.Errorf("a missing header was not cut off by smtp.proxy_timeout")
		}
		g.WaitLog(regexp.MustCompile(`msg=verdict .*outcome=proxy-error .*`+regexp.QuoteMeta(tc.err)), 10*time.Second)
	}

	if v := value(scrape(t, maddr), `greypit_sessions_total{outcome="proxy-error",path="none"}`); v != 3 {
		t.Errorf("proxy-error sessions counted %v, want 3", v)
	}

	// HAProxy's health checks (v2 LOCAL) were closed quietly, no verdict.
	g.WaitLog(regexp.MustCompile(`msg="proxy health check"`), 10*time.Second)
	for _, v := range g.Verdicts() {
		if strings.Contains(v, "client=127.0.0.1 ") && !strings.Contains(v, "outcome=proxy-error") {
			t.Errorf("a verdict for the balancer itself: %s", v)
		}
	}
}
