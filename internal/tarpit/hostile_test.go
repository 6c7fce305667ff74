package tarpit

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/greypit/greypit/internal/smtp"
	"golang.org/x/sys/unix"
)

// checkBounds asserts the per-session memory bounds the package comment
// promises: the reply queue, the held-back input, the partial line.
func checkBounds(t testing.TB, s *sess) {
	// No t.Helper: this runs after every read in the fuzzer.
	if q := len(s.out) - s.outPos; q > maxQueued+maxReply {
		t.Fatalf("%d reply bytes queued, bound %d", q, maxQueued+maxReply)
	}
	if c := cap(s.out); c > 2*(maxQueued+maxReply) {
		t.Fatalf("reply buffer grew to %d bytes (%d of them sent), bound %d", c, s.outPos, 2*(maxQueued+maxReply))
	}
	if len(s.in) > readChunk {
		t.Fatalf("%d input bytes held back, bound %d", len(s.in), readChunk)
	}
	if len(s.line) >= smtp.MaxCommandLine {
		t.Fatalf("partial line of %d bytes", len(s.line))
	}
}

// takeIncoming hands the test the sessions Add queued, when the test
// plays the scheduler itself.
func (t *Tarpit) takeIncoming() []*sess {
	t.mu.Lock()
	defer t.mu.Unlock()
	in := t.incoming
	t.incoming = nil
	return in
}

// TestNeverReads is a bot that pipelines NOOPs and never reads a reply.
// The test plays the scheduler (calling step) so it can look at the
// session between steps: once the kernel buffers are full and the bot's
// writes block, the session must hold no more than its bounds.
func TestNeverReads(t *testing.T) {
	for _, tc := range []struct {
		name     string
		pressure float64
	}{
		{"whole", 1e-9}, // above the pressure mark: replies go out whole
		{"drip", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g0 := runtime.NumGoroutine()
			cfg := testConfig()
			cfg.Pressure = tc.pressure
			h := newHarness(t, cfg)
			fd0 := openFDs(t)
			c, server := h.pair("")
			t.Cleanup(func() { c.Close() }) // on failure, this also ends the writer
			if err := h.tp.Add(server, info(server, "never-reads"), nil); err != nil {
				t.Fatal(err)
			}
			s := h.tp.takeIncoming()[0]

			// The bot writes until told to stop, reporting each write
			// that blocked for 100ms.
			timedOut := make(chan struct{}, 1)
			stop := make(chan struct{})
			writerDone := make(chan error, 1)
			var written atomic.Int64
			go func() {
				noops := bytes.Repeat([]byte("NOOP\r\n"), 1000)
				for range 10000 { // at most 60 MB
					select {
					case <-stop:
						writerDone <- nil
						return
					default:
					}
					c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
					n, err := c.Write(noops)
					written.Add(int64(n))
					switch {
					case errors.Is(err, os.ErrDeadlineExceeded):
						select {
						case timedOut <- struct{}{}:
						default:
						}
					case err != nil:
						writerDone <- err
						return
					}
				}
				writerDone <- errors.New("60 MB written and the bot never blocked")
			}()

			// Done once the bot's writes have blocked and the session's
			// queue has reached its cap, in either order: the kernel may
			// still take a few bytes now and then (it collapses the small
			// segments in the bot's receive buffer), so the queue hovers
			// at the cap rather than sitting on it.
			deadline := time.Now().Add(waitLong)
			var blocked, full bool
			for !blocked || !full {
				if !h.tp.step(s, time.Now()) {
					t.Fatalf("session ended: %+v", h.verdict())
				}
				checkBounds(t, s)
				full = full || len(s.out)-s.outPos >= maxQueued
				select {
				case <-timedOut:
					blocked = true
				case err := <-writerDone:
					t.Fatal(err)
				default:
				}
				if time.Now().After(deadline) {
					t.Fatalf("the bot's writes never blocked (%d bytes written, %d dripped)", written.Load(), s.dripped)
				}
				runtime.Gosched()
			}
			close(stop)
			if err := <-writerDone; err != nil {
				t.Fatal(err)
			}
			// The kernel may still open a window now and then: whatever
			// it does, further steps stay within the bounds.
			for range 100 {
				if !h.tp.step(s, time.Now()) {
					t.Fatalf("session ended: %+v", h.verdict())
				}
				checkBounds(t, s)
			}
			dripped := s.dripped
			// Nor does the bot grow greypit's kernel buffers: the socket's
			// send buffer stays small and holds little unsent.
			sndbuf, err := unix.GetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_SNDBUF)
			if err != nil {
				t.Fatal(err)
			}
			unsent, err := unix.IoctlGetInt(s.fd, unix.SIOCOUTQ)
			if err != nil {
				t.Fatal(err)
			}
			rcvbuf, err := unix.GetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_RCVBUF)
			if err != nil {
				t.Fatal(err)
			}
			unread, err := unix.IoctlGetInt(s.fd, unix.SIOCINQ)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("bot wrote %d bytes, tarpit sent %d, %d queued, %d held back; SO_SNDBUF %d with %d unsent, SO_RCVBUF %d with %d unread",
				written.Load(), s.dripped, len(s.out)-s.outPos, len(s.in), sndbuf, unsent, rcvbuf, unread)
			if sndbuf > 64<<10 || unsent > 64<<10 {
				t.Errorf("the tarpit's send buffer grew to %d bytes, %d of them unsent", sndbuf, unsent)
			}
			// Nor its receive buffer: a bot that pipelines without end
			// must not park megabytes in greypit's kernel memory.
			if rcvbuf > 64<<10 || unread > 64<<10 {
				t.Errorf("the tarpit's receive buffer grew to %d bytes, %d of them unread", rcvbuf, unread)
			}

			c.Close() // unread data: the kernel resets the connection
			for h.tp.step(s, time.Now()) {
				if time.Now().After(deadline) {
					t.Fatal("session did not notice the bot left")
				}
				runtime.Gosched()
			}
			if v := h.verdict(); v.Outcome != "closed" || v.Dripped < dripped {
				t.Fatalf("verdict %+v, want closed after %d bytes", v, dripped)
			}
			checkEmpty(t, h.tp)
			waitBaseline(t, g0, fd0)
		})
	}
}

