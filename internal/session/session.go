// Package session is greypit's own SMTP server state machine for grey
// hosts (RFC 5321).
//
// It is not a general SMTP server: it never accepts a message itself. It
// answers the dialogue up to RCPT, asks the greylister about each
// recipient, and when a retry passes it hands the very same connection to
// the backend MTA (package handoff), replaying the envelope so the client
// sees the backend's own answer. Owning the state machine is what makes the
// greet pause, byte-level control of replies (the tarpit) and a loss-free
// mid-session hand-off possible.
package session

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/greypit/greypit/internal/greylist"
	"github.com/greypit/greypit/internal/handoff"
	"github.com/greypit/greypit/internal/smtp"
	"github.com/greypit/greypit/internal/store"
)

// Config holds the session settings.
type Config struct {
	Hostname       string
	GreetWait      time.Duration // grey hosts wait this long for the banner
	CommandTimeout time.Duration // per command read (RFC 5321 §4.5.3.2.7)
	SessionTimeout time.Duration // whole session, including a splice
	MaxErrors      int           // bad commands before the session is closed
	MaxRecipients  int
	MaxMessageSize int64
	// TLS returns the STARTTLS configuration, or nil when none is set. It is
	// a function so a reloaded certificate applies to new sessions.
	TLS func() *tls.Config
	// Stutter and StutterFor: for StutterFor after connect, replies go out
	// one byte per Stutter (spamd's -S): bots that give up on slow
	// servers give up here, real MTAs wait (RFC 5321 §4.5.3.2 gives them
	// minutes).
	Stutter    time.Duration
	StutterFor time.Duration
	// Extensions returns the EHLO lines greypit may advertise: those a
	// hand-off to the backend can honour (see handoff.Capabilities).
	Extensions func() []string
}

// Deps are the engines a session calls.
type Deps struct {
	Greylist *greylist.Greylister
	Dialer   *handoff.Dialer
	// Whitelist records that addr passed greylisting.
	Whitelist func(ctx context.Context, addr netip.Addr) error
	// Pregreet, if set, blacklists a client that talked before the
	// banner; the session then ends with outcome "pregreet" without
	// greeting, and the caller hands the connection to the tarpit.
	Pregreet func(ctx context.Context, addr netip.Addr) error
	// Trap, if set, is asked about the sender at MAIL (rcpt "") and about
	// each recipient. When it reports a hit (it has blacklisted the host),
	// the client gets the reply any sender or recipient would get, and the
	// session ends with outcome "trapped" for the caller to hand the
	// connection to the tarpit; see trap.go.
	Trap func(ctx context.Context, addr netip.Addr, helo, from, rcpt string) (rule string, hit bool)
}

// Result is what happened, for the session's verdict log line.
type Result struct {
	Outcome  string   // quit, greylisted, handoff, backend-error, timeout, closed, too-many-errors, ...
	Helo     string   `json:",omitempty"`
	From     string   `json:",omitempty"`
	Rcpts    []string `json:",omitempty"` // recipients handed to the backend
	Deferred []string `json:",omitempty"` // recipients greylisted
	Pregreet bool     // the client talked before the banner
	Trap     string   `json:",omitempty"` // the trap hit, if one was
	TLS      bool
	Splice   handoff.Stats
	Err      error
}

// Session is one grey SMTP connection.
type Session struct {
	cfg  *Config
	deps *Deps
	log  *slog.Logger

	raw    net.Conn // the client's TCP connection
	conn   net.Conn // raw, or a *tls.Conn over it after STARTTLS
	br     *bufio.Reader
	bw     *bufio.Writer
	client netip.AddrPort
	local  netip.AddrPort

	start    time.Time
	deadline time.Time
	// Connected is when the client connected, if before Run: the greet
	// pause counts from it, so time spent classifying the client (DNSBL
	// lookups) is part of the pause rather than added to it.
	Connected time.Time
	errors    int

	// Greeting and envelope.
	helo       string
	esmtp      bool
	tls        bool
	haveMail   bool
	from       smtp.Path
	fromParams smtp.Params
	nrcpt      int
	backendErr bool // a hand-off failed for want of the backend
	trapped    bool // a trap was hit inside TLS: nothing passes any more

	res Result

	// mu guards the shutdown hand-shake with the hand-off: once handed
	// off, a shutdown lets the splice finish the mail in flight.
	mu        sync.Mutex
	stopping  bool
	handedOff bool
}

