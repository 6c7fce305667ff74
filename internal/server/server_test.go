package server_test

import (
	"bufio"
	"context"
	"github.com/greypit/greypit/internal/testenv"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/greypit/greypit/internal/classify"
	"github.com/greypit/greypit/internal/greylist"
	"github.com/greypit/greypit/internal/handoff"
	"github.com/greypit/greypit/internal/lists"
	"github.com/greypit/greypit/internal/server"
	"github.com/greypit/greypit/internal/session"
	"github.com/greypit/greypit/internal/smtp"
	"github.com/greypit/greypit/internal/store"
)

const hostname = "mx.greypit.test"

type fixture struct {
	srv    *server.Server
	store  *store.Bolt
	clock  *testenv.Clock
	mta    *testenv.FakeMTA
	ln     net.Listener
	cancel context.CancelFunc
	served chan error
}

type config struct {
	allow, block string
	maxSessions  int
	maxErrors    int
	proxyMTA     bool // start a fake backend in proxy-v2 mode
	black        server.BlackHandler
	history      func(store.Event)
	proxy        *server.ProxyIn
}

// gatedBlack is Reject, run once gate is closed.
type gatedBlack struct {
	gate chan struct{}
	server.Reject
}

func (g gatedBlack) Serve(ctx context.Context, conn net.Conn, d classify.Decision, log *slog.Logger) server.Outcome {
	<-g.gate
	return g.Reject.Serve(ctx, conn, d, log)
}

func newFixture(t *testing.T, cfg config) *fixture {
	t.Helper()
	dir := t.TempDir()
	allow, block := filepath.Join(dir, "allow"), filepath.Join(dir, "block")
	os.WriteFile(allow, []byte(cfg.allow), 0o644)
	os.WriteFile(block, []byte(cfg.block), 0o644)
	set, err := lists.NewSet([]string{allow}, []string{block})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.OpenBolt(filepath.Join(dir, "greypit.db"), store.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &fixture{store: st, clock: testenv.NewClock(time.Now().Truncate(time.Second))}
	dialer := &handoff.Dialer{Address: "127.0.0.1:1", Mode: handoff.ProxyV2, ConnectTimeout: 5 * time.Second, ReplyTimeout: 5 * time.Second, Hostname: "greypit.test"}
	if cfg.proxyMTA {
		f.mta = testenv.NewFakeMTA(t, true)
		dialer.Address = f.mta.Addr
	} else {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		dialer.Address = ln.Addr().String()
		ln.Close() // refused from now on
	}
	if cfg.maxErrors == 0 {
		cfg.maxErrors = 10
	}
	if cfg.black == nil {
		cfg.black = server.Reject{Hostname: hostname}
	}
	f.srv = &server.Server{
		Log:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		Classifier: &classify.Classifier{Lists: set, Store: st},
		Store:      st,
		Greylist: &greylist.Greylister{
			Store:    st,
			Params:   store.GreyParams{PassDelay: 5 * time.Minute, RetryWindow: time.Hour, PassedTTL: time.Hour},
			PrefixV4: 24, PrefixV6: 64,
			Now: f.clock.Now,
		},
		Dialer: dialer,
		Black:  cfg.black,
		Session: session.Config{
			Hostname:       hostname,
			CommandTimeout: 10 * time.Second,
			SessionTimeout: 30 * time.Second,
			MaxErrors:      cfg.maxErrors,
			MaxRecipients:  10,
			MaxMessageSize: 1000000,
			Extensions:     func() []string { return []string{"PIPELINING"} },
		},
		WhiteTTL:    24 * time.Hour,
		MaxSessions: cfg.maxSessions,
		History:     cfg.history,
		Proxy:       cfg.proxy,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.ln = ln
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	f.served = make(chan error, 1)
	go func() { f.served <- f.srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-f.served:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return")
		}
		dctx, dcancel := context.WithTimeout(context.Background(), 5*time.Second)
		f.srv.Drain(dctx)
		dcancel()
	})
	return f
}

type client struct {
	t  *testing.T
	c  *net.TCPConn
	br *bufio.Reader
}

func (f *fixture) dial(t *testing.T) *client {
	t.Helper()
	c, err := net.Dial("tcp", f.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{t: t, c: c.(*net.TCPConn), br: bufio.NewReader(c)}
}

func (c *client) expect(code int, enh, text string) string {
	c.t.Helper()
	c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	r, raw, err := smtp.ParseReply(c.br)
	if err != nil {
		c.t.Fatalf("reading reply: %v (got %q)", err, raw)
	}
	if r.Code != code || enh != "" && r.Enhanced != enh || !strings.Contains(strings.Join(r.Lines, "\n"), text) {
		c.t.Fatalf("reply %q; want %d %s ...%s...", raw, code, enh, text)
	}
	return string(raw)
}

func (c *client) cmd(line string, code int, enh, text string) string {
	c.t.Helper()
	c.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c.c, line+"\r\n"); err != nil {
		c.t.Fatal(err)
	}
	return c.expect(code, enh, text)
}