// TestSlowReader is a bot that pipelines without end and reads the
// replies a little slower than they come, so the queue never empties.
// What was sent must not pile up in front of what is queued.
func TestSlowReader(t *testing.T) {
	tp := New(testConfig(), nil)
	s := newSess(tp)
	noops := bytes.Repeat([]byte("NOOP\r\n"), 1000)
	for range 2000 {
		if len(s.out)-s.outPos < maxQueued {
			if len(s.in) > 0 {
				in := s.in
				s.in = nil
				tp.consume(s, in)
			} else {
				tp.consume(s, noops[:readChunk])
			}
		}
		checkBounds(t, s)
		// The bot reads all but a few bytes of what is queued.
		s.outPos += max(len(s.out)-s.outPos-10, 0)
	}
}

// junk returns n random bytes; without newlines, every LF is replaced.
func junk(n int, newlines bool) []byte {
	r := rand.New(rand.NewChaCha8([32]byte{1}))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
		if !newlines && b[i] == '\n' {
			b[i] = 'x'
		}
	}
	return b
}

func heapInuse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// readAllReplies reads replies until the connection ends.
func readAllReplies(c net.Conn) chan []int {
	ch := make(chan []int, 1)
	go func() {
		var got []int
		c.SetReadDeadline(time.Now().Add(waitLong))
		r := bufio.NewReader(c)
		for {
			rep, _, err := smtp.ParseReply(r)
			if err != nil {
				ch <- got
				return
			}
			got = append(got, rep.Code)
		}
	}()
	return ch
}

// writeAll writes b until done or refused.
func writeAll(c net.Conn, b []byte) chan error {
	ch := make(chan error, 1)
	go func() {
		c.SetWriteDeadline(time.Now().Add(waitLong))
		_, err := c.Write(b)
		ch <- err
	}()
	return ch
}

