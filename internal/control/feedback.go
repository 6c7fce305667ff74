package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/greypit/greypit/internal/feedback"
	"github.com/greypit/greypit/internal/maillog"
	"github.com/greypit/greypit/internal/store"
)

// FeedbackOps are the verdict and trap-candidate operations (`greypit
// feedback`, `greypit traps candidates|approve|reject`, and a `greypit
// follow` run beside a daemon). Local and Client implement them.
type FeedbackOps interface {
	Verdict(ctx context.Context, v feedback.Verdict) (feedback.Result, error)
	// Event applies one event read from a log; note says where
	// ("file:line").
	Event(ctx context.Context, e maillog.Event, note string) (feedback.Result, error)
	Candidates(ctx context.Context, fn func(store.Candidate) error) error
	Approve(ctx context.Context, addrs []string) (int, error)
	RejectCandidates(ctx context.Context, addrs []string) (int, error)
}

var (
	_ FeedbackOps = (*Local)(nil)
	_ FeedbackOps = (*Client)(nil)
)

var errNoFeedback = errors.New("feedback is not set up in this greypit")

func (l *Local) applier() (*feedback.Applier, error) {
	if l.Feedback == nil {
		return nil, errNoFeedback
	}
	return l.Feedback, nil
}

// Verdict implements FeedbackOps.
func (l *Local) Verdict(ctx context.Context, v feedback.Verdict) (feedback.Result, error) {
	a, err := l.applier()
	if err != nil {
		return feedback.Result{}, err
	}
	return a.Apply(ctx, v)
}

// Event implements FeedbackOps.
func (l *Local) Event(ctx context.Context, e maillog.Event, note string) (feedback.Result, error) {
	a, err := l.applier()
	if err != nil {
		return feedback.Result{}, err
	}
	return a.Event(ctx, e, note)
}

// Candidates implements FeedbackOps.
func (l *Local) Candidates(ctx context.Context, fn func(store.Candidate) error) error {
	return l.Store.Candidates(ctx, fn)
}

// Approve implements FeedbackOps.
func (l *Local) Approve(ctx context.Context, addrs []string) (int, error) {
	a, err := l.applier()
	if err != nil {
		return 0, err
	}
	return a.Approve(ctx, addrs, "cli")
}

// RejectCandidates implements FeedbackOps.
func (l *Local) RejectCandidates(ctx context.Context, addrs []string) (int, error) {
	a, err := l.applier()
	if err != nil {
		return 0, err
	}
	return a.Reject(ctx, addrs, "cli")
}

type eventRequest struct {
	Event maillog.Event `json:"event"`
	Note  string        `json:"note,omitempty"`
}

// feedbackOps are the socket side of FeedbackOps, keyed by operation.
var feedbackOps = map[string]func(ctx context.Context, req request, ops Ops, enc *json.Encoder) (int, error){
	"verdict": func(ctx context.Context, req request, ops Ops, enc *json.Encoder) (int, error) {
		var v feedback.Verdict
		return answer(req, ops, enc, &v, func(fo FeedbackOps) (any, error) { return fo.Verdict(ctx, v) })
	},
	"event": func(ctx context.Context, req request, ops Ops, enc *json.Encoder) (int, error) {
		var e eventRequest
		return answer(req, ops, enc, &e, func(fo FeedbackOps) (any, error) { return fo.Event(ctx, e.Event, e.Note) })
	},
	"candidates": func(ctx context.Context, req request, ops Ops, enc *json.Encoder) (int, error) {
		fo, ok := ops.(FeedbackOps)
		if !ok {
			return 0, errNoFeedback
		}
		n := 0
		err := fo.Candidates(ctx, func(c store.Candidate) error {
			n++
			x, err := json.Marshal(c)
			if err != nil {
				return err
			}
			return enc.Encode(response{X: x})
		})
		return n, err
	},
	"approve": func(ctx context.Context, req request, ops Ops, enc *json.Encoder) (int, error) {
		fo, ok := ops.(FeedbackOps)
		if !ok {
			return 0, errNoFeedback
		}
		return fo.Approve(ctx, req.Values)
	},
	"reject": func(ctx context.Context, req request, ops Ops, enc *json.Encoder) (int, error) {
		fo, ok := ops.(FeedbackOps)
		if !ok {
			return 0, errNoFeedback
		}
		return fo.RejectCandidates(ctx, req.Values)
	},
}

// answer decodes req.X into arg, runs op and sends its result as one X
// response.
func answer(req request, ops Ops, enc *json.Encoder, arg any, op func(FeedbackOps) (any, error)) (int, error) {
	fo, ok := ops.(FeedbackOps)
	if !ok {
		return 0, errNoFeedback
	}
	if err := json.Unmarshal(req.X, arg); err != nil {
		return 0, fmt.Errorf("bad %s request: %w", req.Op, err)
	}
	res, err := op(fo)
	if err != nil {
		return 0, err
	}
	x, err := json.Marshal(res)
	if err != nil {
		return 0, err
	}
	return 1, enc.Encode(response{X: x})
}

// call sends one FeedbackOps request and decodes the X answer into out.
func (c *Client) call(ctx context.Context, op string, arg, out any) error {
	x, err := json.Marshal(arg)
	if err != nil {
		return err
	}
	_, err = c.do(ctx, request{Op: op, X: x}, nil, func(r response) error {
		if r.X == nil {
			return errors.New("control: unexpected answer")
		}
		return json.Unmarshal(r.X, out)
	})
	return err
}

// Verdict implements FeedbackOps.
func (c *Client) Verdict(ctx context.Context, v feedback.Verdict) (feedback.Result, error) {
	var r feedback.Result
	err := c.call(ctx, "verdict", v, &r)
	return r, err
}

// Event implements FeedbackOps.
func (c *Client) Event(ctx context.Context, e maillog.Event, note string) (feedback.Result, error) {
	var r feedback.Result
	err := c.call(ctx, "event", eventRequest{e, note}, &r)
	return r, err
}

// Candidates implements FeedbackOps.
func (c *Client) Candidates(ctx context.Context, fn func(store.Candidate) error) error {
	_, err := c.do(ctx, request{Op: "candidates"}, nil, func(r response) error {
		var cand store.Candidate
		if err := json.Unmarshal(r.X, &cand); err != nil {
			return fmt.Errorf("control: unexpected answer: %w", err)
		}
		return fn(cand)
	})
	return err
}

// Approve implements FeedbackOps.
func (c *Client) Approve(ctx context.Context, addrs []string) (int, error) {
	return c.do(ctx, request{Op: "approve", Values: addrs}, nil, ignore)
}

// RejectCandidates implements FeedbackOps.
func (c *Client) RejectCandidates(ctx context.Context, addrs []string) (int, error) {
	return c.do(ctx, request{Op: "reject", Values: addrs}, nil, ignore)
}
