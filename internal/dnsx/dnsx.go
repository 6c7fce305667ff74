// Package dnsx owns greypit's DNS client plumbing: which recursive
// resolver to ask (dnsbl.resolver, or the system's from /etc/resolv.conf)
// and how to ask it, for the DNSBL client (package dnsbl, which needs
// answer TTLs and so speaks DNS itself through miekg/dns), SPF checks and
// the big-sender list (a net.Resolver pointed at the same server).
//
// Keeping this in one place means tests can point every lookup at a
// loopback DNS server, and a move to another DNS library touches one
// package.
package dnsx

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/miekg/dns"
)

// Server returns the resolver address to use: addr if set (a port is
// added when missing), else the first nameserver of /etc/resolv.conf.
func Server(addr string) (string, error) {
	if addr == "" {
		cc, err := dns.ClientConfigFromFile("/etc/resolv.conf")
		if err != nil || len(cc.Servers) == 0 {
			return "", fmt.Errorf("no resolver configured and none in /etc/resolv.conf: %v", err)
		}
		return net.JoinHostPort(cc.Servers[0], cc.Port), nil
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return net.JoinHostPort(addr, "53"), nil
	}
	return addr, nil
}

// Client sends queries to one recursive resolver.
type Client struct {
	Server string // host:port
}

// ErrTimeout is returned by Exchange when the deadline passed.
var ErrTimeout = errors.New("dns: timeout")

// Exchange sends m over UDP and retries over TCP when the answer is
// truncated (RFC 7766 §5). The context bounds the whole exchange.
func (c *Client) Exchange(ctx context.Context, m *dns.Msg) (*dns.Msg, error) {
	uc := &dns.Client{Net: "udp", UDPSize: 1232, Timeout: remaining(ctx)}
	r, _, err := uc.ExchangeContext(ctx, m, c.Server)
	if err == nil && r.Truncated {
		tc := &dns.Client{Net: "tcp", Timeout: remaining(ctx)}
		r, _, err = tc.ExchangeContext(ctx, m, c.Server)
	}
	if err != nil {
		var ne net.Error
		if ctx.Err() != nil || errors.As(err, &ne) && ne.Timeout() {
			return nil, fmt.Errorf("%w asking %s", ErrTimeout, c.Server)
		}
		return nil, fmt.Errorf("dns: asking %s: %w", c.Server, err)
	}
	return r, nil
}

func remaining(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return max(time.Until(d), time.Millisecond)
	}
	return 5 * time.Second
}

// NetResolver returns a stdlib resolver that asks server only, for code
// (SPF) that wants the *net.Resolver interface.
func NetResolver(server string) *net.Resolver {
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, server)
		},
	}
}
