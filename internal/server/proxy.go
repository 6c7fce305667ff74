package server

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/greypit/greypit/internal/proxyproto"
	"github.com/greypit/greypit/internal/session"
)

// ProxyIn makes the listeners expect a PROXY protocol header (v1 or v2)
// from a trusted load balancer at the start of every connection.
type ProxyIn struct {
	Trusted []netip.Prefix
	Timeout time.Duration
}

// errProxyLocal marks a balancer's own connection (v2 LOCAL, v1
// UNKNOWN): a health check, closed quietly.
var errProxyLocal = fmt.Errorf("proxy header: balancer's own connection")

// accept reads the header and returns c reporting the true client's
// addresses. Nothing is trusted from a peer outside Trusted: its
// connection is closed before a byte is read.
func (p *ProxyIn) accept(c net.Conn) (net.Conn, error) {
	peer := session.AddrPort(c.RemoteAddr()).Addr().Unmap()
	trusted := false
	for _, t := range p.Trusted {
		if t.Contains(peer) {
			trusted = true
			break
		}
	}
	if !trusted {
		return nil, fmt.Errorf("proxy header: %s is not in smtp.proxy_trusted", peer)
	}
	c.SetReadDeadline(time.Now().Add(p.Timeout))
	h, err := proxyproto.Read(c)
	c.SetReadDeadline(time.Time{})
	if err != nil {
		return nil, fmt.Errorf("proxy header from %s: %w", peer, err)
	}
	if h.Local {
		return nil, errProxyLocal
	}
	return proxyproto.Wrap(c, h), nil
}

// proxyFailed logs a connection refused for its PROXY header. A health
// check is only a debug line; anything else is a verdict with the peer's
// own address, since no client address could be trusted; it is kept out
// of the session history, which would blame the balancer's network.
func (s *Server) proxyFailed(id string, c net.Conn, err error, start time.Time) {
	peer := session.AddrPort(c.RemoteAddr()).Addr()
	if err == errProxyLocal {
		s.Log.Debug("proxy health check", "conn", id, "peer", peer.String())
		return
	}
	s.Log.Info("verdict", "conn", id, "client", peer.String(), "path", "none", "outcome", "proxy-error",
		"err", err.Error(), "duration", time.Since(start).Round(time.Millisecond))
	proxyErrors.Inc()
}