// New prepares a session on conn.
func New(conn net.Conn, cfg *Config, deps *Deps, log *slog.Logger) *Session {
	s := &Session{cfg: cfg, deps: deps, log: log, conn: conn, raw: conn}
	s.br = bufio.NewReaderSize(conn, 4096)
	s.bw = bufio.NewWriterSize(stutterWriter{s}, 4096)
	s.client = AddrPort(conn.RemoteAddr())
	s.local = AddrPort(conn.LocalAddr())
	return s
}

// Pending returns the input read from the client but not acted on.
func (s *Session) Pending() []byte {
	b, _ := s.br.Peek(s.br.Buffered())
	return append([]byte(nil), b...)
}

// stutterWriter writes to the session's current connection, one byte per
// Stutter while the session is younger than StutterFor.
type stutterWriter struct{ s *Session }

func (w stutterWriter) Write(p []byte) (int, error) {
	s := w.s
	n := 0
	for n < len(p) && s.cfg.StutterFor > 0 && time.Since(s.start) < s.cfg.StutterFor {
		if _, err := s.conn.Write(p[n : n+1]); err != nil {
			return n, err
		}
		n++
		time.Sleep(s.cfg.Stutter) // the delay is the point, not a wait for an event
	}
	m, err := s.conn.Write(p[n:])
	return n + m, err
}

// Shutdown asks the session to end: a session waiting for a command gets
// 421 (RFC 5321 §3.8) and closes; a session already handed to the backend
// is left to finish. It is safe to call from another goroutine.
func (s *Session) Shutdown() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.handedOff {
		return
	}
	s.stopping = true
	s.raw.SetReadDeadline(time.Now())
}

func (s *Session) isStopping() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopping
}

