// Package server runs greypit's SMTP listeners: it accepts connections,
// classifies each client (package classify), sends it down its path —
// white to the backend splice, grey to the greylisting session, black to
// the black handler — and writes one verdict log line per session.
//
// It also owns the daemon's lifecycle: connection limits, reload of lists
// and certificates, and a graceful drain on shutdown.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/greypit/greypit/internal/classify"
	"github.com/greypit/greypit/internal/greylist"
	"github.com/greypit/greypit/internal/handoff"
	"github.com/greypit/greypit/internal/metrics"
	"github.com/greypit/greypit/internal/session"
	"github.com/greypit/greypit/internal/smtp"
	"github.com/greypit/greypit/internal/store"
	"github.com/greypit/greypit/internal/tarpit"
	"github.com/greypit/greypit/internal/traps"
)

// BlackHandler serves connections from black hosts. The tarpit plugs in
// here; it must never reach the backend.
type BlackHandler interface {
	Serve(ctx context.Context, conn net.Conn, d classify.Decision, log *slog.Logger) Outcome
}

// Outcome is what a path reports for the verdict line.
type Outcome struct {
	Outcome string
	Attrs   []slog.Attr
	Err     error
}

// Reject is the plain black handler: a 554 with the listing reason in
// place of the greeting (RFC 5321 §3.1), then close.
type Reject struct {
	Hostname string
}

// Serve implements BlackHandler.
func (r Reject) Serve(ctx context.Context, conn net.Conn, d classify.Decision, log *slog.Logger) Outcome {
	conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
	_, err := conn.Write(smtp.Reply{Code: 554, Enhanced: "5.7.1", Lines: []string{r.Hostname + " Service refused: " + d.Reason}}.Bytes())
	return Outcome{Outcome: "rejected", Err: err}
}

// Settings are the parts of a Server a reload may change. Each connection
// takes the settings current when it is accepted and keeps them to its
// end; Reload swaps them for the connections that follow.
type Settings struct {
	Greylist    *greylist.Greylister
	Black       BlackHandler
	PregreetTTL time.Duration
	Session     session.Config
	WhiteTTL    time.Duration
	MaxSessions int
	Traps       *traps.Checker
	Proxy       *ProxyIn
}

// Server is the SMTP front line.
type Server struct {
	Log        *slog.Logger
	Classifier *classify.Classifier
	Store      store.Store
	Greylist   *greylist.Greylister
	Dialer     *handoff.Dialer
	Black      BlackHandler // used when Tarpit is nil
	// Tarpit holds black hosts and early talkers; nil refuses them with
	// Black instead.
	Tarpit      *tarpit.Tarpit
	PregreetTTL time.Duration
	Session     session.Config
	WhiteTTL    time.Duration
	// MaxSessions caps concurrent connections; above it a new one gets 421.
	MaxSessions int
	// Traps, if set, blacklists grey hosts that use a spamtrap address and
	// tarpits the rest of their session (traps.go).
	Traps *traps.Checker
	// History, if set, gets every session's outcome for reports.
	History func(store.Event)
	// Proxy, if set, reads a PROXY header from each connection first.
	Proxy *ProxyIn

	// cur holds the settings in force: the fields above until the first
	// Reload.
	cur atomic.Pointer[Settings]

	initOnce sync.Once
	active   atomic.Int64
	seq      atomic.Uint64
	prefix   string
	wg       sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// Serve accepts on ln until ctx is done or ln fails.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.init()
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("accept on %s: %w", ln.Addr(), err)
			}
			// EMFILE and friends pass: back off rather than spin.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.Log.Warn("accept failed; backing off", "err", err, "delay", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handle(ctx, c)
		}()
	}
}

// init runs once per server, whichever listener's Serve comes first.
func (s *Server) init() {
	s.initOnce.Do(func() {
		s.conns = map[net.Conn]struct{}{}
		s.prefix = strconv.FormatInt(time.Now().Unix()%100000, 36)
		s.cur.CompareAndSwap(nil, &Settings{
			Greylist: s.Greylist, Black: s.Black, PregreetTTL: s.PregreetTTL, Session: s.Session,
			WhiteTTL: s.WhiteTTL, MaxSessions: s.MaxSessions, Traps: s.Traps, Proxy: s.Proxy,
		})
	})
}

