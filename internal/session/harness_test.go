package session_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"github.com/greypit/greypit/internal/testenv"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/greypit/greypit/internal/greylist"
	"github.com/greypit/greypit/internal/handoff"
	"github.com/greypit/greypit/internal/session"
	"github.com/greypit/greypit/internal/smtp"
	"github.com/greypit/greypit/internal/store"
)

const hostname = "mx.greypit.test"

// harness runs sessions on loopback connections against a real bolt store
// and a fake backend.
type harness struct {
	t      *testing.T
	cfg    session.Config
	clock  *testenv.Clock
	store  *store.Bolt
	grey   *greylist.Greylister
	dialer *handoff.Dialer
	mta    *testenv.FakeMTA // nil when the dialer points elsewhere
	white  chan netip.Addr
	wrap   bool // record the session's writes (see recConn)
	trap   func(ctx context.Context, a netip.Addr, helo, from, rcpt string) (string, bool)
	// connected, if set, is the session's Connected time.
	connected time.Time

	ln  net.Listener
	wg  sync.WaitGroup
	ctx context.Context
}

type option func(*harness)

func withMTA(proxy bool, opts ...func(*testenv.FakeMTA)) option {
	return func(h *harness) {
		h.mta = testenv.NewFakeMTA(h.t, proxy, opts...)
		h.dialer.Address = h.mta.Addr
		if proxy {
			h.dialer.Mode = handoff.ProxyV2
		} else {
			h.dialer.Mode = handoff.XClient
		}
	}
}

func newHarness(t *testing.T, opts ...option) *harness {
	t.Helper()
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "greypit.db"), store.BoltOptions{})
	if err != nil {
		t.Fatalf("OpenBolt: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	c := testenv.NewClock(time.Now().Truncate(time.Second))
	h := &harness{
		t: t,
		cfg: session.Config{
			Hostname:       hostname,
			CommandTimeout: 10 * time.Second,
			SessionTimeout: 30 * time.Second,
			MaxErrors:      10,
			MaxRecipients:  5,
			MaxMessageSize: 1000000,
			Extensions: func() []string {
				return []string{"PIPELINING", "SIZE 1000000", "8BITMIME", "ENHANCEDSTATUSCODES"}
			},
		},
		clock: c,
		store: st,
		grey: &greylist.Greylister{
			Store: st,
			Params: store.GreyParams{
				PassDelay:   5 * time.Minute,
				RetryWindow: 4 * time.Hour,
				PassedTTL:   24 * time.Hour,
			},
			PrefixV4: 24, PrefixV6: 64,
			Now: c.Now,
		},
		dialer: &handoff.Dialer{
			Address:        testenv.ClosedPort(t),
			Mode:           handoff.ProxyV2,
			ConnectTimeout: 5 * time.Second,
			ReplyTimeout:   5 * time.Second,
			Hostname:       "greypit.test",
		},
		white: make(chan netip.Addr, 8),
	}
	for _, o := range opts {
		o(h)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.ln = ln
	ctx, cancel := context.WithCancel(context.Background())
	h.ctx = ctx
	t.Cleanup(func() {
		cancel()
		ln.Close()
		h.wg.Wait()
	})
	return h
}

// running is one session being served.
type running struct {
	sess   *session.Session
	done   chan session.Result
	writes *recConn // when the harness wraps connections
}

func (r *running) result(t *testing.T) session.Result {
	t.Helper()
	select {
	case res := <-r.done:
		return res
	case <-time.After(15 * time.Second):
		t.Fatal("session did not end")
		return session.Result{}
	}
}

// recConn records every Write the session makes on the connection.
type recConn struct {
	net.Conn
	mu     sync.Mutex
	writes []string
}

func (c *recConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	c.writes = append(c.writes, string(b))
	c.mu.Unlock()
	return c.Conn.Write(b)
}

func (c *recConn) Writes() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.writes)
}

