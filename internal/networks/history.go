package networks

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/greypit/greypit/internal/store"
)

// Recorder writes session events to the store in batches: one transaction
// (and fsync) per second, not per session. Events still queued when the
// process dies are lost; they are statistics, not mail.
type Recorder struct {
	log       store.EventLog
	retention time.Duration
	slog      *slog.Logger

	mu      sync.Mutex
	buf     []store.Event
	closed  bool
	dropped int
	kick    chan struct{}
	done    chan struct{}
}

// Recorder bounds.
const (
	flushEvery  = time.Second
	flushAt     = 512    // events that trigger an early flush
	maxBuffered = 100000 // above it events are dropped (and counted) rather than grow memory
	expireEvery = time.Hour
)

// NewRecorder starts a recorder keeping events for retention. Close
// flushes it.
func NewRecorder(el store.EventLog, retention time.Duration, log *slog.Logger) *Recorder {
	r := &Recorder{log: el, retention: retention, slog: log, kick: make(chan struct{}, 1), done: make(chan struct{})}
	go r.run()
	return r
}

// Record queues one event; it never blocks a session.
func (r *Recorder) Record(ev store.Event) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || len(r.buf) >= maxBuffered {
		r.dropped++
		return
	}
	r.buf = append(r.buf, ev)
	if len(r.buf) == flushAt {
		select {
		case r.kick <- struct{}{}:
		default:
		}
	}
}

func (r *Recorder) run() {
	defer close(r.done)
	t := time.NewTicker(flushEvery)
	defer t.Stop()
	lastExpire := time.Time{}
	for {
		var stop bool
		select {
		case <-t.C:
		case _, ok := <-r.kick:
			stop = !ok
		}
		r.flush()
		if now := time.Now(); now.Sub(lastExpire) >= expireEvery && r.retention > 0 {
			lastExpire = now
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			n, err := r.log.ExpireEvents(ctx, now.Add(-r.retention))
			cancel()
			if err != nil {
				r.slog.Warn("session history expiry failed", "err", err)
			} else if n > 0 {
				r.slog.Debug("session history expired", "events", n)
			}
		}
		if stop {
			return
		}
	}
}

func (r *Recorder) flush() {
	r.mu.Lock()
	evs, dropped := r.buf, r.dropped
	r.buf, r.dropped = nil, 0
	r.mu.Unlock()
	if dropped > 0 {
		r.slog.Warn("session history: events dropped", "events", dropped)
	}
	if len(evs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.log.AddEvents(ctx, evs); err != nil {
		r.slog.Warn("session history write failed", "events", len(evs), "err", err)
	}
}

// Close writes what is queued and stops the recorder.
func (r *Recorder) Close() {
	if r == nil {
		return
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.closed = true
	close(r.kick)
	r.mu.Unlock()
	<-r.done
}