// Reload puts set in force for the connections accepted from now on.
func (s *Server) Reload(set *Settings) {
	s.init()
	s.cur.Store(set)
}

// settings returns the settings in force.
func (s *Server) settings() *Settings {
	s.init()
	return s.cur.Load()
}

// Drain waits for sessions to end, up to ctx; then it closes the rest.
func (s *Server) Drain(ctx context.Context) {
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return
	case <-ctx.Done():
	}
	s.mu.Lock()
	n := len(s.conns)
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.Log.Warn("drain timed out; closed sessions", "sessions", n)
	<-done
}

// Active reports the number of open sessions.
func (s *Server) Active() int64 { return s.active.Load() }

func (s *Server) track(c net.Conn, on bool) {
	s.mu.Lock()
	if on {
		s.conns[c] = struct{}{}
	} else {
		delete(s.conns, c)
	}
	s.mu.Unlock()
}

func (s *Server) handle(ctx context.Context, c net.Conn) {
	start := time.Now()
	set := s.settings()
	id := s.prefix + "-" + strconv.FormatUint(s.seq.Add(1), 36)
	owned := true // false once the tarpit holds the connection
	defer func() {
		if owned {
			c.Close()
		}
	}()
	if set.Proxy != nil {
		pc, err := set.Proxy.accept(c)
		if err != nil {
			s.proxyFailed(id, c, err, start)
			return
		}
		c = pc
	}
	client := session.AddrPort(c.RemoteAddr())

	d, err := s.Classifier.Classify(ctx, client.Addr())
	if err != nil {
		metrics.StoreErrors.With("classify").Inc()
		s.Log.Error("classify failed", "conn", id, "client", client.Addr().String(), "err", err)
	}
	// Black hosts go to the tarpit, which has caps of its own: a flood of
	// them must not use up the sessions of white and grey hosts.
	if d.Path == classify.Black && s.Tarpit != nil {
		err := s.toTarpit(c, set, id, client, d.Reason, d.Rule, nil)
		if err == nil {
			owned = false // the tarpit logs the verdict when it lets go
			return
		}
		s.Log.Info("verdict", "conn", id, "client", client.Addr().String(), "path", "black", "rule", d.Rule,
			"reason", d.Reason, "outcome", "tarpit-full", "err", err.Error(), "duration", time.Since(start).Round(time.Millisecond))
		s.record(client.Addr(), "black", "tarpit-full", 0)
		return
	}

	log := s.Log.With("conn", id)
	if n := s.active.Add(1); set.MaxSessions > 0 && n > int64(set.MaxSessions) {
		s.active.Add(-1)
		c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		c.Write(smtp.Reply{Code: 421, Enhanced: "4.3.2", Lines: []string{set.Session.Hostname + " Too busy, please try again later"}}.Bytes())
		log.Info("verdict", "client", client.Addr().String(), "path", string(d.Path), "rule", d.Rule, "outcome", "busy", "duration", time.Since(start).Round(time.Millisecond))
		s.record(client.Addr(), "none", "busy", 0)
		return
	}
	defer s.active.Add(-1)
	gauge := activeGauge(d.Path)
	gauge.Inc()
	defer gauge.Dec()
	s.track(c, true)
	defer s.track(c, false)

	attrs := []any{"client", client.Addr().String(), "path", string(d.Path), "rule", d.Rule}
	if d.DNSBL != nil {
		attrs = append(attrs, "dnsbl_score", d.DNSBL.Score)
	}
	switch d.Path {
	case classify.White:
		st, err := s.Dialer.Splice(ctx, c, handoff.Client{Addr: client, Local: session.AddrPort(c.LocalAddr())}, start.Add(set.Session.SessionTimeout))
		outcome := "spliced"
		var he *handoff.Error
		if errors.As(err, &he) {
			// The backend can't be reached: the client must learn it is a
			// temporary condition (RFC 5321 §3.8), never a success.
			outcome = "backend-error"
			c.SetWriteDeadline(time.Now().Add(5 * time.Second))
			c.Write(smtp.Reply{Code: 421, Enhanced: "4.4.1", Lines: []string{set.Session.Hostname + " Service temporarily unavailable, please try again later"}}.Bytes())
		} else if d.Entry != nil && d.Entry.Source == classify.SourceGreylist {
			s.refresh(ctx, set, client.Addr(), d.Entry, log)
		}
		attrs = append(attrs, "outcome", outcome, "to_backend", st.ToBackend, "to_client", st.ToClient)
		if err != nil {
			attrs = append(attrs, "err", err.Error())
		}
	case classify.Black: // only without a tarpit
		o := set.Black.Serve(ctx, c, d, log)
		attrs = append(attrs, "reason", d.Reason, "outcome", o.Outcome)
		for _, a := range o.Attrs {
			attrs = append(attrs, a)
		}
		if o.Err != nil {
			attrs = append(attrs, "err", o.Err.Error())
		}
	default:
		deps := &session.Deps{Greylist: set.Greylist, Dialer: s.Dialer, Whitelist: func(ctx context.Context, a netip.Addr) error {
			return s.whitelist(ctx, a, set.WhiteTTL)
		}}
		if s.Tarpit != nil {
			deps.Pregreet = func(ctx context.Context, a netip.Addr) error { return s.pregreet(ctx, a, set.PregreetTTL) }
		}
		s.trapDeps(deps, set.Traps)
		sess := session.New(c, &set.Session, deps, log)
		sess.Connected = start
		stop := context.AfterFunc(ctx, sess.Shutdown)
		r := sess.Run(ctx)
		stop()
		if r.Outcome == "pregreet" {
			// An early talker, now black: the tarpit answers what it sent.
			err := s.toTarpit(c, set, id, client, pregreetReason, "pregreet: talked before the banner", sess.Pending())
			if err == nil {
				owned = false
				return
			}
			attrs = append(attrs, "outcome", "tarpit-full", "err", err.Error())
			break
		}
		if r.Outcome == "trapped" {
			err := s.trappedToTarpit(c, set, id, client, r, sess.Pending())
			if err == nil {
				owned = false
				return
			}
			attrs = append(attrs, "outcome", "tarpit-full", "trap", r.Trap, "err", err.Error())
			break
		}
		attrs = append(attrs, "outcome", r.Outcome, "helo", r.Helo, "from", r.From,
			"rcpts", r.Rcpts, "deferred", r.Deferred, "tls", r.TLS, "pregreet", r.Pregreet)
		if r.Trap != "" {
			attrs = append(attrs, "trap", r.Trap)
		}
		if r.Outcome == "handoff" {
			attrs = append(attrs, "to_backend", r.Splice.ToBackend, "to_client", r.Splice.ToClient)
		}
		if r.Err != nil {
			attrs = append(attrs, "err", r.Err.Error())
		}
	}
	attrs = append(attrs, "duration", time.Since(start).Round(time.Millisecond))
	log.Info("verdict", attrs...)
	s.record(client.Addr(), attrValue(attrs, "path"), attrValue(attrs, "outcome"), 0)
	lingeringClose(c)
}