// expectEOF checks the server closed cleanly (FIN, not RST) with nothing
// more to say.
func (c *client) expectEOF() {
	c.t.Helper()
	c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c.br)
	if len(b) > 0 || err != nil {
		c.t.Errorf("after the last reply: %q, %v; want a clean EOF", b, err)
	}
}

// waitIdle waits, in a bounded loop, until the server has no sessions.
func (f *fixture) waitIdle(t *testing.T) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); f.srv.Active() != 0; {
		if time.Now().After(deadline) {
			t.Fatalf("server still has %d sessions", f.srv.Active())
		}
		time.Sleep(time.Millisecond)
	}
}

func TestMaxSessions(t *testing.T) {
	f := newFixture(t, config{maxSessions: 1})
	c1 := f.dial(t)
	c1.expect(220, "", hostname+" ESMTP greypit")

	// The first session holds the only slot: the second connection is
	// told at once and closed.
	c2 := f.dial(t)
	start := time.Now()
	c2.expect(421, "4.3.2", hostname+" Too busy")
	c2.expectEOF()
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("busy reply took %v", el)
	}

	// The first is still served.
	c1.cmd("EHLO client.example", 250, "", "")
	c1.cmd("QUIT", 221, "", "")
	c1.expectEOF()
	c1.c.Close()

	// Its slot is free again.
	f.waitIdle(t)
	c3 := f.dial(t)
	c3.expect(220, "", hostname+" ESMTP greypit")
	c3.cmd("QUIT", 221, "", "")
}

func TestRejectBlack(t *testing.T) {
	t.Run("block list", func(t *testing.T) {
		f := newFixture(t, config{block: "127.0.0.0/8\n"})
		c := f.dial(t)
		c.expect(554, "5.7.1", hostname+" Service refused: listed in local block list")
		c.expectEOF()
	})
	t.Run("store black", func(t *testing.T) {
		f := newFixture(t, config{})
		now := time.Now().Round(0)
		if err := f.store.Put(context.Background(), store.Entry{Kind: store.Black, Key: "127.0.0.1", Reason: "spamtrap hit", Source: "trap", Created: now, Updated: now}); err != nil {
			t.Fatal(err)
		}
		c := f.dial(t)
		c.expect(554, "5.7.1", hostname+" Service refused: "+classify.TrapReason) // the trap itself is not told
		c.expectEOF()
		// The black host never reaches the backend nor greylisting.
		n := 0
		f.store.List(context.Background(), store.Grey, func(store.Entry) error { n++; return nil })
		if n != 0 {
			t.Errorf("%d grey entries after a black connection", n)
		}
	})
}

func TestRejectServeBytes(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	got := make(chan string, 1)
	go func() {
		buf, _ := io.ReadAll(b)
		got <- string(buf)
	}()
	o := server.Reject{Hostname: "mx.example"}.Serve(context.Background(), a, classify.Decision{Path: classify.Black, Reason: "listed\r\nforged"}, nil)
	a.Close()
	if o.Outcome != "rejected" || o.Err != nil {
		t.Errorf("outcome %+v", o)
	}
	// The reason cannot end the reply line early.
	if want := "554 5.7.1 mx.example Service refused: listed  forged\r\n"; <-got != want {
		t.Errorf("Reject wrote something other than %q", want)
	}
}

// A client that pipelined junk past a fatal error still receives the
// final reply and a clean close: unread input at close would make the
// kernel send RST.
func TestLingeringClose(t *testing.T) {
	junk := "JUNK\r\n" + strings.Repeat("MORE JUNK AFTER THE FATAL ONE\r\n", 3000) // ~90 KiB
	t.Run("too many errors", func(t *testing.T) {
		f := newFixture(t, config{maxErrors: 1})
		c := f.dial(t)
		c.expect(220, "", hostname)
		wrote := make(chan struct{})
		go func() {
			defer close(wrote)
			c.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
			io.WriteString(c.c, junk)
		}()
		c.expect(421, "4.7.0", "Too many errors")
		c.expectEOF()
		<-wrote
	})
	t.Run("black", func(t *testing.T) {
		// The reject waits until the junk is written, so it is surely
		// unread when the server closes.
		gate := make(chan struct{})
		f := newFixture(t, config{block: "127.0.0.1\n", black: gatedBlack{gate, server.Reject{Hostname: hostname}}})
		c := f.dial(t)
		c.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		// Small enough to fit the socket buffers.
		if _, err := io.WriteString(c.c, junk[:16<<10]); err != nil {
			t.Fatal(err)
		}
		close(gate)
		c.expect(554, "5.7.1", hostname+" Service refused: listed in local block list")
		c.expectEOF()
	})
}