// AddrPort returns a connection address as a netip.AddrPort, with an
// IPv4-mapped IPv6 address (a dual-stack listener's view of an IPv4
// client) unmapped, so lists, keys and logs see one spelling.
func AddrPort(a net.Addr) netip.AddrPort {
	var ap netip.AddrPort
	if ta, ok := a.(*net.TCPAddr); ok {
		ap = ta.AddrPort()
	} else {
		ap, _ = netip.ParseAddrPort(a.String())
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// errClose ends the command loop after the reply is sent.
var errClose = errors.New("close")

// Run serves the session until it ends and reports what happened. The
// caller closes the connection, unless a hand-off did.
func (s *Session) Run(ctx context.Context) Result {
	s.start = time.Now()
	s.deadline = s.start.Add(s.cfg.SessionTimeout)
	if s.greetPause() {
		s.res.Pregreet = true
		if s.deps.Pregreet != nil {
			if err := s.deps.Pregreet(ctx, s.client.Addr()); err != nil {
				s.log.Warn("blacklisting an early talker failed", "err", err)
			}
			return s.end("pregreet", nil)
		}
	}
	s.reply(220, "", s.cfg.Hostname+" ESMTP greypit")
	for {
		if err := s.flushIfIdle(); err != nil {
			return s.end("closed", err)
		}
		if err := s.command(ctx); err != nil {
			if errors.Is(err, errClose) {
				return s.end(s.res.Outcome, s.flush())
			}
			return s.end(s.res.Outcome, err)
		}
		if s.res.Outcome == "handoff" {
			return s.end("handoff", s.res.Err)
		}
	}
}

func (s *Session) end(outcome string, err error) Result {
	if outcome == "" {
		outcome = "closed"
	}
	switch {
	case outcome == "handoff", outcome == "trapped":
	case s.backendErr:
		outcome = "backend-error"
	case len(s.res.Deferred) > 0:
		outcome = "greylisted"
	}
	s.res.Outcome = outcome
	if s.res.Err == nil {
		s.res.Err = err
	}
	return s.res
}

// greetPause waits GreetWait before the banner and reports whether the
// client sent anything meanwhile: RFC 5321 §3.1 has the client wait for
// the greeting, and bots that don't are what postscreen's pregreet test
// catches. What they sent stays buffered and is answered in order.
func (s *Session) greetPause() bool {
	if s.cfg.GreetWait <= 0 {
		return false
	}
	from := s.start
	if !s.Connected.IsZero() && s.Connected.Before(from) {
		from = s.Connected
	}
	// Whatever arrived while the client was being classified counts too:
	// wait at least a moment to see it.
	until := from.Add(s.cfg.GreetWait)
	if soon := time.Now().Add(time.Millisecond); until.Before(soon) {
		until = soon
	}
	s.conn.SetReadDeadline(until)
	_, err := s.br.Peek(1)
	s.conn.SetReadDeadline(time.Time{})
	return err == nil
}

// reply queues a reply; replies go out when the client has no more
// pipelined commands waiting (RFC 2920 §3.2) or before greypit blocks.
func (s *Session) reply(code int, enh string, lines ...string) {
	s.bw.Write(smtp.Reply{Code: code, Enhanced: enh, Lines: lines}.Bytes())
}

func (s *Session) flushIfIdle() error {
	if s.br.Buffered() > 0 && s.bw.Buffered() < 2048 {
		return nil
	}
	return s.flush()
}

// flush sends the queued replies. A client that does not read them within
// CommandTimeout is given up on.
func (s *Session) flush() error {
	s.conn.SetWriteDeadline(time.Now().Add(s.cfg.CommandTimeout))
	return s.bw.Flush()
}

func (s *Session) readDeadline(d time.Duration) {
	t := time.Now().Add(d)
	if t.After(s.deadline) {
		t = s.deadline
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		t = time.Now()
	}
	s.conn.SetReadDeadline(t)
}

// command reads and executes one command. A non-nil error ends the
// session; errClose means the goodbye reply is queued.
func (s *Session) command(ctx context.Context) error {
	s.readDeadline(s.cfg.CommandTimeout)
	line, err := smtp.ReadLine(s.br, smtp.MaxCommandLine)
	if err != nil {
		return s.readError(err)
	}
	cmd, err := smtp.ParseCommand(line)
	if err != nil {
		return s.bad(500, "5.5.2", "Syntax error, command unrecognized")
	}
	switch cmd.Verb {
	case "EHLO", "HELO":
		return s.hello(cmd)
	case "STARTTLS":
		return s.starttls(cmd)
	case "MAIL":
		return s.mail(ctx, cmd)
	case "RCPT":
		return s.rcpt(ctx, cmd)
	case "DATA":
		// Every recipient was greylisted (a pipelining client sends DATA
		// regardless, RFC 2920 §3.1): not an error of the client's.
		s.reply(554, "5.5.1", "No valid recipients")
	case "RSET":
		s.reset()
		s.reply(250, "2.0.0", "Ok")
	case "NOOP":
		s.reply(250, "2.0.0", "Ok")
	case "VRFY":
		s.reply(252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery")
	case "HELP":
		s.reply(214, "2.0.0", "See RFC 5321")
	case "QUIT":
		s.reply(221, "2.0.0", s.cfg.Hostname+" closing connection")
		s.res.Outcome = "quit"
		return errClose
	case "GET", "POST", "HEAD", "PUT", "CONNECT", "OPTIONS", "DELETE":
		// A browser or proxy pointed at port 25, or a cross-protocol
		// attack: don't keep talking.
		s.reply(500, "5.5.1", "This is an SMTP server, not HTTP")
		s.res.Outcome = "http"
		return errClose
	case "EXPN", "ETRN", "AUTH", "TURN", "ATRN", "BDAT":
		return s.bad(502, "5.5.1", "Command not implemented")
	default:
		return s.bad(500, "5.5.2", "Command unrecognized")
	}
	return nil
}

func (s *Session) readError(err error) error {
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		s.res.Outcome = "closed"
		return err
	case errors.Is(err, os.ErrDeadlineExceeded) && s.isStopping():
		s.reply(421, "4.3.2", s.cfg.Hostname+" Service shutting down, please try again later")
		s.res.Outcome = "shutdown"
		return errClose
	case errors.Is(err, os.ErrDeadlineExceeded):
		s.reply(421, "4.4.2", s.cfg.Hostname+" Timeout, closing connection")
		s.res.Outcome = "timeout"
		return errClose
	case errors.Is(err, smtp.ErrOutOfSync):
		// No end of line in sight: whatever comes next is not a command.
		s.reply(500, "5.5.2", "Line too long, closing connection")
		s.res.Outcome = "line-too-long"
		return errClose
	case errors.Is(err, smtp.ErrLineTooLong):
		// RFC 5321 §4.5.3.1.4: 500 for a command line too long.
		return s.bad(500, "5.5.2", "Line too long")
	case errors.Is(err, smtp.ErrNUL), errors.Is(err, smtp.ErrBadLineEnding):
		return s.bad(500, "5.5.2", "Invalid characters or line ending in command")
	}
	s.res.Outcome = "closed"
	return err
}

// bad answers a bad command; the MaxErrors-th one closes the session
// instead, as chasquid and Postfix do against cross-protocol abuse.
func (s *Session) bad(code int, enh, text string) error {
	s.errors++
	if s.errors >= s.cfg.MaxErrors {
		s.reply(421, "4.7.0", s.cfg.Hostname+" Too many errors, closing connection")
		s.res.Outcome = "too-many-errors"
		return errClose
	}
	s.reply(code, enh, text)
	return nil
}

func (s *Session) reset() {
	s.haveMail = false
	s.from = smtp.Path{}
	s.fromParams = nil
	s.nrcpt = 0
}

func (s *Session) hello(cmd smtp.Command) error {
	arg := strings.TrimSpace(cmd.Arg)
	if arg == "" || strings.ContainsAny(arg, " \t") && cmd.Verb == "HELO" {
		return s.bad(501, "5.5.4", "Syntax: "+cmd.Verb+" hostname")
	}
	if i := strings.IndexAny(arg, " \t"); i > 0 {
		arg = arg[:i] // EHLO may carry junk after the name; keep the name
	}
	s.reset()
	s.helo = arg
	s.res.Helo = arg
	s.esmtp = cmd.Verb == "EHLO"
	if !s.esmtp {
		s.reply(250, "", s.cfg.Hostname)
		return nil
	}
	lines := []string{s.cfg.Hostname}
	lines = append(lines, s.cfg.Extensions()...)
	if !s.tls && s.cfg.TLS != nil && s.cfg.TLS() != nil {
		lines = append(lines, "STARTTLS")
	}
	s.reply(250, "", lines...)
	return nil
}

// starttls upgrades the connection (RFC 3207). The bufio reader is
// rebuilt over the TLS connection so nothing sent in plaintext after the
// command survives into the encrypted session (the CVE-2011-0411 class).
func (s *Session) starttls(cmd smtp.Command) error {
	var tc *tls.Config
	if s.cfg.TLS != nil {
		tc = s.cfg.TLS()
	}
	switch {
	case tc == nil || s.tls:
		return s.bad(502, "5.5.1", "STARTTLS not available")
	case cmd.Arg != "":
		return s.bad(501, "5.5.4", "Syntax: STARTTLS")
	case s.br.Buffered() > 0:
		s.reply(554, "5.5.1", "Pipelining after STARTTLS is not allowed")
		s.res.Outcome = "starttls-injection"
		return errClose
	}
	s.reply(220, "2.0.0", "Ready to start TLS")
	if err := s.flush(); err != nil {
		return err
	}
	tlsConn := tls.Server(s.conn, tc)
	s.readDeadline(s.cfg.CommandTimeout)
	s.conn.SetWriteDeadline(time.Now().Add(s.cfg.CommandTimeout))
	if err := tlsConn.Handshake(); err != nil {
		s.res.Outcome = "tls-failed"
		return fmt.Errorf("TLS handshake: %w", err)
	}
	s.conn = tlsConn
	s.br = bufio.NewReaderSize(tlsConn, 4096)
	s.bw = bufio.NewWriterSize(stutterWriter{s}, 4096)
	s.tls, s.res.TLS = true, true
	// RFC 3207 §4.2: forget everything learned before TLS.
	s.helo, s.esmtp = "", false
	s.reset()
	return nil
}

func (s *Session) mail(ctx context.Context, cmd smtp.Command) error {
	switch {
	case s.helo == "":
		return s.bad(503, "5.5.1", "Send HELO/EHLO first")
	case s.haveMail:
		return s.bad(503, "5.5.1", "Nested MAIL command")
	}
	path, params, err := smtp.ParseMail(cmd.Arg)
	if err != nil {
		return s.parseErr(err, 501, "5.5.4")
	}
	if v, ok := params.Get("SIZE"); ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return s.bad(501, "5.5.4", "Bad SIZE parameter")
		}
		if n > s.cfg.MaxMessageSize {
			s.reply(552, "5.3.4", "Message size exceeds fixed limit")
			return nil
		}
	}
	s.haveMail = true
	s.from, s.fromParams = path, params
	s.res.From = path.String()
	s.reply(250, "2.1.0", "Ok")
	return s.checkTrap(ctx, "")
}

