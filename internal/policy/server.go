package policy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/greypit/greypit/internal/classify"
	"github.com/greypit/greypit/internal/greylist"
	"github.com/greypit/greypit/internal/store"
	"github.com/greypit/greypit/internal/traps"
)

// Config is what the policy server says and when.
type Config struct {
	// GreylistAction is the Postfix action for a greylisted request,
	// normally DEFER_IF_PERMIT (defer unless a later restriction rejects).
	GreylistAction string
	// GreylistText follows the action; %s is replaced by the seconds left,
	// %r by the recipient's domain (postgrey's substitutions).
	GreylistText string
	// BlackAction is "REJECT" or "DEFER"; the listing reason follows it.
	BlackAction string
	// XGreylistHeader, when not empty, is PREPENDed on a tuple's first
	// pass: %t delay in seconds, %v version, %h Hostname, %d date.
	XGreylistHeader string
	Hostname        string
	Version         string
	// AutoWhitelist whitelists a client address after this many passes
	// (at most one counted per hour); 0 never.
	AutoWhitelist int
	// WhiteTTL is how long an earned white entry (and an AWL count) lasts.
	WhiteTTL time.Duration
	// IdleTimeout closes a connection without a request for this long
	// (Postfix closes its own after smtpd_policy_service_max_idle, 300s).
	IdleTimeout time.Duration
	// MaxConns bounds concurrent connections; more are closed at once.
	MaxConns int
}

// Server answers Postfix policy requests.
type Server struct {
	Config
	Log        *slog.Logger
	Classifier *classify.Classifier
	Greylist   *greylist.Greylister
	Store      store.Store
	// Traps, if set, blacklists a grey client that names a spamtrap as
	// sender or recipient (the same checker as the SMTP front line's).
	Traps *traps.Checker
	// Whitelist holds postgrey's whitelist files (nil: none); Reload
	// replaces it.
	Whitelist atomic.Pointer[Whitelist]
	Now       func() time.Time // for tests; nil means time.Now

	// tuned holds the settings in force: Config, Greylist and Traps
	// above until the first Reload.
	tuned    atomic.Pointer[Settings]
	tuneOnce sync.Once

	conns   atomic.Int64
	closing atomic.Bool // Serve's ctx is done: answer what was read, read no more
	wg      sync.WaitGroup
	mu      sync.Mutex
	active  map[net.Conn]struct{}
}

// awlGap is postgrey's: one pass per client counts per hour.
const awlGap = time.Hour

// refreshEvery bounds store writes for busy white hosts, as in package
// server.
const refreshEvery = 10 * time.Minute

// Settings are the parts of a Server a reload may change. Each request
// is answered with the settings in force when it arrived.
type Settings struct {
	Config
	Greylist *greylist.Greylister
	Traps    *traps.Checker
}

// Reload puts set in force for the requests that follow.
func (s *Server) Reload(set *Settings) {
	s.settings()
	s.tuned.Store(set)
}

// Settings returns the settings in force.
func (s *Server) settings() *Settings {
	s.tuneOnce.Do(func() {
		s.tuned.CompareAndSwap(nil, &Settings{Config: s.Config, Greylist: s.Greylist, Traps: s.Traps})
	})
	return s.tuned.Load()
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// drainTimeout bounds how long Serve waits, once ctx is done, for requests
// being decided to be answered before it closes their connections.
const drainTimeout = 5 * time.Second

// Serve accepts connections on ln until ctx is done. Then it stops
// accepting, lets every request already read be decided and answered
// (Postfix would otherwise see a broken connection and tempfail the
// recipient with "Server configuration problem"), closes each connection
// as it goes idle, and waits for their goroutines; after drainTimeout the
// rest are closed.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.mu.Lock()
	if s.active == nil {
		s.active = map[net.Conn]struct{}{}
	}
	s.mu.Unlock()
	stop := context.AfterFunc(ctx, func() {
		ln.Close()
		s.closing.Store(true)
		s.mu.Lock()
		for c := range s.active {
			// Wakes a connection waiting for its next request; one being
			// decided sees closing after it has answered.
			c.SetReadDeadline(time.Now())
		}
		s.mu.Unlock()
		time.AfterFunc(drainTimeout, func() {
			s.mu.Lock()
			for c := range s.active {
				c.Close()
			}
			s.mu.Unlock()
		})
	})
	defer stop()
	var tempDelay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				s.wg.Wait()
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) {
				tempDelay = min(max(2*tempDelay, 5*time.Millisecond), time.Second)
				s.Log.Warn("policy accept failed; retrying", "err", err, "in", tempDelay)
				time.Sleep(tempDelay)
				continue
			}
			s.wg.Wait()
			return fmt.Errorf("policy: accept: %w", err)
		}
		tempDelay = 0
		if s.MaxConns > 0 && s.conns.Load() >= int64(s.MaxConns) {
			s.Log.Warn("policy connection refused: too many connections", "max", s.MaxConns)
			c.Close()
			continue
		}
		s.conns.Add(1)
		s.mu.Lock()
		s.active[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handle(ctx, c)
			s.mu.Lock()
			delete(s.active, c)
			s.mu.Unlock()
			s.conns.Add(-1)
		}()
	}
}

