package control

import (
	"context"
	"fmt"

	"github.com/greypit/greypit/internal/classify"
	"github.com/greypit/greypit/internal/store"
)

// Released is the answer of Release.
type Released struct {
	// Deleted are the keys of the black entries removed: the host's own
	// and any covering prefix (an escalated network) that decided.
	Deleted []string `json:"deleted"`
	// White is set when a white entry was added for the host.
	White bool `json:"white,omitempty"`
	// Why is the host's state afterwards; a host still black is held by
	// something a deletion cannot change (a block list, a DNSBL).
	Why Why `json:"why"`
}

// maxRelease bounds the deletions of one release: a host is seldom
// covered by more than its own entry and its network's.
const maxRelease = 8

// Release takes a host off the black path with the operator's own verbs
// (`db why`, `db del -type black`, `db add -type white`): it deletes the
// black store entries that decide for addr, one after the other as the
// classifier names them, and with white also whitelists the address, so
// a block list no longer decides either (classify's rule 3).
func Release(ctx context.Context, ops Ops, addr string, white bool, reason string) (Released, error) {
	r := Released{Deleted: []string{}}
	for i := 0; ; i++ {
		w, err := ops.Why(ctx, addr)
		if err != nil {
			return r, err
		}
		r.Why = w
		e := w.Decision.Entry
		if w.Decision.Path != classify.Black || e == nil || e.Kind != store.Black || i == maxRelease {
			break
		}
		n, err := ops.Del(ctx, store.Black, []string{e.Key})
		if err != nil {
			return r, fmt.Errorf("release %s: %w", addr, err)
		}
		if n == 0 {
			break // gone already (expired meanwhile): the next Why would say the same
		}
		r.Deleted = append(r.Deleted, e.Key)
	}
	if !white {
		return r, nil
	}
	if reason == "" {
		reason = "released"
	}
	if _, err := ops.Add(ctx, AddRequest{Kind: store.White, Values: []string{r.Why.Address}, Reason: reason}); err != nil {
		return r, fmt.Errorf("release %s: %w", addr, err)
	}
	r.White = true
	w, err := ops.Why(ctx, addr)
	r.Why = w
	return r, err
}
