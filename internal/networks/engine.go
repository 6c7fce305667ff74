// Package networks owns network and AS reputation: every host that is made
// black (trap hit, pregreet, feedback, operator) also counts against its
// network (an IPv4 /24 or IPv6 /48 by default) and its AS, with a score
// that decays; a network with enough distinct black hosts and no good one
// is escalated to a black prefix entry of its own, and de-escalated when
// the evidence expires. It also turns the session history into the
// "McColo view" of where blocked traffic comes from.
//
// The evidence is the store's own black address entries, observed where
// they are written (Observe wraps the Store, so the packages that make
// hosts black need not know about networks) and re-read periodically, so
// entries written by another process or host count too. The engine adds
// no read-modify-write state of its own: scores are computed from the
// entries' times, and an escalation is one Put of a prefix entry, which a
// shared backend can do atomically.
package networks

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/greypit/greypit/internal/lists"
	"github.com/greypit/greypit/internal/store"
)

// Source marks the black prefix entries the engine makes; it only ever
// changes or deletes entries with this source.
const Source = "networks"

// Exempter tells whether a network must never be escalated, and why; the
// big-sender allowlist plugs in here (Engine.AddExempter).
type Exempter func(p netip.Prefix) (why string, exempt bool)

// Config configures an Engine.
type Config struct {
	PrefixV4, PrefixV6 int           // network sizes
	EscalateHosts      int           // distinct black hosts that escalate a network; 0 never
	EscalateTTL        time.Duration // longest an escalation lasts between evaluations
	HalfLife           time.Duration // a verdict's weight in a score halves this often
	NeverPrefixes      []netip.Prefix
	NeverASNs          []uint32
	ASN                ASNDB              // nil: no AS attribution
	Allow              func() *lists.List // the current allow list; nil: none
	Now                func() time.Time   // nil: time.Now
}

// Engine keeps an index of black and white hosts by network and decides
// escalations. All methods are safe for concurrent use.
type Engine struct {
	cfg Config
	st  store.Store // the store itself, not the Observe wrapper
	log *slog.Logger

	evalMu    sync.Mutex // one evaluate at a time: judging and writing its result are one step
	mu        sync.Mutex // guards the index below
	nets      map[netip.Prefix]*netState
	whitePfx  []netip.Prefix // white prefix entries (operator's)
	escalated map[netip.Prefix]store.Entry
	exempters []Exempter
	whitesAt  time.Time // last time load read the white entries
}

type netState struct {
	black map[netip.Addr]store.Entry
	white map[netip.Addr]time.Time // expiry; zero never
}

// New returns an engine on st; call Rebuild before use.
func New(cfg Config, st store.Store, log *slog.Logger) *Engine {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Engine{cfg: cfg, st: st, log: log, nets: map[netip.Prefix]*netState{}, escalated: map[netip.Prefix]store.Entry{}}
}

// AddExempter adds a source of never-escalate networks. x runs with the
// engine's lock held and must not call back into the engine.
func (e *Engine) AddExempter(x Exempter) {
	e.mu.Lock()
	e.exempters = append(e.exempters, x)
	e.mu.Unlock()
}

func (e *Engine) now() time.Time {
	if e.cfg.Now != nil {
		return e.cfg.Now()
	}
	return time.Now()
}

// Network returns the network a counts against.
func (e *Engine) Network(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	bits := e.cfg.PrefixV6
	if a.Is4() {
		bits = e.cfg.PrefixV4
	}
	p, _ := a.Prefix(bits)
	return p
}

// hostAddr returns the address of a white or black entry keyed by one
// address, or false for a prefix entry.
func hostAddr(key string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(key)
	return a, err == nil
}

func (e *Engine) state(p netip.Prefix) *netState {
	n := e.nets[p]
	if n == nil {
		n = &netState{black: map[netip.Addr]store.Entry{}, white: map[netip.Addr]time.Time{}}
		e.nets[p] = n
	}
	return n
}

// add records one entry in the index; e.mu is held.
func (e *Engine) add(en store.Entry) {
	switch en.Kind {
	case store.Black:
		if a, ok := hostAddr(en.Key); ok {
			e.state(e.Network(a)).black[a] = en
		} else if p, err := netip.ParsePrefix(en.Key); err == nil && en.Source == Source {
			e.escalated[p] = en
		}
	case store.White:
		if a, ok := hostAddr(en.Key); ok {
			e.state(e.Network(a)).white[a] = en.Expires
		} else if p, err := netip.ParsePrefix(en.Key); err == nil {
			e.whitePfx = append(e.whitePfx, p)
		}
	}
}