// TestJunk is a bot that sends megabytes of garbage.
func TestJunk(t *testing.T) {
	const size = 5 << 20
	for _, tc := range []struct {
		name     string
		newlines bool
		data     bool
		outcome  string
	}{
		{"lines", true, false, "too-many-errors"},
		{"no-newlines", false, false, "timeout"},
		{"in-data", false, true, "data-too-big"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g0 := runtime.NumGoroutine()
			b := junk(size, tc.newlines)
			heap0 := heapInuse()
			cfg := testConfig()
			cfg.Stutter = time.Millisecond
			cfg.MaxDataSize = 64 << 10
			// Only the session without newlines is meant to end by the
			// session timeout; the others must not race it (their
			// replies drip for about half a second, longer under load).
			cfg.SessionTimeout = waitLong
			if tc.outcome == "timeout" {
				cfg.SessionTimeout = time.Second
			}
			h := startHarness(t, cfg)
			fd0 := openFDs(t)
			c := h.mustAdd(nil)
			if tc.data {
				c.expect(220, "")
				c.cmd("HELO x", 250, "")
				c.cmd("MAIL FROM:<a@b.example>", 250, "2.1.0")
				c.cmd("RCPT TO:<c@d.example>", 250, "2.1.5")
				c.cmd("DATA", 354, "")
			}
			replies := readAllReplies(c.c)
			wrote := writeAll(c.c, b)
			v := h.verdict()
			if v.Outcome != tc.outcome {
				t.Fatalf("verdict %+v, want %s", v, tc.outcome)
			}
			got := <-replies
			switch tc.name {
			case "lines":
				if len(got) != maxErrors+1 || got[0] != 220 || got[maxErrors] != 421 {
					t.Errorf("replies %v", got)
				}
			case "no-newlines":
				if len(got) != 2 || got[0] != 220 || got[1] != 500 {
					t.Errorf("replies %v", got)
				}
			case "in-data":
				if len(got) != 1 || got[0] != 451 {
					t.Errorf("replies %v", got)
				}
				if v.DataBytes <= cfg.MaxDataSize || v.DataBytes > cfg.MaxDataSize+readChunk || v.Messages != 0 {
					t.Errorf("verdict %+v", v)
				}
			}
			// Whether the bot could push all of it into the kernel
			// buffers or found the connection reset, its write ends.
			<-wrote
			c.c.Close()
			if grew := int64(heapInuse()) - int64(heap0); grew > 8<<20 {
				t.Errorf("heap in use grew by %d bytes", grew)
			}
			runtime.KeepAlive(b)
			checkEmpty(t, h.tp)
			h.stop()
			h.ln.Close()
			waitBaseline(t, g0, fd0-1)
		})
	}
}

// TestJunkConsume pushes megabytes of junk through consume directly,
// checking the bounds after every read-sized chunk.
func TestJunkConsume(t *testing.T) {
	for _, tc := range []struct {
		name    string
		prefix  string
		b       []byte
		closing bool
	}{
		{"lines", "", junk(5<<20, true), true},
		{"no-newlines", "", junk(5<<20, false), false},
		{"crlf-only", "", bytes.Repeat([]byte("\r\n"), 1<<20), true},
		{"data", "HELO x\r\nMAIL FROM:<>\r\nRCPT TO:<a@b>\r\nDATA\r\n", junk(5<<20, true), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tp := New(testConfig(), nil)
			s := newSess(tp)
			in := append([]byte(tc.prefix), tc.b...)
			for len(in) > 0 && !s.closing {
				if len(s.in) > 0 {
					held := s.in
					s.in = nil
					tp.consume(s, held)
				} else {
					n := min(readChunk, len(in))
					tp.consume(s, in[:n])
					in = in[n:]
				}
				checkBounds(t, s)
				drain(s)
			}
			if s.closing != tc.closing {
				t.Fatalf("closing %v (%s), want %v", s.closing, s.outcome, tc.closing)
			}
		})
	}
}