// connState is what one connection remembers between requests.
type connState struct {
	// instances are the last messages given an X-Greylist header, so a
	// message with several recipients gets one header (postgrey keeps 20).
	instances [20]string
	next      int
}

func (cs *connState) newInstance(inst string) bool {
	if inst == "" {
		return true
	}
	for _, i := range cs.instances {
		if i == inst {
			return false
		}
	}
	cs.instances[cs.next] = inst
	cs.next = (cs.next + 1) % len(cs.instances)
	return true
}

func (s *Server) handle(ctx context.Context, c net.Conn) {
	defer c.Close()
	br := bufio.NewReaderSize(c, MaxLine+2)
	bw := bufio.NewWriterSize(c, 512)
	var (
		req Request
		cs  connState
	)
	// The idle deadline moves only when it has aged by a tenth of the
	// timeout (at most a second): setting it is a timer change, which cost
	// more than parsing a request, and an idle client is still closed
	// after 0.9 to 1 times the timeout.
	var deadline time.Time
	step := min(s.IdleTimeout/10, time.Second)
	// A request read before shutdown is still decided: the store calls
	// must not fail for the daemon's own stop.
	dctx := context.WithoutCancel(ctx)
	for n := 0; ; n++ {
		if s.closing.Load() && br.Buffered() == 0 {
			return
		}
		if s.IdleTimeout > 0 {
			if now := time.Now(); deadline.IsZero() || now.Add(s.IdleTimeout).Sub(deadline) >= step {
				deadline = now.Add(s.IdleTimeout)
				c.SetReadDeadline(deadline)
				// Serve may have set the past deadline just before this
				// one replaced it.
				if s.closing.Load() && br.Buffered() == 0 {
					return
				}
			}
		}
		err := ReadRequest(br, &req)
		if err == io.EOF {
			return
		}
		if err != nil {
			if errors.Is(err, ErrTooLarge) {
				// Answer what can be answered, then stop reading.
				WriteAction(bw, "DUNNO")
				bw.Flush()
			}
			if !s.closing.Load() {
				s.Log.Info("policy connection ended", "remote", c.RemoteAddr().String(), "requests", n, "err", err)
			}
			return
		}
		action := s.Decide(dctx, &req, &cs)
		countAction(action)
		if err := WriteAction(bw, action); err != nil {
			return
		}
		if br.Buffered() == 0 {
			if err := bw.Flush(); err != nil {
				return
			}
		}
	}
}