// Rebuild re-reads the black entries (and, every whiteEvery, the white
// ones) from the store, then re-evaluates every network, escalating and
// de-escalating as needed. It returns how many escalations it made and
// removed.
func (e *Engine) Rebuild(ctx context.Context) (up, down int, err error) {
	e.mu.Lock()
	whites := e.whitesAt.IsZero() || e.now().Sub(e.whitesAt) >= whiteEvery
	e.mu.Unlock()
	if err := e.load(ctx, whites); err != nil {
		return 0, 0, err
	}
	e.mu.Lock()
	var todo []netip.Prefix
	for p := range e.nets {
		todo = append(todo, p)
	}
	for p := range e.escalated {
		if _, ok := e.nets[p]; !ok {
			todo = append(todo, p)
		}
	}
	e.mu.Unlock()
	var errs []error
	for _, p := range todo {
		u, d, err := e.evaluate(ctx, p)
		up, down = up+u, down+d
		if err != nil {
			errs = append(errs, err)
		}
	}
	return up, down, errors.Join(errs...)
}

// Load reads the index from the store without acting on it, for `db why`.
func (e *Engine) Load(ctx context.Context) error { return e.load(ctx, true) }

// whiteEvery is how often Rebuild re-reads the white entries too. They
// are many (every host that passed greylisting), and in one process every
// change reaches the index through Observe anyway, expiry included; the
// re-read is for entries written elsewhere.
const whiteEvery = time.Hour

// load replaces the index with the store's black entries, and its white
// entries too if whites is set. e.mu is held during the scan, so an
// Observe in the meantime is not lost.
func (e *Engine) load(ctx context.Context, whites bool) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	kinds := []store.Kind{store.Black}
	if whites {
		e.nets, e.whitePfx = map[netip.Prefix]*netState{}, nil
		kinds = append(kinds, store.White)
		e.whitesAt = e.now()
	} else {
		now := e.now()
		for p, n := range e.nets {
			n.black = map[netip.Addr]store.Entry{}
			for a, exp := range n.white {
				if !exp.IsZero() && !now.Before(exp) {
					delete(n.white, a)
				}
			}
			if len(n.white) == 0 {
				delete(e.nets, p)
			}
		}
	}
	e.escalated = map[netip.Prefix]store.Entry{}
	for _, k := range kinds {
		if err := e.st.List(ctx, k, func(en store.Entry) error { e.add(en); return nil }); err != nil {
			return fmt.Errorf("networks: reading %s entries: %w", k, err)
		}
	}
	return nil
}

// Observe notes an entry that was just stored and re-evaluates its
// network at once.
func (e *Engine) Observe(ctx context.Context, en store.Entry) error {
	a, ok := hostAddr(en.Key)
	if en.Kind != store.Black && en.Kind != store.White {
		return nil
	}
	e.mu.Lock()
	e.add(en)
	e.mu.Unlock()
	if !ok {
		return nil // a prefix entry; the next Rebuild weighs it
	}
	_, _, err := e.evaluate(ctx, e.Network(a))
	return err
}

// Forget notes a deleted entry.
func (e *Engine) Forget(ctx context.Context, k store.Kind, key string) error {
	a, ok := hostAddr(key)
	if !ok {
		if p, err := netip.ParsePrefix(key); err == nil {
			e.mu.Lock()
			if k == store.Black {
				delete(e.escalated, p)
			} else {
				e.whitePfx = slices.DeleteFunc(e.whitePfx, func(w netip.Prefix) bool { return w == p })
			}
			e.mu.Unlock()
		}
		return nil
	}
	p := e.Network(a)
	e.mu.Lock()
	if n := e.nets[p]; n != nil {
		switch k {
		case store.Black:
			delete(n.black, a)
		case store.White:
			delete(n.white, a)
		}
	}
	e.mu.Unlock()
	_, _, err := e.evaluate(ctx, p)
	return err
}