// TestDisconnectMidDrip: the bot leaves while the banner drips, politely
// or with a reset.
func TestDisconnectMidDrip(t *testing.T) {
	for _, rst := range []bool{false, true} {
		name := "close"
		if rst {
			name = "reset"
		}
		t.Run(name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Stutter = 20 * time.Millisecond
			h := startHarness(t, cfg)
			c := h.mustAdd(nil)
			buf := make([]byte, 3)
			c.c.SetReadDeadline(time.Now().Add(waitLong))
			for n := 0; n < len(buf); {
				m, err := c.c.Read(buf[n:])
				if err != nil {
					t.Fatal(err)
				}
				n += m
			}
			if rst {
				c.c.(*net.TCPConn).SetLinger(0)
			}
			closed := time.Now()
			c.c.Close()
			v := h.verdict()
			if v.Outcome != "closed" {
				t.Fatalf("verdict %+v", v)
			}
			if d := time.Since(closed); d > time.Second {
				t.Errorf("the tarpit noticed after %v", d)
			}
			if banner := int64(len("220 " + testHost + " ESMTP ready\r\n")); v.Dripped < 3 || v.Dripped >= banner {
				t.Errorf("dripped %d bytes of a %d-byte banner", v.Dripped, banner)
			}
			checkEmpty(t, h.tp)
		})
	}
}

// TestManyFromOnePrefix: hundreds of connections from one /24.
func TestManyFromOnePrefix(t *testing.T) {
	g0, fd0 := runtime.NumGoroutine(), openFDs(t)
	cfg := testConfig()
	cfg.MaxSessions = 1000
	cfg.MaxPerPrefix = 50
	h := startHarness(t, cfg)
	var held []*client
	refused := 0
	for i := range 300 {
		c, server, err := h.add("127.0.0."+strconv.Itoa(1+i%250), nil)
		switch {
		case err == nil:
			held = append(held, c)
		case errors.Is(err, ErrPrefixFull):
			refused++
			server.Close()
			c.c.Close()
		default:
			t.Fatalf("Add %d: %v", i, err)
		}
	}
	if len(held) != 50 || refused != 250 {
		t.Fatalf("held %d, refused %d; want 50 and 250", len(held), refused)
	}
	if n := h.tp.Active(); n != 50 {
		t.Fatalf("Active() = %d", n)
	}
	if m := h.tp.prefixCounts(); len(m) != 1 || m[netip.MustParsePrefix("127.0.0.0/24")] != 50 {
		t.Fatalf("perPrefix %v", m)
	}
	// Half of them get their banner first.
	for _, c := range held[:25] {
		c.expect(220, "")
	}
	for _, c := range held {
		c.c.Close()
	}
	for range held {
		if v := h.verdict(); v.Outcome != "closed" {
			t.Errorf("verdict %+v", v)
		}
	}
	h.noVerdict()
	checkEmpty(t, h.tp)
	h.stop()
	h.ln.Close()
	waitBaseline(t, g0, fd0)
}

// TestIdleTimeout: a bot that stops talking is dropped.
func TestIdleTimeout(t *testing.T) {
	cfg := testConfig()
	cfg.Stutter = time.Millisecond
	cfg.IdleTimeout = 300 * time.Millisecond
	h := startHarness(t, cfg)
	c := h.mustAdd(nil)
	c.expect(220, "")
	c.cmd("EHLO x", 250, "")
	waited := time.Now()
	c.expectEOF()
	if d := time.Since(waited); d < cfg.IdleTimeout/2 {
		t.Errorf("dropped after %v of silence, idle timeout %v", d, cfg.IdleTimeout)
	}
	if v := h.verdict(); v.Outcome != "idle" || v.Helo != "x" || v.Dripped != c.received() {
		t.Errorf("verdict %+v", v)
	}
	checkEmpty(t, h.tp)
}

// TestIdleCountsFromLastReply: the idle clock runs while the tarpit waits
// for input, not while it is still dripping a reply the bot waits for.
func TestIdleCountsFromLastReply(t *testing.T) {
	cfg := testConfig()
	cfg.Stutter = 8 * time.Millisecond
	cfg.IdleTimeout = 150 * time.Millisecond // shorter than the banner's drip
	h := startHarness(t, cfg)
	c := h.mustAdd(nil)
	c.expect(220, "")
	c.cmd("NOOP", 250, "2.0.0")
	c.cmd("QUIT", 221, "2.0.0")
	c.expectEOF()
	if v := h.verdict(); v.Outcome != "quit" {
		t.Errorf("verdict %+v", v)
	}
}

