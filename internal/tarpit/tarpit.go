// Package tarpit holds black hosts: it plays an open relay that accepts
// every command, answers one byte per stutter interval, reads the message
// up to a bound and then refuses it with the listing reason. Nothing is
// ever relayed: this package opens no connection of its own.
//
// Scale is the point. A held connection is not a goroutine: its socket is
// detached from Go's netpoller (the descriptor is duplicated and the
// net.Conn closed) and parked as a small struct on one scheduler goroutine
// that drips bytes with non-blocking sends and polls for input with
// non-blocking reads, as spamd does with poll(2). Replies are queued
// within a bound; a bot that floods commands without reading finds its own
// kernel buffers full instead of greypit's memory.
package tarpit

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Config holds the tarpit's settings.
type Config struct {
	Hostname       string
	Stutter        time.Duration // delay between two bytes
	ReplyCode      int           // final reply to a message: 4xx or 5xx
	Blackhole      bool          // answer 250 to the message instead
	MaxSessions    int           // sessions held at once
	MaxPerPrefix   int           // sessions per client prefix
	PrefixV4       int
	PrefixV6       int
	Pressure       float64       // share of MaxSessions above which replies go out whole
	IdleTimeout    time.Duration // no input for this long while waiting for it
	DataTimeout    time.Duration // no message text for this long: 421 (0: only IdleTimeout)
	SessionTimeout time.Duration
	MaxDataSize    int64    // message bytes read before the final reply
	Sampler        *Sampler // nil: keep no samples
}

// Info is what the caller knows about a connection it hands over.
type Info struct {
	ID     string         // connection id for the log
	Client netip.AddrPort // the client
	Reason string         // listing reason, shown in the final reply
	Rule   string         // deciding rule, for the log
}

// Verdict is reported once per session when it ends.
type Verdict struct {
	Info
	Outcome   string        // quit, closed, idle, timeout, too-many-errors, data-too-big, data-timeout, shutdown, error
	Held      time.Duration // how long the bot was held
	Dripped   int64         // bytes sent to it
	Helo      string
	From      string
	Rcpts     int
	Messages  int   // messages refused (or dropped, in blackhole mode)
	DataBytes int64 // message bytes read
	Err       error
}

// Errors returned by Add when the tarpit cannot take a connection; the
// caller still owns it.
var (
	ErrFull       = errors.New("tarpit full")
	ErrPrefixFull = errors.New("tarpit full for this client prefix")
	ErrStopped    = errors.New("tarpit stopped")
)

// Tarpit is the scheduler and its sessions.
type Tarpit struct {
	cur   atomic.Pointer[tuning] // SetConfig swaps it
	onEnd func(Verdict)

	mu        sync.Mutex
	total     int // guarded by mu; mirrored in active for lock-free reads
	perPrefix map[netip.Prefix]int
	incoming  []*sess
	stopped   bool
	wake      chan struct{}
	rules     map[string]string // interned Info.Rule and Reason strings

	// Owned by the scheduler goroutine.
	queue   sessHeap
	scratch []byte

	active atomic.Int64

	stats Stats
}

// New returns a tarpit; onEnd is called from the scheduler goroutine for
// every session that ends, so it must not block for long. (A session
// added while Run shuts down is reported from Add.)
func New(cfg Config, onEnd func(Verdict)) *Tarpit {
	t := &Tarpit{
		onEnd:     onEnd,
		perPrefix: map[netip.Prefix]int{},
		wake:      make(chan struct{}, 1),
		rules:     map[string]string{},
		scratch:   make([]byte, readChunk),
	}
	t.cur.Store(newTuning(cfg))
	return t
}

// tuning is the current Config and what is derived from it.
type tuning struct {
	Config
	banner []byte // shared by all sessions until they queue a reply
}

func newTuning(cfg Config) *tuning {
	return &tuning{Config: cfg, banner: smtpReply(220, "", cfg.Hostname+" ESMTP ready")}
}

// conf returns the settings in force.
func (t *Tarpit) conf() *tuning { return t.cur.Load() }

// SetConfig replaces the settings (a reload). Held sessions go on under
// the new pacing and limits; the client prefix lengths and the sampler
// stay those the tarpit was made with, as its per-prefix counts and open
// sample file depend on them.
func (t *Tarpit) SetConfig(cfg Config) {
	old := t.conf()
	cfg.PrefixV4, cfg.PrefixV6, cfg.Sampler = old.PrefixV4, old.PrefixV6, old.Sampler
	t.cur.Store(newTuning(cfg))
}