// Verdict is the engine's judgement of one network.
type Verdict struct {
	Network   netip.Prefix  `json:"network"`
	AS        *AS           `json:"as,omitempty"`
	Hosts     []store.Entry `json:"hosts"` // live black host entries, newest first
	Score     float64       `json:"score"` // decayed count of black verdicts
	Threshold int           `json:"threshold"`
	// Blocker says why the network is not escalated though it could be:
	// a white or allow-listed host, or a never-escalate rule.
	Blocker   string       `json:"blocker,omitempty"`
	Escalate  bool         `json:"escalate"`
	Escalated *store.Entry `json:"escalated,omitempty"` // the current escalation entry
	// ASHosts and ASScore are the black hosts and score of the whole AS
	// (Explain only).
	ASHosts int     `json:"as_hosts,omitempty"`
	ASScore float64 `json:"as_score,omitempty"`
}

// judge decides network p at now; e.mu is held.
func (e *Engine) judge(p netip.Prefix, now time.Time) Verdict {
	v := Verdict{Network: p, Threshold: e.cfg.EscalateHosts}
	if as, ok := e.lookupAS(p.Addr()); ok {
		v.AS = &as
	}
	// Even an expired escalation counts here, so evaluate deletes it.
	if x, ok := e.escalated[p]; ok {
		v.Escalated = &x
	}
	n := e.nets[p]
	if n != nil {
		for _, h := range n.black {
			if h.Live(now) && h.Source != Source {
				v.Hosts = append(v.Hosts, h)
				v.Score += e.weight(h, now)
			}
		}
	}
	slices.SortFunc(v.Hosts, func(a, b store.Entry) int {
		return cmp.Or(b.Updated.Compare(a.Updated), cmp.Compare(a.Key, b.Key))
	})
	v.Blocker = e.blocker(p, n, v.AS, v.Hosts, now)
	v.Escalate = e.cfg.EscalateHosts > 0 && len(v.Hosts) >= e.cfg.EscalateHosts && v.Blocker == ""
	return v
}

// weight is one host's contribution to a score: its hits, halved for
// every half-life since the last one.
func (e *Engine) weight(h store.Entry, now time.Time) float64 {
	hits := float64(max(h.Count, 1))
	if e.cfg.HalfLife <= 0 {
		return hits
	}
	return hits * math.Exp2(-float64(now.Sub(h.Updated))/float64(e.cfg.HalfLife))
}

func (e *Engine) lookupAS(a netip.Addr) (AS, bool) {
	if e.cfg.ASN == nil {
		return AS{}, false
	}
	return e.cfg.ASN.Lookup(a)
}

// blocker returns why p must not escalate, or "".
func (e *Engine) blocker(p netip.Prefix, n *netState, as *AS, hosts []store.Entry, now time.Time) string {
	if n != nil {
		var whites []netip.Addr
		for a, exp := range n.white {
			if exp.IsZero() || now.Before(exp) {
				whites = append(whites, a)
			}
		}
		if len(whites) > 0 {
			slices.SortFunc(whites, netip.Addr.Compare)
			return "white host " + whites[0].String() + " in the network"
		}
	}
	for _, w := range e.whitePfx {
		if w.Overlaps(p) {
			return "white entry " + w.String() + " overlaps the network"
		}
	}
	if e.cfg.Allow != nil {
		if src, ok := e.cfg.Allow().Overlapping(p); ok {
			return fmt.Sprintf("lists.allow %s:%d (%s) overlaps the network", src.File, src.Line, src.Text)
		}
	}
	for _, np := range e.cfg.NeverPrefixes {
		if np.Overlaps(p) {
			return "networks.never_escalate " + np.String()
		}
	}
	// The network's AS, and each black host's: a network split between
	// ASes is exempt if any of them is.
	if len(e.cfg.NeverASNs) > 0 {
		check := []AS{}
		if as != nil {
			check = append(check, *as)
		}
		for _, h := range hosts {
			if a, ok := hostAddr(h.Key); ok {
				if x, ok := e.lookupAS(a); ok {
					check = append(check, x)
				}
			}
		}
		for _, x := range check {
			if slices.Contains(e.cfg.NeverASNs, x.Number) {
				return "networks.never_escalate AS" + strconv.FormatUint(uint64(x.Number), 10)
			}
		}
	}
	for _, x := range e.exempters {
		if why, ok := x(p); ok {
			return why
		}
	}
	return ""
}