// Decide answers one request. It never fails: what it cannot decide it
// answers DUNNO (let Postfix's other restrictions decide), and a store
// failure is a temporary deferral, as on the SMTP front line.
func (s *Server) Decide(ctx context.Context, r *Request, cs *connState) string {
	if cs == nil {
		cs = &connState{}
	}
	switch {
	case r.Request != "smtpd_access_policy":
		s.Log.Warn("policy: unknown request type; answering DUNNO", "request", r.Request)
		return "DUNNO"
	case r.Damaged:
		s.Log.Warn("policy: over-long line or too many attributes; answering DUNNO", "attrs", r.Attrs)
		return "DUNNO"
	case r.Has&HasProtocolState != 0 && r.ProtocolState != "RCPT":
		return "DUNNO" // greylisting decides per recipient
	}
	const need = HasClientAddress | HasSender | HasRecipient
	if r.Has&need != need {
		s.Log.Warn("policy: attribute missing; answering DUNNO", "client_address", r.Has&HasClientAddress != 0,
			"sender", r.Has&HasSender != 0, "recipient", r.Has&HasRecipient != 0)
		return "DUNNO"
	}
	addr, err := netip.ParseAddr(r.ClientAddress)
	if err != nil || addr.Zone() != "" {
		s.Log.Warn("policy: bad client_address; answering DUNNO", "client_address", r.ClientAddress)
		return "DUNNO"
	}
	addr = addr.Unmap()
	set := s.settings()
	log := func(action, reason string, more ...any) {
		if !s.Log.Enabled(ctx, slog.LevelInfo) {
			return // the attributes would be built for nothing
		}
		s.Log.Info("policy", append([]any{"action", action, "reason", reason, "client_address", r.ClientAddress,
			"client_name", r.ClientName, "sender", r.Sender, "recipient", r.Recipient}, more...)...)
	}

	d, err := s.Classifier.Classify(ctx, addr)
	if err != nil {
		log("tempfail", "store unavailable", "err", err)
		return "DEFER_IF_PERMIT 4.3.0 Temporary greylisting failure, try again later"
	}
	switch d.Path {
	case classify.Black:
		log("black", d.Rule)
		return set.blackAction(d.Reason)
	case classify.White:
		if d.Entry != nil && d.Entry.Source == classify.SourceGreylist {
			s.refresh(ctx, addr, d.Entry, set.WhiteTTL)
		}
		return "DUNNO"
	}
	wl := s.Whitelist.Load()
	if src, ok := wl.MatchClient(r.ClientName, addr); ok {
		s.Log.Debug("policy pass", "reason", "client whitelist "+src.String(), "client_address", r.ClientAddress)
		return "DUNNO"
	}
	if src, ok := wl.MatchRecipient(r.Recipient); ok {
		s.Log.Debug("policy pass", "reason", "recipient whitelist "+src.String(), "recipient", r.Recipient)
		return "DUNNO"
	}

	if set.Traps != nil {
		// The client is grey (Classify above): Traps.CheckAndRecord
		// without classifying it again.
		h, hit, err := set.Traps.CheckGrey(ctx, r.Sender, r.Recipient)
		if hit && err == nil {
			_, err = set.Traps.Record(ctx, addr, r.HeloName, r.Sender, h)
		}
		switch {
		case hit:
			// Answered like a first sighting, so the trap is not revealed;
			// the client is black from its next request on.
			if err != nil {
				log("greylist", "spamtrap hit not recorded", "trap", h.Address, "err", err)
			} else {
				log("greylist", "spamtrap", "trap", h.Address, "field", h.Field)
			}
			return set.greyAction(r, int64(set.Greylist.Params.PassDelay/time.Second))
		case err != nil:
			s.Log.Warn("policy: spamtrap check failed", "client_address", r.ClientAddress, "err", err)
		}
	}
	gd, err := set.Greylist.CheckAttempt(ctx, greylist.Attempt{Client: addr, Helo: r.HeloName, Sender: r.Sender, Rcpt: r.Recipient})
	if err != nil {
		log("tempfail", "store unavailable", "err", err)
		return "DEFER_IF_PERMIT 4.3.0 Temporary greylisting failure, try again later"
	}
	e := gd.Entry
	switch gd.Outcome {
	case store.GreyNew, store.GreyEarly:
		secs := int64((gd.RetryIn + time.Second - 1) / time.Second)
		if s.Log.Enabled(ctx, slog.LevelInfo) {
			log("greylist", gd.Outcome.String(), "retry_in", secs)
		}
		return set.greyAction(r, secs)
	}
	if !e.Passed.Equal(e.Updated) {
		return "DUNNO" // passed before
	}
	delay := int64(e.Passed.Sub(e.Created) / time.Second)
	log("pass", "triplet passed", "delay", delay)
	if set.AutoWhitelist > 0 {
		s.countPass(ctx, set, addr, e.Passed)
	}
	if set.XGreylistHeader != "" && cs.newInstance(r.Instance) {
		return "PREPEND " + set.header(delay, e.Passed)
	}
	return "DUNNO"
}