// start connects a client and runs a session on the server side. What the
// client writes before start returns may already be on the wire when the
// session starts (that is how the pregreet test works).
func (h *harness) start(early ...string) (*client, *running) {
	h.t.Helper()
	r := &running{done: make(chan session.Result, 1)}
	accepted := make(chan net.Conn, 1)
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		c, err := h.ln.Accept()
		if err != nil {
			return
		}
		accepted <- c
	}()
	nc, err := net.Dial("tcp", h.ln.Addr().String())
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { nc.Close() })
	for _, e := range early {
		if _, err := io.WriteString(nc, e); err != nil {
			h.t.Fatal(err)
		}
	}
	var sc net.Conn
	select {
	case sc = <-accepted:
	case <-time.After(10 * time.Second):
		h.t.Fatal("accept timed out")
	}
	if h.wrap {
		r.writes = &recConn{Conn: sc}
		sc = r.writes
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	deps := &session.Deps{
		Greylist: h.grey,
		Dialer:   h.dialer,
		Whitelist: func(_ context.Context, a netip.Addr) error {
			h.white <- a
			return nil
		},
		Trap: h.trap,
	}
	r.sess = session.New(sc, &h.cfg, deps, log)
	r.sess.Connected = h.connected
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		res := r.sess.Run(h.ctx)
		r.done <- res
		// The caller's part, as the server does it: close the sending
		// half and drain, so unread input does not turn into a RST that
		// destroys the last reply.
		if tc, ok := sc.(*net.TCPConn); ok && tc.CloseWrite() == nil {
			tc.SetReadDeadline(time.Now().Add(5 * time.Second))
			io.Copy(io.Discard, tc)
		}
		sc.Close()
	}()
	return &client{t: h.t, c: nc, br: bufio.NewReader(nc)}, r
}

// client is the SMTP client side of a test session.
type client struct {
	t  *testing.T
	c  net.Conn // *net.TCPConn, or *tls.Conn after STARTTLS
	br *bufio.Reader
}

func (c *client) write(s string) {
	c.t.Helper()
	c.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c.c, s); err != nil {
		c.t.Fatalf("client write: %v", err)
	}
}

func (c *client) reply() (smtp.Reply, string) {
	c.t.Helper()
	c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	r, raw, err := smtp.ParseReply(c.br)
	if err != nil {
		c.t.Fatalf("client reading reply: %v (got %q)", err, raw)
	}
	return r, string(raw)
}

// expect reads a reply and checks its code, enhanced code (if enh is not
// empty) and that its text contains text.
func (c *client) expect(code int, enh, text string) smtp.Reply {
	c.t.Helper()
	r, raw := c.reply()
	if r.Code != code || enh != "" && r.Enhanced != enh || !strings.Contains(strings.Join(r.Lines, "\n"), text) {
		c.t.Fatalf("reply %q; want %d %s ...%s...", raw, code, enh, text)
	}
	return r
}

func (c *client) cmd(line string, code int, enh, text string) smtp.Reply {
	c.t.Helper()
	c.write(line + "\r\n")
	return c.expect(code, enh, text)
}

// expectEOF checks the server closed the connection with nothing more.
func (c *client) expectEOF() {
	c.t.Helper()
	c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c.br)
	if len(b) > 0 {
		c.t.Errorf("after the last reply the client got %q", b)
	}
	if err != nil {
		c.t.Errorf("want a clean close, got %v", err)
	}
}

func (c *client) close() { c.c.Close() }

// starttls runs STARTTLS and the handshake.
func (c *client) starttls(cfg *tls.Config) {
	c.t.Helper()
	c.cmd("STARTTLS", 220, "2.0.0", "Ready to start TLS")
	if c.br.Buffered() != 0 {
		c.t.Fatalf("plaintext bytes after the 220: %d", c.br.Buffered())
	}
	tc := tls.Client(c.c, cfg)
	tc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("TLS handshake: %v", err)
	}
	tc.SetDeadline(time.Time{})
	c.c = tc
	c.br = bufio.NewReader(tc)
}

// selfSigned makes a server certificate for hostname and a client config
// that trusts it.
func selfSigned(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	certPEM, err := testenv.WriteSelfSigned(hostname, certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(certPEM) {
		t.Fatal("certificate did not parse")
	}
	server = &tls.Config{Certificates: []tls.Certificate{pair}}
	client = &tls.Config{RootCAs: pool, ServerName: hostname}
	return server, client
}

func (h *harness) whitelisted(t *testing.T) netip.Addr {
	t.Helper()
	select {
	case a := <-h.white:
		return a
	case <-time.After(10 * time.Second):
		t.Fatal("Whitelist was not called")
		return netip.Addr{}
	}
}

func (h *harness) notWhitelisted(t *testing.T) {
	t.Helper()
	select {
	case a := <-h.white:
		t.Errorf("Whitelist(%s) was called", a)
	default:
	}
}

func isHandoffError(err error) bool {
	var he *handoff.Error
	return errors.As(err, &he)
}