// lingeringClose closes the sending half and discards what the client
// still sends for a moment: closing a socket with unread input makes the
// kernel send RST, which can destroy the final reply (a 421 or 554) before
// the client reads it.
func lingeringClose(c net.Conn) {
	type closeWriter interface{ CloseWrite() error }
	cw, ok := c.(closeWriter)
	if !ok || cw.CloseWrite() != nil {
		return
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	io.Copy(io.Discard, io.LimitReader(c, 256<<10))
}

// toTarpit hands c to the tarpit. If the tarpit is full, the client gets a
// prompt 421 instead (the caller closes c).
func (s *Server) toTarpit(c net.Conn, set *Settings, id string, client netip.AddrPort, reason, rule string, pending []byte) error {
	err := s.Tarpit.Add(c, tarpit.Info{ID: id, Client: client, Reason: reason, Rule: rule}, pending)
	if err != nil {
		s.toTarpitRefused(c, set)
	} else {
		activeBlack.Inc() // until LogTarpit
	}
	return err
}

// toTarpitRefused answers a black host the tarpit has no room for.
func (s *Server) toTarpitRefused(c net.Conn, set *Settings) {
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	c.Write(smtp.Reply{Code: 421, Enhanced: "4.7.0", Lines: []string{set.Session.Hostname + " Too many connections, please try again later"}}.Bytes())
}

// pregreetReason is the listing reason of an early talker.
const pregreetReason = "pregreet: talked before the SMTP banner"

// pregreet blacklists a client that talked before the banner (postscreen's
// pregreet test): real MTAs wait for the greeting (RFC 5321 §3.1).
func (s *Server) pregreet(ctx context.Context, a netip.Addr, ttl time.Duration) error {
	now := time.Now()
	return countStoreErr("pregreet", s.Store.Put(ctx, store.Entry{
		Kind: store.Black, Key: store.AddrKey(a), Reason: pregreetReason, Source: "pregreet",
		Created: now, Updated: now, Expires: now.Add(ttl), Count: 1,
	}))
}

// LogTarpit writes the verdict line of a tarpit session.
func (s *Server) LogTarpit(v tarpit.Verdict) {
	attrs := []any{"conn", v.ID, "client", v.Client.Addr().String(), "path", "black", "rule", v.Rule,
		"reason", v.Reason, "outcome", v.Outcome, "held", v.Held.Round(time.Millisecond), "dripped", v.Dripped,
		"helo", v.Helo, "from", v.From, "rcpts", v.Rcpts, "messages", v.Messages, "data_bytes", v.DataBytes}
	if v.Err != nil {
		attrs = append(attrs, "err", v.Err.Error())
	}
	attrs = append(attrs, "duration", v.Held.Round(time.Millisecond))
	s.Log.Info("verdict", attrs...)
	s.record(v.Client.Addr(), "black", v.Outcome, v.Held.Seconds())
	activeBlack.Dec()
	metrics.TarpitHeld.Add(v.Held.Seconds())
	metrics.TarpitDripped.Add(uint64(max(v.Dripped, 0)))
}

// record passes a session's outcome to the history and the metrics.
func (s *Server) record(client netip.Addr, path, outcome string, tarpit float64) {
	metrics.Sessions.With(path, outcome).Inc()
	if s.History != nil {
		s.History(store.Event{Time: time.Now(), Client: client.Unmap().String(), Path: path, Outcome: outcome, Tarpit: tarpit})
	}
}

// attrValue returns the string value of key in a verdict's attributes.
func attrValue(attrs []any, key string) string {
	for i := 0; i+1 < len(attrs); i += 2 {
		if attrs[i] == key {
			if v, ok := attrs[i+1].(string); ok {
				return v
			}
		}
	}
	return ""
}

// whitelist records a host that passed greylisting.
func (s *Server) whitelist(ctx context.Context, a netip.Addr, ttl time.Duration) error {
	_, err := s.Store.Refresh(ctx, store.AddrKey(a), "passed greylisting", classify.SourceGreylist, time.Now(), ttl)
	return countStoreErr("whitelist", err)
}

// refreshEvery bounds store writes for busy white hosts: the lifetime is
// days, so refreshing more often than this gains nothing.
const refreshEvery = 10 * time.Minute

// refresh extends a greylist-earned white entry after a delivery session.
func (s *Server) refresh(ctx context.Context, set *Settings, a netip.Addr, e *store.Entry, log *slog.Logger) {
	if time.Since(e.Updated) < refreshEvery || e.Key != store.AddrKey(a) {
		return
	}
	if _, err := s.Store.Refresh(ctx, e.Key, e.Reason, e.Source, time.Now(), set.WhiteTTL); err != nil {
		metrics.StoreErrors.With("refresh").Inc()
		log.Warn("white refresh failed", "err", err)
	}
}

// TLSHolder keeps the current STARTTLS certificate; Load replaces it.
type TLSHolder struct {
	cert, key string
	cur       atomic.Pointer[tls.Config]
}

// NewTLSHolder loads cert and key; with both empty it holds nothing.
func NewTLSHolder(cert, key string) (*TLSHolder, error) {
	h := &TLSHolder{cert: cert, key: key}
	return h, h.Load()
}

// Load (re)reads the certificate files. On error the old one stays.
func (h *TLSHolder) Load() error {
	if h.cert == "" {
		return nil
	}
	c, err := tls.LoadX509KeyPair(h.cert, h.key)
	if err != nil {
		return fmt.Errorf("smtp.tls_cert/smtp.tls_key: %w", err)
	}
	h.cur.Store(&tls.Config{Certificates: []tls.Certificate{c}, MinVersion: tls.VersionTLS10})
	return nil
}

// Config returns the current TLS config, or nil.
func (h *TLSHolder) Config() *tls.Config {
	if h == nil {
		return nil
	}
	return h.cur.Load()
}