func (s *Session) parseErr(err error, code int, enh string) error {
	var re *smtp.ReplyError
	if errors.As(err, &re) {
		return s.bad(re.Code, re.Enhanced, re.Text)
	}
	return s.bad(code, enh, "Syntax error in parameters")
}

func (s *Session) rcpt(ctx context.Context, cmd smtp.Command) error {
	if !s.haveMail {
		return s.bad(503, "5.5.1", "Need MAIL command")
	}
	path, params, err := smtp.ParseRcpt(cmd.Arg)
	if err != nil {
		return s.parseErr(err, 501, "5.5.4")
	}
	if s.nrcpt >= s.cfg.MaxRecipients {
		s.reply(452, "4.5.3", "Too many recipients")
		return nil
	}
	s.nrcpt++
	if s.trapped || s.isTrap(ctx, path.String()) {
		s.reply(451, "4.7.1", greylistedText(s.deps.Greylist.Params.PassDelay))
		return s.trappedEnd()
	}
	d, err := s.deps.Greylist.CheckAttempt(ctx, greylist.Attempt{Client: s.client.Addr(), Helo: s.helo, Sender: s.from.String(), Rcpt: path.String()})
	if err != nil {
		s.log.Warn("greylist check failed", "err", err)
		s.reply(451, "4.3.0", "Temporary local problem, please try again later")
		return nil
	}
	if d.StoreErr != nil {
		s.log.Warn("greylist check failed; passing (store.unreachable = open)", "err", d.StoreErr)
	}
	if d.Outcome != store.GreyPass {
		s.res.Deferred = append(s.res.Deferred, path.String())
		s.reply(451, "4.7.1", greylistedText(d.RetryIn))
		return nil
	}
	return s.handoff(ctx, path, params)
}