// evaluate judges p and writes the result to the store: a new or renewed
// escalation, or its removal.
func (e *Engine) evaluate(ctx context.Context, p netip.Prefix) (up, down int, err error) {
	e.evalMu.Lock()
	defer e.evalMu.Unlock()
	now := e.now().Round(0)
	e.mu.Lock()
	v := e.judge(p, now)
	e.mu.Unlock()
	key := store.PrefixKey(p)
	if !v.Escalate {
		if v.Escalated == nil {
			return 0, 0, nil
		}
		if _, err := e.st.Delete(ctx, store.Black, key); err != nil {
			return 0, 0, fmt.Errorf("networks: de-escalating %s: %w", key, err)
		}
		e.mu.Lock()
		delete(e.escalated, p)
		e.mu.Unlock()
		e.log.Info("network de-escalated", "network", key, "black_hosts", len(v.Hosts), "blocker", v.Blocker)
		return 0, 1, nil
	}
	// Never overwrite an operator's entry for the same prefix.
	if v.Escalated == nil {
		if old, err := e.st.Get(ctx, store.Black, key); err == nil && old.Source != Source {
			return 0, 0, nil
		}
	}
	en := escalation(key, v, now, e.cfg.EscalateTTL)
	if v.Escalated != nil && sameEscalation(*v.Escalated, en) {
		return 0, 0, nil
	}
	if err := e.st.Put(ctx, en); err != nil {
		return 0, 0, fmt.Errorf("networks: escalating %s: %w", key, err)
	}
	e.mu.Lock()
	e.escalated[p] = en
	e.mu.Unlock()
	if v.Escalated == nil {
		e.log.Info("network escalated", "network", key, "black_hosts", len(v.Hosts), "as", asString(v.AS), "expires", en.Expires)
		return 1, 0, nil
	}
	return 0, 0, nil
}

// escalation is the black prefix entry for verdict v. It lasts until
// fewer than the threshold of its hosts are still black, and at most ttl.
func escalation(key string, v Verdict, now time.Time, ttl time.Duration) store.Entry {
	exps := make([]time.Time, 0, len(v.Hosts))
	for _, h := range v.Hosts {
		exps = append(exps, h.Expires)
	}
	// Latest first, zero (never) before all.
	slices.SortFunc(exps, func(a, b time.Time) int {
		switch {
		case a.IsZero() && b.IsZero():
			return 0
		case a.IsZero():
			return -1
		case b.IsZero():
			return 1
		}
		return b.Compare(a)
	})
	exp := now.Add(ttl)
	if t := exps[v.Threshold-1]; !t.IsZero() && t.Before(exp) {
		exp = t
	}
	created := now
	if v.Escalated != nil {
		created = v.Escalated.Created
	}
	return store.Entry{
		Kind: store.Black, Key: key, Source: Source,
		Reason:  fmt.Sprintf("network %s escalated: %d black hosts", key, len(v.Hosts)),
		Created: created, Updated: now, Expires: exp, Count: int64(len(v.Hosts)),
	}
}

// sameEscalation reports whether rewriting en would change nothing but
// its Updated time, sparing a write per evaluation.
func sameEscalation(old, en store.Entry) bool {
	return old.Count == en.Count && old.Reason == en.Reason && old.Expires.Equal(en.Expires)
}

func asString(as *AS) string {
	if as == nil {
		return ""
	}
	return as.String()
}

// Explain judges the network of a for `greypit db why`.
func (e *Engine) Explain(a netip.Addr) Verdict {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	v := e.judge(e.Network(a), now)
	if v.Escalated != nil && !v.Escalated.Live(now) {
		v.Escalated = nil
	}
	if v.AS != nil {
		v.ASScore, v.ASHosts = e.asScore(v.AS.Number, now)
	}
	return v
}

// asScore returns the decayed black score of AS as, summed over all its
// black hosts, and how many there are; e.mu is held.
func (e *Engine) asScore(as uint32, now time.Time) (score float64, hosts int) {
	for _, n := range e.nets {
		for a, h := range n.black {
			if !h.Live(now) || h.Source == Source {
				continue
			}
			if x, ok := e.lookupAS(a); ok && x.Number == as {
				score += e.weight(h, now)
				hosts++
			}
		}
	}
	return score, hosts
}
