package control

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/greypit/greypit/internal/store"
)

// TrapHits implements Ops.
func (l *Local) TrapHits(ctx context.Context, fn func(store.TrapHit) error) error {
	return l.Store.ListTrapHits(ctx, fn)
}

// TrapHits implements Ops.
func (c *Client) TrapHits(ctx context.Context, fn func(store.TrapHit) error) error {
	_, err := c.do(ctx, request{Op: "trap-hits"}, nil, func(r response) error {
		if r.Hit == nil {
			return errors.New("control: unexpected answer")
		}
		return fn(*r.Hit)
	})
	return err
}

func dispatchTrapHits(ctx context.Context, ops Ops, enc *json.Encoder) (int, error) {
	n := 0
	err := ops.TrapHits(ctx, func(h store.TrapHit) error {
		n++
		return enc.Encode(response{Hit: &h})
	})
	return n, err
}