// backendUnavailable answers a recipient whose hand-off failed: a
// temporary failure, so the client keeps the message and retries.
func (s *Session) backendUnavailable(err error) {
	s.log.Warn("backend unavailable", "err", err)
	s.res.Err = err
	s.backendErr = true
	s.reply(451, "4.4.1", "Temporary failure: mail server unavailable, please try again later")
}

// handoff moves the session to the backend after a recipient passed
// greylisting. The client only ever gets the backend's own replies for
// MAIL and RCPT from here on; if the backend is unreachable it gets a
// temporary failure and greypit keeps the session.
func (s *Session) handoff(ctx context.Context, rcpt smtp.Path, rcptParams smtp.Params) error {
	// Replies queued so far go first: the client reads them in order.
	if err := s.flush(); err != nil {
		return err
	}
	bc, err := s.deps.Dialer.Open(ctx, handoff.Client{Addr: s.client, Local: s.local, Helo: s.helo, ESMTP: s.esmtp})
	if err != nil {
		s.backendUnavailable(err)
		return nil
	}
	r, raw, err := bc.Cmd("MAIL FROM:<" + s.from.String() + ">" + s.fromParams.String())
	if err != nil || r.Code != 250 {
		bc.Quit()
		s.reset()
		if err != nil || r.Code < 400 {
			s.backendUnavailable(fmt.Errorf("backend MAIL: %d %v", r.Code, err))
			return nil
		}
		s.res.Err = fmt.Errorf("backend refused MAIL: %d %s", r.Code, strings.Join(r.Lines, " "))
		s.bw.Write(raw) // the backend's own refusal of the sender
		return nil
	}
	r, raw, err = bc.Cmd("RCPT TO:<" + rcpt.String() + ">" + rcptParams.String())
	if err != nil {
		bc.Close()
		s.backendUnavailable(fmt.Errorf("backend RCPT: %w", err))
		return nil
	}
	// The host retried like a real MTA: it is white from now on.
	if err := s.deps.Whitelist(ctx, s.client.Addr()); err != nil {
		s.log.Warn("whitelisting failed", "err", err)
	}
	s.res.Outcome = "handoff"
	if r.Code/100 == 2 {
		s.res.Rcpts = append(s.res.Rcpts, rcpt.String())
	}
	s.conn.SetWriteDeadline(time.Now().Add(s.cfg.CommandTimeout))
	if _, err := s.conn.Write(raw); err != nil {
		bc.Close()
		s.res.Err = err
		return nil
	}
	// Whatever the client pipelined behind this RCPT is the backend's now.
	pending, _ := s.br.Peek(s.br.Buffered())
	s.mu.Lock()
	s.handedOff = true
	s.mu.Unlock()
	s.conn.SetDeadline(time.Time{})
	st, err := bc.Splice(s.conn, pending, s.deadline)
	s.res.Splice = st
	s.res.Err = err
	return nil
}