// A white host is spliced to the backend from its first byte; the backend
// learns its address from the PROXY header.
func TestWhiteSplice(t *testing.T) {
	f := newFixture(t, config{allow: "127.0.0.1\n", proxyMTA: true})
	c := f.dial(t)
	c.expect(220, "", "backend.test ESMTP fake")
	c.cmd("EHLO client.example", 250, "", "backend.test")
	c.cmd("QUIT", 221, "", "Bye")
	c.expectEOF()
	mc := f.mta.Next(t)
	if len(mc.Proxy) != 28 {
		t.Fatalf("PROXY header % x", mc.Proxy)
	}
	src := netip.AddrPortFrom(netip.AddrFrom4([4]byte(mc.Proxy[16:20])), uint16(mc.Proxy[24])<<8|uint16(mc.Proxy[25]))
	if want := c.c.LocalAddr().(*net.TCPAddr).AddrPort(); src != want {
		t.Errorf("PROXY source %s, want %s", src, want)
	}
}

func TestWhiteBackendDown(t *testing.T) {
	f := newFixture(t, config{allow: "127.0.0.1\n"})
	c := f.dial(t)
	c.expect(421, "4.4.1", "temporarily unavailable")
	c.expectEOF()
}

// Through the whole front line: a grey host that retries is handed off,
// recorded white, and its next connection goes straight to the backend.
func TestGreyPassBecomesWhite(t *testing.T) {
	f := newFixture(t, config{proxyMTA: true})
	c := f.dial(t)
	c.expect(220, "", hostname+" ESMTP greypit")
	c.cmd("EHLO client.example", 250, "", "")
	c.cmd("MAIL FROM:<a@example.com>", 250, "", "")
	c.cmd("RCPT TO:<b@example.com>", 451, "4.7.1", "")
	f.clock.Advance(5 * time.Minute)
	c.cmd("RCPT TO:<b@example.com>", 250, "2.1.5", "")
	c.cmd("QUIT", 221, "", "Bye")
	c.expectEOF()
	c.c.Close()
	if mc := f.mta.Next(t); !slices.Equal(mc.Lines, []string{"EHLO client.example", "MAIL FROM:<a@example.com>", "RCPT TO:<b@example.com>", "QUIT"}) {
		t.Errorf("backend got %q", mc.Lines)
	}
	e, err := f.store.Get(context.Background(), store.White, "127.0.0.1")
	if err != nil || e.Source != classify.SourceGreylist {
		t.Fatalf("white entry = %+v, %v; want one made by greylisting", e, err)
	}

	c = f.dial(t)
	c.expect(220, "", "backend.test ESMTP fake")
	c.cmd("QUIT", 221, "", "Bye")
}

// On shutdown an idle grey session is told 421 4.3.2 and Serve returns.
func TestShutdownIdleGreySession(t *testing.T) {
	f := newFixture(t, config{})
	c := f.dial(t)
	c.expect(220, "", hostname)
	c.cmd("EHLO client.example", 250, "", "")
	f.cancel()
	c.expect(421, "4.3.2", "shutting down")
	c.expectEOF()
	select {
	case err := <-f.served:
		f.served <- err // for the cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	c.c.Close()
	dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f.srv.Drain(dctx)
	if dctx.Err() != nil {
		t.Error("Drain had to force-close sessions")
	}
	if n := f.srv.Active(); n != 0 {
		t.Errorf("%d sessions after drain", n)
	}
}

func writeCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if _, err := testenv.WriteSelfSigned(hostname, certFile, keyFile); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func TestTLSHolder(t *testing.T) {
	var nilHolder *server.TLSHolder
	if nilHolder.Config() != nil {
		t.Error("nil holder has a config")
	}
	h, err := server.NewTLSHolder("", "")
	if err != nil || h.Config() != nil {
		t.Errorf("empty holder = %v, %v; want no config", h.Config(), err)
	}
	dir := t.TempDir()
	certFile, keyFile := writeCert(t, dir)
	h, err = server.NewTLSHolder(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	first := h.Config()
	if first == nil || len(first.Certificates) != 1 {
		t.Fatalf("config = %+v", first)
	}
	// A broken file on reload keeps the old certificate.
	os.WriteFile(certFile, []byte("garbage"), 0o644)
	if err := h.Load(); err == nil || !strings.Contains(err.Error(), "smtp.tls_cert") {
		t.Errorf("Load of a broken cert = %v", err)
	}
	if h.Config() != first {
		t.Error("broken reload replaced the config")
	}
	// A good new one replaces it.
	writeCert(t, dir)
	if err := h.Load(); err != nil {
		t.Fatal(err)
	}
	if h.Config() == first {
		t.Error("reload kept the old config")
	}
	if _, err := server.NewTLSHolder(filepath.Join(dir, "missing.pem"), keyFile); err == nil {
		t.Error("NewTLSHolder with a missing file succeeded")
	}
}
