package metrics

import (
	"context"
	"sync"
	"time"
)

// Sample is a reading of the counters the dashboard charts. Counts are
// totals since the daemon started; a chart takes differences between
// samples for rates.
type Sample struct {
	Time time.Time `json:"t"`
	// Sessions are the ended sessions by path (white, grey, black, none).
	Sessions map[string]uint64 `json:"sessions"`
	// Greylist are the greylist checks by outcome (new, early, pass).
	Greylist      map[string]uint64 `json:"greylist"`
	GreyPassed    uint64            `json:"grey_passed"` // retries that passed (pass-delay observations)
	TarpitSeconds float64           `json:"tarpit_seconds"`
	TarpitBytes   uint64            `json:"tarpit_bytes"`
	TrapHits      uint64            `json:"trap_hits"`
}

// Take reads Default's counters now.
func Take(now time.Time) Sample {
	s := Sample{
		Time:          now,
		Sessions:      map[string]uint64{},
		Greylist:      map[string]uint64{},
		GreyPassed:    GreylistDelay.Count(),
		TarpitSeconds: TarpitHeld.Value(),
		TarpitBytes:   TarpitDripped.Value(),
		TrapHits:      TrapHits.Value(),
	}
	Sessions.Each(func(l Labels, c *Counter) { s.Sessions[l[0]] += c.Value() })
	Greylist.Each(func(l Labels, c *Counter) { s.Greylist[l[0]] += c.Value() })
	return s
}

// History keeps the last samples taken at a fixed interval in a ring, so
// the dashboard has charts over time without a Prometheus server.
type History struct {
	every time.Duration

	mu   sync.Mutex
	ring []Sample
	next int // where the next sample goes
	full bool
}

// NewHistory keeps size samples taken every interval.
func NewHistory(every time.Duration, size int) *History {
	return &History{every: every, ring: make([]Sample, max(size, 1))}
}

// Every is the sampling interval.
func (h *History) Every() time.Duration { return h.every }

// Add stores s, replacing the oldest sample when the ring is full.
func (h *History) Add(s Sample) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ring[h.next] = s
	h.next++
	if h.next == len(h.ring) {
		h.next, h.full = 0, true
	}
}

// Samples returns the samples kept, oldest first.
func (h *History) Samples() []Sample {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.full {
		return append([]Sample(nil), h.ring[:h.next]...)
	}
	return append(append([]Sample(nil), h.ring[h.next:]...), h.ring[:h.next]...)
}

// Run samples Default now and at every interval until ctx is done.
func (h *History) Run(ctx context.Context) {
	h.Add(Take(time.Now()))
	t := time.NewTicker(h.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			h.Add(Take(now))
		}
	}
}
