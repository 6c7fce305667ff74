package main

import (
	"fmt"
	"math"
	"math/bits"
	"time"
)

// Hist is a log-linear histogram of non-negative integers (microseconds
// here): values below 64 have a bucket each, larger ones fall in one of 32
// buckets per power of two, so a bucket is at most 1/32 (3.1 %) of its
// lower bound wide. Sparse, so it merges and travels as JSON cheaply.
type Hist map[int]uint64

func histIndex(v uint64) int {
	if v < 64 {
		return int(v)
	}
	shift := bits.Len64(v) - 6 // v>>shift is in [32, 63]
	return 32*shift + int(v>>shift)
}

// histLow is the smallest value that falls in bucket i.
func histLow(i int) uint64 {
	if i < 64 {
		return uint64(i)
	}
	shift := i/32 - 1
	return uint64(i%32+32) << shift
}

// histHigh is the largest value that falls in bucket i.
func histHigh(i int) uint64 { return histLow(i+1) - 1 }

// coarseEdges are the upper bounds (exclusive) of the coarse lateness
// buckets printed in the summary, in microseconds; the last bucket is
// open-ended.
var coarseEdges = []int64{
	-100000, -10000, -1000, 0, 100, 200, 500,
	1000, 2000, 5000, 10000, 20000, 50000, 100000, 200000, 500000, 1000000,
}

func coarseLabel(i int) string {
	ms := func(us int64) string { return fmt.Sprintf("%gms", float64(us)/1000) }
	switch {
	case i == 0:
		return "< " + ms(coarseEdges[0])
	case i == len(coarseEdges):
		return ">= " + ms(coarseEdges[len(coarseEdges)-1])
	default:
		return "[" + ms(coarseEdges[i-1]) + ", " + ms(coarseEdges[i]) + ")"
	}
}

func coarseIndex(us int64) int {
	for i, e := range coarseEdges {
		if us < e {
			return i
		}
	}
	return len(coarseEdges)
}

// Dist is a distribution of signed durations in microseconds: lateness
// (interval between two drips minus the stutter; negative = early) or a
// delay.
type Dist struct {
	N      uint64   `json:"n"`
	SumUS  int64    `json:"sum_us"`
	MinUS  int64    `json:"min_us"`
	MaxUS  int64    `json:"max_us"`
	Pos    Hist     `json:"pos"`    // values >= 0
	Neg    Hist     `json:"neg"`    // -value for values < 0
	Coarse []uint64 `json:"coarse"` // counts per coarseEdges bucket
}

func newDist() *Dist {
	return &Dist{Pos: Hist{}, Neg: Hist{}, Coarse: make([]uint64, len(coarseEdges)+1)}
}

func (d *Dist) Add(v time.Duration) {
	us := v.Microseconds()
	if d.N == 0 || us < d.MinUS {
		d.MinUS = us
	}
	if d.N == 0 || us > d.MaxUS {
		d.MaxUS = us
	}
	d.N++
	d.SumUS += us
	if us >= 0 {
		d.Pos[histIndex(uint64(us))]++
	} else {
		d.Neg[histIndex(uint64(-us))]++
	}
	d.Coarse[coarseIndex(us)]++
}

func (d *Dist) Merge(o *Dist) {
	if o == nil || o.N == 0 {
		return
	}
	if d.N == 0 || o.MinUS < d.MinUS {
		d.MinUS = o.MinUS
	}
	if d.N == 0 || o.MaxUS > d.MaxUS {
		d.MaxUS = o.MaxUS
	}
	d.N += o.N
	d.SumUS += o.SumUS
	for k, v := range o.Pos {
		d.Pos[k] += v
	}
	for k, v := range o.Neg {
		d.Neg[k] += v
	}
	for i, v := range o.Coarse {
		if i < len(d.Coarse) {
			d.Coarse[i] += v
		}
	}
}

// Quantile returns the q-quantile in microseconds, rounded up to the top
// of its bucket (so never below the true value, and at most 3.1 % above
// it for values of 64 µs and more). ok is false for an empty Dist.
func (d *Dist) Quantile(q float64) (us int64, ok bool) {
	if d.N == 0 {
		return 0, false
	}
	rank := uint64(math.Ceil(q * float64(d.N)))
	rank = max(1, min(rank, d.N))
	var seen uint64
	// Most negative first: the largest magnitudes of Neg.
	for i := 2047; i >= 0; i-- {
		if c := d.Neg[i]; c > 0 {
			seen += c
			if seen >= rank {
				return min(-int64(histLow(i)), d.MaxUS), true
			}
		}
	}
	for i := 0; i < 2048; i++ {
		if c := d.Pos[i]; c > 0 {
			seen += c
			if seen >= rank {
				return min(int64(histHigh(i)), d.MaxUS), true
			}
		}
	}
	return d.MaxUS, true
}

func (d *Dist) MeanUS() float64 {
	if d.N == 0 {
		return 0
	}
	return float64(d.SumUS) / float64(d.N)
}
