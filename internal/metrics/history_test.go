package metrics

import (
	"context"
	"testing"
	"time"
)

func TestHistoryRing(t *testing.T) {
	h := NewHistory(time.Minute, 3)
	if len(h.Samples()) != 0 {
		t.Fatal("new history not empty")
	}
	t0 := time.Unix(1000, 0)
	for i := range 5 {
		h.Add(Sample{Time: t0.Add(time.Duration(i) * time.Minute), TrapHits: uint64(i)})
		got := h.Samples()
		if want := min(i+1, 3); len(got) != want {
			t.Fatalf("after %d adds: %d samples, want %d", i+1, len(got), want)
		}
		for j, s := range got { // oldest first, the newest last
			if want := uint64(i - len(got) + 1 + j); s.TrapHits != want {
				t.Fatalf("after %d adds: sample %d is %d, want %d", i+1, j, s.TrapHits, want)
			}
		}
	}
	// The copy is the caller's.
	got := h.Samples()
	got[0].TrapHits = 99
	if h.Samples()[0].TrapHits == 99 {
		t.Error("Samples shares the ring")
	}
}

func TestHistoryRunAndTake(t *testing.T) {
	before := Take(time.Now())
	Sessions.With("white", "spliced").Add(2)
	Sessions.With("white", "backend-error").Inc()
	Greylist.With("new").Inc()
	TarpitDripped.Add(7)
	h := NewHistory(10*time.Millisecond, 100)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Run(ctx); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for len(h.Samples()) < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	s := h.Samples()
	if len(s) < 3 {
		t.Fatalf("%d samples in 10s at 10ms", len(s))
	}
	last := s[len(s)-1]
	if last.Sessions["white"]-before.Sessions["white"] != 3 || last.Greylist["new"]-before.Greylist["new"] != 1 || last.TarpitBytes-before.TarpitBytes != 7 {
		t.Errorf("sample %+v, before %+v", last, before)
	}
	if !s[0].Time.Before(last.Time) {
		t.Errorf("times not ascending: %v %v", s[0].Time, last.Time)
	}
}

func TestBuckets(t *testing.T) {
	r := &Registry{}
	h := r.NewHistogram("t_seconds", "T.", []float64{1, 10})
	for _, v := range []float64{0.5, 1, 5, 50, 500} {
		h.Observe(v)
	}
	up, counts, n, sum := h.Buckets()
	if len(up) != 2 || counts[0] != 2 || counts[1] != 1 || n != 5 || sum != 556.5 {
		t.Errorf("buckets %v %v %d %v", up, counts, n, sum)
	}
}