func (c *Config) greyAction(r *Request, secs int64) string {
	msg := c.GreylistText
	// postgrey: Exchange mishandles 4.7.1 after greylisting; Postfix 2.3+
	// always sends etrn_domain, so in practice 4.2.0 is what is sent.
	if r.Has&HasEtrnDomain != 0 && (msg == "" || msg[0] < '0' || msg[0] > '9') {
		msg = "4.2.0 " + msg
	}
	domain := r.Recipient
	if i := strings.LastIndexByte(domain, '@'); i >= 0 {
		domain = domain[i+1:]
	}
	// postgrey replaces the first %s, then the first %r. A digit never
	// makes a "%r" with its neighbours, so that %r is msg's own first one,
	// and both are put in while the reply is built, in one buffer: this
	// is every deferral.
	var num [20]byte
	sub := [2]struct {
		at  int
		val []byte
	}{{strings.Index(msg, "%s"), strconv.AppendInt(num[:0], secs, 10)}, {strings.Index(msg, "%r"), []byte(domain)}}
	if sub[1].at >= 0 && (sub[0].at < 0 || sub[1].at < sub[0].at) {
		sub[0], sub[1] = sub[1], sub[0]
	}
	var b strings.Builder
	b.Grow(len(c.GreylistAction) + 1 + len(msg) + len(sub[0].val) + len(sub[1].val))
	b.WriteString(c.GreylistAction)
	b.WriteByte(' ')
	pos := 0
	for _, x := range sub {
		if x.at >= 0 {
			b.WriteString(msg[pos:x.at])
			b.Write(x.val)
			pos = x.at + 2
		}
	}
	b.WriteString(msg[pos:])
	return b.String()
}

func (c *Config) blackAction(reason string) string {
	if reason == "" {
		reason = "blacklisted"
	}
	code := "4.7.1"
	if c.BlackAction == "REJECT" {
		code = "5.7.1"
	}
	return c.BlackAction + " " + code + " Blocked: " + reason
}

func (c *Config) header(delay int64, at time.Time) string {
	r := strings.NewReplacer("%t", strconv.FormatInt(delay, 10), "%v", c.Version, "%h", c.Hostname,
		"%d", at.Format("Mon, 02 Jan 2006 15:04:05 MST"))
	return r.Replace(c.XGreylistHeader)
}

// countPass counts a first pass towards auto-whitelisting and whitelists
// the client at the threshold. The white entry is written (and fsynced)
// before this returns, so it is in force for the client's next request.
func (s *Server) countPass(ctx context.Context, set *Settings, addr netip.Addr, now time.Time) {
	key := store.AddrKey(addr)
	n, err := s.Store.CountPass(ctx, key, now, awlGap, set.WhiteTTL)
	if err != nil {
		s.Log.Warn("policy: auto-whitelist count failed", "client_address", key, "err", err)
		return
	}
	if n < int64(set.AutoWhitelist) {
		return
	}
	if _, err := s.Store.Refresh(ctx, key, fmt.Sprintf("passed greylisting %d times", n), classify.SourceGreylist, now, set.WhiteTTL); err != nil {
		s.Log.Warn("policy: auto-whitelist failed", "client_address", key, "err", err)
		return
	}
	if n == int64(set.AutoWhitelist) {
		s.Log.Info("policy: client whitelisted", "client_address", key, "passes", n)
	}
}

func (s *Server) refresh(ctx context.Context, addr netip.Addr, e *store.Entry, ttl time.Duration) {
	now := s.now()
	if now.Sub(e.Updated) < refreshEvery || e.Key != store.AddrKey(addr) {
		return
	}
	if _, err := s.Store.Refresh(ctx, e.Key, e.Reason, e.Source, now, ttl); err != nil {
		s.Log.Warn("policy: white refresh failed", "client_address", e.Key, "err", err)
	}
}