// A flood is floodSize sessions added with no pause of floodQuiet.
const (
	floodSize  = 1024
	floodQuiet = 5 * time.Second
)

// readChunk bounds what one session reads per wake-up; the scheduler
// shares one buffer of this size across all sessions.
const readChunk = 4096

// sendBuffer is the SO_SNDBUF of a held socket (Linux doubles it).
const sendBuffer = 8 << 10

// recvBuffer is the SO_RCVBUF of a held socket (Linux doubles it).
const recvBuffer = 8 << 10

// maxQueued bounds the replies waiting to be dripped to one session.
// Past it, greypit stops reading the session's input.
const maxQueued = 2048

// Active reports the number of sessions held.
func (t *Tarpit) Active() int { return int(t.active.Load()) }

func (t *Tarpit) prefix(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	bits := t.conf().PrefixV6
	if a.Is4() {
		bits = t.conf().PrefixV4
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return netip.PrefixFrom(a, a.BitLen())
	}
	return p
}

// Add takes over c: on success the tarpit owns the connection and will
// report a Verdict for it; on error the caller still owns c. pending is
// input the caller already read from the client (an early talker's
// pre-banner bytes); it is answered like any other input.
func (t *Tarpit) Add(c net.Conn, info Info, pending []byte) error {
	return t.add(c, info, pending, nil)
}

func (t *Tarpit) add(c net.Conn, info Info, pending []byte, r *Resume) error {
	pfx := t.prefix(info.Client.Addr())
	t.mu.Lock()
	switch {
	case t.stopped:
		t.mu.Unlock()
		return ErrStopped
	case t.total >= t.conf().MaxSessions:
		t.mu.Unlock()
		return ErrFull
	case t.perPrefix[pfx] >= t.conf().MaxPerPrefix:
		t.mu.Unlock()
		return ErrPrefixFull
	}
	t.total++
	t.active.Store(int64(t.total))
	// A flood from one listed network shares one rule text, not a copy
	// per connection; the table is bounded.
	info.Rule, info.Reason = t.intern(info.Rule), t.intern(info.Reason)
	t.perPrefix[pfx]++
	t.mu.Unlock()

	fd, err := detach(c)
	if err != nil {
		t.release(pfx)
		return fmt.Errorf("tarpit: %w", err)
	}
	now := toMono(time.Now())
	s := &sess{fd: fd, info: info, start: now, lastIn: now, due: now, state: stCommand}
	if len(pending) > 0 {
		s.in = append([]byte(nil), pending[:min(len(pending), readChunk)]...)
	}
	s.out, s.shared = t.conf().banner, true
	if r != nil {
		r.apply(s)
	}
	t.mu.Lock()
	if t.stopped {
		// Run shut down while the socket was being detached: the
		// connection is already the tarpit's, so end it here.
		t.mu.Unlock()
		t.end(s, "shutdown", nil)
		return nil
	}
	t.incoming = append(t.incoming, s)
	t.mu.Unlock()
	select {
	case t.wake <- struct{}{}:
	default:
	}
	return nil
}

// maxInterned bounds the table of shared rule texts.
const maxInterned = 4096

// intern returns the table's copy of s; t.mu must be held.
func (t *Tarpit) intern(s string) string {
	if v, ok := t.rules[s]; ok {
		return v
	}
	if len(t.rules) < maxInterned {
		t.rules[s] = s
	}
	return s
}

func (t *Tarpit) release(pfx netip.Prefix) {
	t.mu.Lock()
	t.total--
	t.active.Store(int64(t.total))
	if t.perPrefix[pfx]--; t.perPrefix[pfx] <= 0 {
		delete(t.perPrefix, pfx)
	}
	t.mu.Unlock()
}

