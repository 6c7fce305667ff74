package tarpit

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/greypit/greypit/internal/smtp"
)

const (
	testHost   = "tarpit.test"
	testReason = "listed by rbl.example (spam source)"
	// waitLong bounds every wait for an event that must happen.
	waitLong = 15 * time.Second
)

// maxReply bounds the size of one reply the tarpit can queue with the test
// configurations (short hostname and reason): the largest is the EHLO
// reply, whose argument is at most smtp.MaxCommandLine-7 bytes, plus three
// extension lines; Reply.Bytes may split the first line in two, adding one
// code prefix. 1024 leaves room to spare.
const maxReply = 1024

func testConfig() Config {
	return Config{
		Hostname:       testHost,
		Stutter:        2 * time.Millisecond,
		ReplyCode:      451,
		MaxSessions:    100,
		MaxPerPrefix:   100,
		PrefixV4:       24,
		PrefixV6:       64,
		Pressure:       1,
		IdleTimeout:    20 * time.Second,
		SessionTimeout: 60 * time.Second,
		MaxDataSize:    1 << 20,
	}
}

// harness runs a tarpit over real loopback sockets.
type harness struct {
	t        testing.TB
	tp       *Tarpit
	ln       net.Listener
	ln6      net.Listener
	verdicts chan Verdict
	cancel   context.CancelFunc
	done     chan struct{}
}

func startHarness(t testing.TB, cfg Config) *harness {
	t.Helper()
	h := newHarness(t, cfg)
	h.run()
	return h
}

// newHarness builds the tarpit and the listener but does not start Run.
func newHarness(t testing.TB, cfg Config) *harness {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, ln: ln, verdicts: make(chan Verdict, 4096), done: make(chan struct{})}
	h.tp = New(cfg, func(v Verdict) { h.verdicts <- v })
	t.Cleanup(func() {
		if h.cancel != nil {
			h.stop()
		}
		ln.Close()
		if h.ln6 != nil {
			h.ln6.Close()
		}
	})
	return h
}

func (h *harness) run() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() {
		defer close(h.done)
		h.tp.Run(ctx)
	}()
}

// stop cancels Run and waits for it to return.
func (h *harness) stop() {
	h.t.Helper()
	h.cancel()
	select {
	case <-h.done:
	case <-time.After(waitLong):
		h.t.Fatal("Run did not return after cancel")
	}
}

// pair connects to the harness from laddr ("" for any) and returns the
// client end and the accepted server end.
func (h *harness) pair(laddr string) (client, server net.Conn) {
	h.t.Helper()
	ln := h.ln
	if laddr != "" && netip.MustParseAddr(laddr).Is6() {
		if h.ln6 == nil {
			l6, err := net.Listen("tcp", "[::1]:0")
			if err != nil {
				h.t.Skipf("no IPv6 loopback: %v", err)
			}
			h.ln6 = l6
		}
		ln = h.ln6
	}
	d := net.Dialer{Timeout: 5 * time.Second}
	if laddr != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(laddr)}
	}
	c, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		h.t.Fatal(err)
	}
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(5 * time.Second))
	s, err := ln.Accept()
	if err != nil {
		c.Close()
		h.t.Fatal(err)
	}
	return c, s
}

// info describes server's client the way the caller of Add would.
func info(server net.Conn, id string) Info {
	return Info{ID: id, Client: server.RemoteAddr().(*net.TCPAddr).AddrPort(), Reason: testReason, Rule: "test"}
}

// add connects from laddr and hands the server end to the tarpit. On
// error the server end is returned open, as Add leaves it.
func (h *harness) add(laddr string, pending []byte) (*client, net.Conn, error) {
	h.t.Helper()
	c, s := h.pair(laddr)
	err := h.tp.Add(s, info(s, h.t.Name()), pending)
	cl := newClient(h.t, c)
	h.t.Cleanup(func() { c.Close() })
	if err != nil {
		h.t.Cleanup(func() { s.Close() })
		return cl, s, err
	}
	return cl, nil, nil
}