// TestSessionTimeout: a bot that keeps talking is still dropped.
func TestSessionTimeout(t *testing.T) {
	cfg := testConfig()
	cfg.Stutter = time.Millisecond
	cfg.SessionTimeout = 300 * time.Millisecond
	h := startHarness(t, cfg)
	start := time.Now()
	c := h.mustAdd(nil)
	c.expect(220, "")
	c.c.SetDeadline(time.Now().Add(waitLong))
	for i := 0; ; i++ {
		if i > 10000 {
			t.Fatal("session never timed out")
		}
		if _, err := c.c.Write([]byte("NOOP\r\n")); err != nil {
			break
		}
		if _, _, err := smtp.ParseReply(c.r); err != nil {
			break
		}
	}
	if d := time.Since(start); d < cfg.SessionTimeout {
		t.Errorf("session ended after %v", d)
	}
	if v := h.verdict(); v.Outcome != "timeout" || v.Held < cfg.SessionTimeout {
		t.Errorf("verdict %+v", v)
	}
	checkEmpty(t, h.tp)
}

// TestShutdown: cancelling Run ends every session, wherever it is, and
// closes every descriptor.
func TestShutdown(t *testing.T) {
	g0 := runtime.NumGoroutine()
	cfg := testConfig()
	cfg.Stutter = 10 * time.Millisecond
	h := startHarness(t, cfg)
	fd0 := openFDs(t)

	dripping := h.mustAdd(nil)
	idle := h.mustAdd(nil)
	idle.expect(220, "")
	inData := h.mustAdd([]byte("HELO x\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n"))
	for _, code := range []int{220, 250, 250, 250, 354} {
		if r := inData.reply(); r.Code != code {
			t.Fatalf("reply %d, want %d", r.Code, code)
		}
	}
	inData.send("Subject: half a message\r\n")
	blocked := h.mustAdd(nil) // a bot that never reads
	blocked.send(strings.Repeat("NOOP\r\n", 2000))
	last := h.mustAdd(nil) // perhaps still in incoming
	clients := []*client{dripping, idle, inData, blocked, last}

	h.stop()
	for range clients {
		if v := h.verdict(); v.Outcome != "shutdown" {
			t.Errorf("verdict %+v", v)
		}
	}
	h.noVerdict()
	for _, c := range clients {
		c.c.SetReadDeadline(time.Now().Add(waitLong))
		buf := make([]byte, 64<<10)
		for {
			if _, err := c.c.Read(buf); err != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatal("connection still open after shutdown")
				}
				break
			}
		}
		c.c.Close()
	}
	checkEmpty(t, h.tp)
	if c, server, err := h.add("", nil); !errors.Is(err, ErrStopped) {
		t.Fatalf("Add after shutdown: %v", err)
	} else {
		c.c.Close()
		server.Close()
	}
	waitBaseline(t, g0, fd0)
}

// TestAddDuringShutdown races Add against cancellation: every Add that
// succeeds must be reported and closed, none left behind.
func TestAddDuringShutdown(t *testing.T) {
	g0 := runtime.NumGoroutine()
	cfg := testConfig()
	h := newHarness(t, cfg)
	fd0 := openFDs(t)
	for iter := range 30 {
		var reported atomic.Int64
		tp := New(cfg, func(Verdict) { reported.Add(1) })
		const n = 16
		type pair struct{ c, s net.Conn }
		pairs := make([]pair, n)
		for i := range pairs {
			pairs[i].c, pairs[i].s = h.pair("")
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); tp.Run(ctx) }()
		var added atomic.Int64
		var wg sync.WaitGroup
		start := make(chan struct{})
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for i := w; i < n; i += 4 {
					s := pairs[i].s
					if err := tp.Add(s, info(s, "race"), nil); err != nil {
						s.Close()
						continue
					}
					added.Add(1)
				}
			}()
		}
		close(start)
		runtime.Gosched()
		cancel()
		wg.Wait()
		<-done
		// Every session added is reported exactly once.
		deadline := time.Now().Add(2 * time.Second)
		for reported.Load() < added.Load() && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if r, a := reported.Load(), added.Load(); r != a {
			t.Fatalf("iteration %d: %d sessions added, %d reported", iter, a, r)
		}
		checkEmpty(t, tp)
		for _, p := range pairs {
			p.c.Close()
		}
	}
	waitBaseline(t, g0, fd0)
}
