package networks

import (
	"context"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/greypit/greypit/internal/store"
)

// Observed is a Store that tells the engine about every white and black
// entry written or deleted through it, so each verdict that makes a host
// black counts against its network whichever package made it.
type Observed struct {
	store.Store
	Engine *Engine
	// Trap, if set, is called for every black entry whose source names a
	// spamtrap: the session history counts trap hits from it.
	Trap func(client netip.Addr, e store.Entry)
	Log  *slog.Logger
}

// Observe wraps st.
func Observe(st store.Store, e *Engine, log *slog.Logger) *Observed {
	return &Observed{Store: st, Engine: e, Log: log}
}

// Put implements store.Store.
func (o *Observed) Put(ctx context.Context, e store.Entry) error {
	if err := o.Store.Put(ctx, e); err != nil {
		return err
	}
	o.note(ctx, e)
	return nil
}

// Refresh implements store.Store.
func (o *Observed) Refresh(ctx context.Context, key, reason, source string, now time.Time, ttl time.Duration) (store.Entry, error) {
	e, err := o.Store.Refresh(ctx, key, reason, source, now, ttl)
	if err == nil {
		o.note(ctx, e)
	}
	return e, err
}

// Delete implements store.Store.
func (o *Observed) Delete(ctx context.Context, k store.Kind, key string) (bool, error) {
	ok, err := o.Store.Delete(ctx, k, key)
	if err == nil && ok && o.Engine != nil {
		if err := o.Engine.Forget(ctx, k, key); err != nil {
			o.logErr(err)
		}
	}
	return ok, err
}

// note passes a stored entry on. The entry is stored already: an error
// here is logged, not returned, as the caller's write succeeded.
func (o *Observed) note(ctx context.Context, e store.Entry) {
	if e.Kind != store.Black && e.Kind != store.White {
		return
	}
	if o.Engine != nil {
		if err := o.Engine.Observe(ctx, e); err != nil {
			o.logErr(err)
		}
	}
	if o.Trap != nil && e.Kind == store.Black && strings.Contains(strings.ToLower(e.Source), "trap") {
		if a, ok := hostAddr(e.Key); ok {
			o.Trap(a, e)
		}
	}
}

func (o *Observed) logErr(err error) {
	if o.Log != nil {
		o.Log.Error("network evaluation failed", "err", err)
	}
}