func (h *harness) mustAdd(pending []byte) *client {
	h.t.Helper()
	c, _, err := h.add("", pending)
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

// verdict waits for the next verdict.
func (h *harness) verdict() Verdict {
	h.t.Helper()
	select {
	case v := <-h.verdicts:
		return v
	case <-time.After(waitLong):
		h.t.Fatal("no verdict")
	}
	panic("unreachable")
}

// noVerdict checks that no verdict is pending.
func (h *harness) noVerdict() {
	h.t.Helper()
	select {
	case v := <-h.verdicts:
		h.t.Fatalf("unexpected verdict %+v", v)
	default:
	}
}

// counter counts the bytes read through it.
type counter struct {
	r io.Reader
	n int64
}

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// client is the bot's side of a session.
type client struct {
	t   testing.TB
	c   net.Conn
	cnt *counter
	r   *bufio.Reader
}

func newClient(t testing.TB, c net.Conn) *client {
	cnt := &counter{r: c}
	return &client{t: t, c: c, cnt: cnt, r: bufio.NewReader(cnt)}
}

func (c *client) send(s string) {
	c.t.Helper()
	c.c.SetWriteDeadline(time.Now().Add(waitLong))
	if _, err := io.WriteString(c.c, s); err != nil {
		c.t.Fatalf("write %q: %v", s, err)
	}
}

func (c *client) reply() smtp.Reply {
	c.t.Helper()
	c.c.SetReadDeadline(time.Now().Add(waitLong))
	r, raw, err := smtp.ParseReply(c.r)
	if err != nil {
		c.t.Fatalf("reading reply: %v (read %q)", err, raw)
	}
	return r
}

func (c *client) expect(code int, enh string) smtp.Reply {
	c.t.Helper()
	r := c.reply()
	if r.Code != code || r.Enhanced != enh {
		c.t.Fatalf("got %d %s %q, want %d %s", r.Code, r.Enhanced, r.Lines, code, enh)
	}
	return r
}

func (c *client) cmd(line string, code int, enh string) smtp.Reply {
	c.t.Helper()
	c.send(line + "\r\n")
	return c.expect(code, enh)
}

// expectEOF reads until the server closes the connection.
func (c *client) expectEOF() {
	c.t.Helper()
	c.c.SetReadDeadline(time.Now().Add(waitLong))
	b, err := io.ReadAll(c.r)
	if err != nil {
		c.t.Fatalf("waiting for EOF: %v", err)
	}
	if len(b) > 0 {
		c.t.Fatalf("unexpected bytes before EOF: %q", b)
	}
}

// received is how many bytes the client has read from its socket.
func (c *client) received() int64 { return c.cnt.n }

// openFDs counts the process's open descriptors.
func openFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(ents)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitBaseline waits for the goroutine and descriptor counts to come back
// to (at most) their baseline.
func waitBaseline(t testing.TB, goroutines, fds int) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for {
		g, f := runtime.NumGoroutine(), openFDs(t)
		if g <= goroutines && f <= fds {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("goroutines %d (baseline %d), fds %d (baseline %d)\n%s", g, goroutines, f, fds, buf)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// prefixCounts copies the per-prefix counts under the lock.
func (t *Tarpit) prefixCounts() map[netip.Prefix]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := make(map[netip.Prefix]int, len(t.perPrefix))
	for k, v := range t.perPrefix {
		m[k] = v
	}
	return m
}

// checkEmpty asserts that the tarpit holds nothing.
func checkEmpty(t testing.TB, tp *Tarpit) {
	t.Helper()
	if n := tp.Active(); n != 0 {
		t.Errorf("Active() = %d after all sessions ended", n)
	}
	if m := tp.prefixCounts(); len(m) != 0 {
		t.Errorf("perPrefix not empty after all sessions ended: %v", m)
	}
}

// newSess returns a session as Add makes it, with no descriptor, for
// driving consume directly.
func newSess(tp *Tarpit) *sess {
	now := toMono(time.Now())
	s := &sess{fd: -1, info: Info{ID: "unit", Client: netip.MustParseAddrPort("192.0.2.7:4321"), Reason: testReason},
		start: now, lastIn: now, due: now, state: stCommand}
	s.queue(smtpReply(220, "", tp.conf().Hostname+" ESMTP ready"))
	return s
}

// drain takes everything queued for s, as a client reading it all would.
func drain(s *sess) []byte {
	b := append([]byte(nil), s.out[s.outPos:]...)
	s.out, s.outPos = nil, 0
	return b
}

// feed gives b to the session the way the scheduler does: at most
// readChunk bytes per read, held-back input first, no reading while the
// queue is full. It drains the queue after each step and returns what
// was sent.
func feed(tp *Tarpit, s *sess, b []byte, chunk int) []byte {
	var out []byte
	for i := 0; (len(b) > 0 || len(s.in) > 0) && !s.closing; i++ {
		if i > 10*len(b)+10000 {
			panic("feed does not progress")
		}
		if len(s.in) > 0 {
			in := s.in
			s.in = nil
			tp.consume(s, in)
		} else {
			n := min(chunk, len(b), readChunk)
			tp.consume(s, b[:n])
			b = b[n:]
		}
		out = append(out, drain(s)...)
	}
	return append(out, drain(s)...)
}

// parseReplies splits b into replies; every byte must belong to one.
func parseReplies(t testing.TB, b []byte) []smtp.Reply {
	t.Helper()
	r := bufio.NewReader(strings.NewReader(string(b)))
	var reps []smtp.Reply
	for {
		rep, raw, err := smtp.ParseReply(r)
		if err == io.EOF {
			return reps
		}
		if err != nil {
			t.Fatalf("bad reply after %d good ones: %v (%q)", len(reps), err, raw)
		}
		reps = append(reps, rep)
	}
}

func codes(reps []smtp.Reply) []int {
	c := make([]int, len(reps))
	for i, r := range reps {
		c[i] = r.Code
	}
	return c
}