// detach duplicates the socket's descriptor and closes the net.Conn, so
// the connection lives on outside Go's netpoller and costs only the
// session struct. The duplicate shares the open file description, which
// Go has already made non-blocking.
func detach(c net.Conn) (int, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return -1, fmt.Errorf("connection %T has no descriptor", c)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	nfd := -1
	var derr error
	if err := rc.Control(func(fd uintptr) {
		nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return -1, err
	}
	if derr != nil {
		return -1, fmt.Errorf("dup: %w", derr)
	}
	if err := unix.SetNonblock(nfd, true); err != nil {
		unix.Close(nfd)
		return -1, err
	}
	// Pin a small send buffer: replies are bounded by maxQueued, and a
	// bot that never reads must fill its own receive buffer, not grow
	// this socket's (by autotuning, up to tcp_wmem's maximum: megabytes
	// of greypit's host memory per bot).
	unix.SetsockoptInt(nfd, unix.SOL_SOCKET, unix.SO_SNDBUF, sendBuffer)
	// Likewise the receive buffer: greypit reads a held bot in small
	// chunks, which to the kernel looks like a reader that keeps up, and
	// autotuning would grow the buffer towards tcp_rmem's maximum (32 MB
	// on some hosts) for a bot that pipelines without end. Pinned, the
	// bot's own writes block instead.
	unix.SetsockoptInt(nfd, unix.SOL_SOCKET, unix.SO_RCVBUF, recvBuffer)
	c.Close()
	return nfd, nil
}

// Run is the scheduler loop. It returns when ctx is done, after closing
// every held connection.
func (t *Tarpit) Run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var (
		flood   int // sessions added since memory was last handed back
		lastAdd time.Time
	)
	for {
		t.mu.Lock()
		for _, s := range t.incoming {
			heap.Push(&t.queue, s)
		}
		if n := len(t.incoming); n > 0 {
			flood, lastAdd = flood+n, time.Now()
		}
		t.incoming = t.incoming[:0]
		t.mu.Unlock()

		now := time.Now()
		// A flood of new sessions leaves the garbage of their accept
		// path behind; once it has settled, hand that memory back
		// rather than keep it for the next flood.
		if flood >= floodSize && now.Sub(lastAdd) >= floodQuiet {
			debug.FreeOSMemory()
			flood = 0
		}
		for len(t.queue) > 0 && t.queue[0].due <= toMono(now) {
			s := t.queue[0]
			t.stats.observeLateness(toMono(now).sub(s.due))
			if t.step(s, now) {
				heap.Fix(&t.queue, 0)
			} else {
				heap.Pop(&t.queue)
			}
		}
		wait := time.Hour
		if len(t.queue) > 0 {
			wait = t.queue[0].due.sub(toMono(time.Now()))
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			t.shutdown()
			return
		case <-timer.C:
		case <-t.wake:
		}
	}
}

func (t *Tarpit) shutdown() {
	t.mu.Lock()
	t.stopped = true
	for _, s := range t.incoming {
		heap.Push(&t.queue, s)
	}
	t.incoming = nil
	t.mu.Unlock()
	for _, s := range t.queue {
		t.end(s, "shutdown", nil)
	}
	t.queue = nil
}

// pollEvery is how often a session waiting for input is looked at.
func (t *Tarpit) pollEvery() time.Duration {
	return min(max(t.conf().Stutter, 50*time.Millisecond), time.Second)
}

// dripping reports whether replies are dripped now; above the pressure
// mark they go out whole so sessions end and make room (spamd near
// maxcon does the same).
func (t *Tarpit) dripping() bool {
	return float64(t.active.Load()) < t.conf().Pressure*float64(t.conf().MaxSessions)
}

// step advances one session at its due time. It reports whether the
// session stays; if not, it has ended and been reported.
func (t *Tarpit) step(s *sess, wall time.Time) bool {
	now := toMono(wall)
	if now.sub(s.start) >= t.conf().SessionTimeout {
		t.end(s, "timeout", nil)
		return false
	}
	// While a reply drips, input is looked at only every 8th byte: the
	// bot waits anyway, and it halves the system calls per drip.
	reading := s.outPos >= len(s.out) || s.dripped&7 == 0
	if reading && !s.closing && len(s.out)-s.outPos < maxQueued {
		if !t.readInput(s, now) {
			return false
		}
	}
	if s.outPos < len(s.out) {
		if !t.write(s) {
			return false
		}
		if s.outPos < len(s.out) || s.closing {
			// Keep the cadence: the next byte is due one stutter after
			// this one was, not after this one was late.
			s.due = s.due.add(t.conf().Stutter)
			if s.due < now {
				s.due = now.add(t.conf().Stutter)
			}
			return true
		}
		// All sent: the bot has had its answer, and the idle clock
		// starts now, not at its last command.
		s.lastIn = now
	}
	if s.closing {
		t.end(s, s.outcome, nil)
		return false
	}
	if cfg := t.conf(); s.state == stData && cfg.DataTimeout > 0 && now.sub(s.lastIn) >= cfg.DataTimeout {
		// RFC 5321 §4.5.3.2.6: the end of the data did not come in time.
		s.state = stCommand
		s.closeWith("data-timeout", smtpReply(421, "4.4.2", cfg.Hostname+" Timeout waiting for data, closing connection"))
		s.due = now
		return true
	}
	if now.sub(s.lastIn) >= t.conf().IdleTimeout {
		t.end(s, "idle", nil)
		return false
	}
	s.due = now.add(t.pollEvery())
	return true
}

