package server_test

import (
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/greypit/greypit/internal/handoff"
	"github.com/greypit/greypit/internal/server"
)

func trusting(p string) *server.ProxyIn {
	return &server.ProxyIn{Trusted: []netip.Prefix{netip.MustParsePrefix(p)}, Timeout: 2 * time.Second}
}

// The header's source is the client: 192.0.2.7 is allow-listed (the
// balancer, 127.0.0.1, is blocked), so the session is spliced, and the
// backend's PROXY v2 header names 192.0.2.7, not the balancer. The header
// may arrive in pieces; the client's bytes after it reach the backend.
func TestProxyInWhite(t *testing.T) {
	f := newFixture(t, config{allow: "192.0.2.7\n", block: "127.0.0.0/8\n", proxyMTA: true, proxy: trusting("127.0.0.0/8")})
	c := f.dial(t)
	for _, part := range []string{"PROXY TCP4 192.0.2.7 ", "198.51.100.1 40000 25\r\n"} {
		io.WriteString(c.c, part)
		time.Sleep(20 * time.Millisecond) // the point: a header split across segments
	}
	c.expect(220, "", "backend.test ESMTP fake")
	c.cmd("EHLO client.example", 250, "", "backend.test")
	c.cmd("QUIT", 221, "", "Bye")
	c.expectEOF()
	mc := f.mta.Next(t)
	want := handoff.ProxyV2Header(netip.MustParseAddrPort("192.0.2.7:40000"), netip.MustParseAddrPort("198.51.100.1:25"))
	if string(mc.Proxy) != string(want) {
		t.Errorf("backend's PROXY header % x, want % x", mc.Proxy, want)
	}
}

// A peer outside proxy_trusted is closed unread; so is a trusted one whose
// header is missing (after the timeout), malformed, or a health check.
func TestProxyInRefused(t *testing.T) {
	for _, tc := range []struct {
		name, trusted, send string
	}{
		{"untrusted", "10.0.0.0/8", "PROXY TCP4 192.0.2.7 198.51.100.1 40000 25\r\n"},
		{"no header", "127.0.0.0/8", ""},
		{"malformed", "127.0.0.0/8", "PROXY TCP4 192.0.2.7 198.51.100.1 40000\r\n"},
		{"v2 local", "127.0.0.0/8", "\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, config{allow: "192.0.2.7\n", proxyMTA: true, proxy: trusting(tc.trusted)})
			c := f.dial(t)
			io.WriteString(c.c, tc.send)
			c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if b, _ := io.ReadAll(c.br); len(b) != 0 {
				t.Errorf("got %q, want a close without a byte", b)
			}
		})
	}
}
