// Package control owns the operator's operations on greypit's state (the
// `greypit db` verbs) and the local socket that carries them to a running
// daemon.
//
// An embedded store file has one writer, so while `greypit serve` runs the
// CLI cannot open it; it sends its request over a Unix socket instead. Both
// routes run the same Ops code, so `greypit db` behaves the same whether
// the daemon runs or not.
package control

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/greypit/greypit/internal/classify"
	"github.com/greypit/greypit/internal/feedback"
	"github.com/greypit/greypit/internal/greylist"
	"github.com/greypit/greypit/internal/networks"
	"github.com/greypit/greypit/internal/store"
)

// AddRequest describes `greypit db add`.
type AddRequest struct {
	Kind   store.Kind    `json:"type"`
	Values []string      `json:"values"`
	TTL    time.Duration `json:"ttl,omitempty"` // zero: the kind's default
	Reason string        `json:"reason,omitempty"`
}

// Why is the answer to `greypit db why`.
type Why struct {
	Address  string            `json:"address"`
	Decision classify.Decision `json:"decision"`
	// Grey lists the pending or passed greylist tuples of the address's
	// prefix, so "why is this mail still deferred?" has an answer too.
	Grey []store.Entry `json:"grey,omitempty"`
	// Network is the reputation of the address's network: its black
	// hosts and score, and whether and why it is (not) escalated.
	Network *networks.Verdict `json:"network,omitempty"`
}

// Ops are the operator's operations. Local runs them on a store; Client
// sends them to a daemon.
type Ops interface {
	List(ctx context.Context, k store.Kind, fn func(store.Entry) error) error
	Add(ctx context.Context, r AddRequest) (int, error)
	Del(ctx context.Context, k store.Kind, values []string) (int, error)
	Why(ctx context.Context, addr string) (Why, error)
	Dump(ctx context.Context, w io.Writer) error
	Load(ctx context.Context, r io.Reader) (int, error)
	// TrapHits lists the spamtrap hits kept (traps.go).
	TrapHits(ctx context.Context, fn func(store.TrapHit) error) error
	// Events calls fn for each session event since since, oldest first.
	Events(ctx context.Context, since time.Time, fn func(store.Event) error) error
}

// Local runs Ops directly on a store.
type Local struct {
	Store      store.Store
	Classifier *classify.Classifier
	// Default lifetimes of entries added without -ttl; zero means never.
	WhiteTTL, BlackTTL, TrapTTL time.Duration
	// PrefixV4/V6 group addresses into greylist prefixes for Why.
	PrefixV4, PrefixV6 int
	Now                func() time.Time
	// Networks, if set, explains network reputation in Why.
	Networks *networks.Engine
	// Feedback applies verdicts and trap candidates (feedback.go); nil
	// refuses them.
	Feedback *feedback.Applier
}

func (l *Local) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

// List implements Ops.
func (l *Local) List(ctx context.Context, k store.Kind, fn func(store.Entry) error) error {
	return l.Store.List(ctx, k, fn)
}

// CanonicalKey validates an operator's value for kind k and returns the
// store key.
func CanonicalKey(k store.Kind, v string) (string, error) {
	v = strings.TrimSpace(v)
	switch k {
	case store.White, store.Black:
		return store.ParseAddrKey(v)
	case store.Trap:
		return store.ParseTrapKey(v)
	case store.Grey:
		if v == "" {
			return "", errors.New("empty greylist key")
		}
		return v, nil
	}
	return "", fmt.Errorf("unknown entry type %q", k)
}

// Add implements Ops. All values are checked before any is stored.
func (l *Local) Add(ctx context.Context, r AddRequest) (int, error) {
	if r.Kind == store.Grey {
		return 0, errors.New("grey entries are made by greylisting, not by hand; add the host as white instead")
	}
	if len(r.Values) == 0 {
		return 0, errors.New("nothing to add")
	}
	keys := make([]string, len(r.Values))
	for i, v := range r.Values {
		k, err := CanonicalKey(r.Kind, v)
		if err != nil {
			return 0, err
		}
		keys[i] = k
	}
	ttl := r.TTL
	if ttl == 0 {
		ttl = map[store.Kind]time.Duration{store.White: l.WhiteTTL, store.Black: l.BlackTTL, store.Trap: l.TrapTTL}[r.Kind]
	}
	now := l.now()
	for _, k := range keys {
		e := store.Entry{Kind: r.Kind, Key: k, Reason: r.Reason, Source: "db", Created: now, Updated: now}
		if ttl > 0 {
			e.Expires = now.Add(ttl)
		}
		if err := l.Store.Put(ctx, e); err != nil {
			return 0, fmt.Errorf("add %s %s: %w", r.Kind, k, err)
		}
	}
	return len(keys), nil
}

// Del implements Ops; it reports how many entries existed.
func (l *Local) Del(ctx context.Context, k store.Kind, values []string) (int, error) {
	n := 0
	for _, v := range values {
		key, err := CanonicalKey(k, v)
		if err != nil {
			return n, err
		}
		ok, err := l.Store.Delete(ctx, k, key)
		if err != nil {
			return n, fmt.Errorf("del %s %s: %w", k, key, err)
		}
		if ok {
			n++
		}
	}
	return n, nil
}

// Why implements Ops.
func (l *Local) Why(ctx context.Context, addr string) (Why, error) {
	a, err := netip.ParseAddr(strings.TrimSpace(addr))
	if err != nil {
		return Why{}, fmt.Errorf("%q is not an IP address", addr)
	}
	a = a.Unmap()
	d, err := l.Classifier.Classify(ctx, a)
	if err != nil {
		return Why{}, err
	}
	w := Why{Address: a.String(), Decision: d}
	if l.Networks != nil {
		v := l.Networks.Explain(a)
		w.Network = &v
	}
	if d.Path == classify.Grey {
		pfx := greylist.ClientPrefix(a, l.PrefixV4, l.PrefixV6).String()
		err := l.Store.List(ctx, store.Grey, func(e store.Entry) error {
			if strings.HasPrefix(e.Key, pfx+" ") {
				w.Grey = append(w.Grey, e)
			}
			return nil
		})
		if err != nil {
			return w, err
		}
	}
	return w, nil
}

// Dump implements Ops.
func (l *Local) Dump(ctx context.Context, w io.Writer) error { return store.Dump(ctx, l.Store, w) }

// Events implements Ops.
func (l *Local) Events(ctx context.Context, since time.Time, fn func(store.Event) error) error {
	return l.Store.Events(ctx, since, time.Time{}, fn)
}

// Load implements Ops.
func (l *Local) Load(ctx context.Context, r io.Reader) (int, error) {
	return store.Load(ctx, l.Store, r)
}