// readInput reads what the client sent (without waiting) and acts on it.
// It reports false if the session ended.
func (t *Tarpit) readInput(s *sess, now mono) bool {
	if len(s.in) > 0 { // pre-banner bytes from Add, or input held back by consume
		buf := s.in
		s.in = nil
		t.consume(s, buf)
		return true
	}
	n, err := unix.Read(s.fd, t.scratch)
	switch {
	case err == unix.EAGAIN || err == unix.EINTR:
		return true
	case err != nil:
		t.end(s, "closed", err)
		return false
	case n == 0:
		t.end(s, "closed", nil)
		return false
	}
	s.lastIn = now
	t.consume(s, t.scratch[:n])
	return true
}

// write sends the next byte, or everything queued when not dripping.
// It reports false if the session ended.
func (t *Tarpit) write(s *sess) bool {
	b := s.out[s.outPos : s.outPos+1]
	if !t.dripping() {
		b = s.out[s.outPos:]
	}
	n, err := unix.SendmsgN(s.fd, b, nil, nil, unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL)
	switch {
	case err == unix.EAGAIN || err == unix.EINTR:
		return true // the bot does not read: its buffer is full
	case err != nil:
		t.end(s, "closed", err)
		return false
	}
	s.outPos += n
	s.dripped += int64(n)
	t.stats.Dripped.Add(int64(n))
	if s.outPos == len(s.out) {
		s.out, s.outPos, s.shared = nil, 0, false
	}
	return true
}

// end closes a session and reports it.
func (t *Tarpit) end(s *sess, outcome string, err error) {
	unix.Close(s.fd)
	t.release(t.prefix(s.info.Client.Addr()))
	if s.sample != nil && t.conf().Sampler != nil && s.sample.started {
		t.conf().Sampler.write(s, t.conf().Hostname, false)
	}
	if t.onEnd != nil {
		t.onEnd(Verdict{
			Info: s.info, Outcome: outcome, Held: toMono(time.Now()).sub(s.start), Dripped: s.dripped,
			Helo: s.helo, From: s.from, Rcpts: int(s.allRcpts), Messages: int(s.messages), DataBytes: s.dataBytes, Err: err,
		})
	}
}

// Stats are running totals for metrics and benchmarks.
type Stats struct {
	Dripped atomic.Int64
	// Lateness of wake-ups against their due time, in buckets whose upper
	// bounds are LatenessBuckets.
	Lateness [len(LatenessBuckets) + 1]atomic.Int64
}

// LatenessBuckets are the upper bounds of the lateness histogram.
var LatenessBuckets = [...]time.Duration{
	time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond,
	20 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 500 * time.Millisecond, time.Second,
}

func (st *Stats) observeLateness(d time.Duration) {
	for i, b := range LatenessBuckets {
		if d <= b {
			st.Lateness[i].Add(1)
			return
		}
	}
	st.Lateness[len(LatenessBuckets)].Add(1)
}

// Stats returns the running totals.
func (t *Tarpit) Stats() *Stats { return &t.stats }

// sessHeap orders sessions by due time.
type sessHeap []*sess

func (h sessHeap) Len() int           { return len(h) }
func (h sessHeap) Less(i, j int) bool { return h[i].due < h[j].due }
func (h sessHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *sessHeap) Push(x any)        { *h = append(*h, x.(*sess)) }
func (h *sessHeap) Pop() any {
	old := *h
	s := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return s
}

// mono is a monotonic time in nanoseconds since the process's epoch: a
// third of a time.Time, which matters at tens of thousands of sessions.
type mono int64

var epoch = time.Now()

func toMono(t time.Time) mono           { return mono(t.Sub(epoch)) }
func (m mono) add(d time.Duration) mono { return m + mono(d) }
func (m mono) sub(o mono) time.Duration { return time.Duration(m - o) }
