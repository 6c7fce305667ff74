// Package metrics owns greypit's Prometheus metrics: lock-free counters,
// gauges and histograms, families of them by label values, and the text
// exposition format (version 0.0.4) written with the standard library,
// so the daemon needs no Prometheus client library.
//
// The hot path is an atomic add: code that counts per session resolves a
// family's child once (With) where the label values are fixed, and the
// family lookup itself takes a struct of the label values, not a string
// built per call.
package metrics

import (
	"bufio"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Counter only goes up.
type Counter struct{ v atomic.Uint64 }

// Inc adds 1.
func (c *Counter) Inc() { c.v.Add(1) }

// Add adds n.
func (c *Counter) Add(n uint64) { c.v.Add(n) }

// Value returns the count.
func (c *Counter) Value() uint64 { return c.v.Load() }

// FloatCounter only goes up by float amounts (seconds).
type FloatCounter struct{ bits atomic.Uint64 }

// Add adds v (ignored unless > 0).
func (c *FloatCounter) Add(v float64) {
	if !(v > 0) {
		return
	}
	addFloat(&c.bits, v)
}

// Value returns the sum.
func (c *FloatCounter) Value() float64 { return math.Float64frombits(c.bits.Load()) }

func addFloat(b *atomic.Uint64, v float64) {
	for {
		old := b.Load()
		if b.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

// Gauge goes up and down.
type Gauge struct{ v atomic.Int64 }

// Inc adds 1.
func (g *Gauge) Inc() { g.v.Add(1) }

// Dec subtracts 1.
func (g *Gauge) Dec() { g.v.Add(-1) }

// Set sets the value.
func (g *Gauge) Set(n int64) { g.v.Store(n) }

// Value returns the value.
func (g *Gauge) Value() int64 { return g.v.Load() }

// Histogram counts observations into fixed buckets.
type Histogram struct {
	upper  []float64 // bucket upper bounds, ascending, without +Inf
	counts []atomic.Uint64
	count  atomic.Uint64
	sum    atomic.Uint64 // float64 bits
}

func newHistogram(buckets []float64) *Histogram {
	return &Histogram{upper: buckets, counts: make([]atomic.Uint64, len(buckets))}
}

// Observe records v.
func (h *Histogram) Observe(v float64) {
	if math.IsNaN(v) {
		return
	}
	if i, _ := slices.BinarySearch(h.upper, v); i < len(h.upper) {
		h.counts[i].Add(1) // not cumulative here; Write sums them
	}
	addFloat(&h.sum, v)
	h.count.Add(1)
}

// Count returns the number of observations.
func (h *Histogram) Count() uint64 { return h.count.Load() }

// Buckets returns the bucket upper bounds and the observations in each
// bucket (not cumulative; those above the last bound are count minus
// their sum), the count and the sum.
func (h *Histogram) Buckets() (upper []float64, counts []uint64, count uint64, sum float64) {
	count = h.count.Load() // first, as in a scrape
	counts = make([]uint64, len(h.upper))
	for i := range h.counts {
		counts[i] = h.counts[i].Load()
	}
	return h.upper, counts, count, math.Float64frombits(h.sum.Load())
}

// Labels is the label values of one child of a family, in the order of
// the family's label names. Up to three labels: greypit needs no more.
type Labels [3]string

// Family is a metric with label names and its children by label values.
type Family[T any] struct {
	name, help, typ string
	labels          []string
	make            func() *T

	mu       sync.RWMutex
	children map[Labels]*T
}

// With returns the child for the label values, making it if need be.
func (f *Family[T]) With(values ...string) *T {
	var k Labels
	copy(k[:], values)
	f.mu.RLock()
	c := f.children[k]
	f.mu.RUnlock()
	if c != nil {
		return c
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if c = f.children[k]; c == nil {
		c = f.make()
		f.children[k] = c
	}
	return c
}

// Each calls fn for every child in label order.
func (f *Family[T]) Each(fn func(Labels, *T)) {
	keys, vals := f.sorted()
	for i, k := range keys {
		fn(k, vals[i])
	}
}

// sorted returns the children in label order, so scrapes are stable.
func (f *Family[T]) sorted() ([]Labels, []*T) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	keys := make([]Labels, 0, len(f.children))
	for k := range f.children {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b Labels) int { return slices.Compare(a[:], b[:]) })
	vals := make([]*T, len(keys))
	for i, k := range keys {
		vals[i] = f.children[k]
	}
	return keys, vals
}

// Registry holds the metrics a scrape writes, in registration order.
type Registry struct {
	mu      sync.Mutex
	writers []func(*bufio.Writer)
}

func (r *Registry) add(w func(*bufio.Writer)) {
	r.mu.Lock()
	r.writers = append(r.writers, w)
	r.mu.Unlock()
}

func header(b *bufio.Writer, name, help, typ string) {
	b.WriteString("# HELP " + name + " " + escapeHelp(help) + "\n")
	b.WriteString("# TYPE " + name + " " + typ + "\n")
}

// NewCounter registers a counter without labels.
func (r *Registry) NewCounter(name, help string) *Counter {
	c := &Counter{}
	r.add(func(b *bufio.Writer) {
		header(b, name, help, "counter")
		sample(b, name, nil, nil, "", "", formatUint(c.Value()))
	})
	return c
}

// NewFloatCounter registers a float counter without labels.
func (r *Registry) NewFloatCounter(name, help string) *FloatCounter {
	c := &FloatCounter{}
	r.add(func(b *bufio.Writer) {
		header(b, name, help, "counter")
		sample(b, name, nil, nil, "", "", formatFloat(c.Value()))
	})
	return c
}

// NewGaugeFunc registers a gauge read from fn at each scrape.
func (r *Registry) NewGaugeFunc(name, help string, fn func() float64) {
	r.add(func(b *bufio.Writer) {
		header(b, name, help, "gauge")
		sample(b, name, nil, nil, "", "", formatFloat(fn()))
	})
}

// NewInfo registers a gauge of constant 1 whose labels carry the data
// (the `_info` convention, e.g. build info).
func (r *Registry) NewInfo(name, help string, labels []string, values func() []string) {
	r.add(func(b *bufio.Writer) {
		header(b, name, help, "gauge")
		sample(b, name, labels, values(), "", "", "1")
	})
}

// NewCounterVec registers a counter family.
func (r *Registry) NewCounterVec(name, help string, labels ...string) *Family[Counter] {
	return register(r, name, help, "counter", labels, func(c *Counter) string { return formatUint(c.Value()) })
}

// NewGaugeVec registers a gauge family.
func (r *Registry) NewGaugeVec(name, help string, labels ...string) *Family[Gauge] {
	return register(r, name, help, "gauge", labels, func(g *Gauge) string { return strconv.FormatInt(g.Value(), 10) })
}

// register makes a family and writes its children, sorted, at a scrape.
func register[T any](r *Registry, name, help, typ string, labels []string, value func(*T) string) *Family[T] {
	f := newFamily[T](name, help, typ, labels, func() *T { return new(T) })
	r.add(func(b *bufio.Writer) {
		header(b, name, help, typ)
		keys, cs := f.sorted()
		for i, c := range cs {
			sample(b, name, labels, keys[i][:], "", "", value(c))
		}
	})
	return f
}

// NewHistogram registers a histogram without labels; buckets are the
// upper bounds, ascending (+Inf is added).
func (r *Registry) NewHistogram(name, help string, buckets []float64) *Histogram {
	if !slices.IsSorted(buckets) {
		panic("metrics: " + name + ": buckets not ascending")
	}
	h := newHistogram(buckets)
	r.add(func(b *bufio.Writer) {
		header(b, name, help, "histogram")
		// Read count first: an observation racing the scrape then shows in
		// the buckets but not yet in the count, never the other way round.
		count := h.count.Load()
		var cum uint64
		for i, up := range h.upper {
			cum += h.counts[i].Load()
			sample(b, name+"_bucket", nil, nil, "le", formatFloat(up), formatUint(min(cum, count)))
		}
		sample(b, name+"_bucket", nil, nil, "le", "+Inf", formatUint(count))
		sample(b, name+"_sum", nil, nil, "", "", formatFloat(math.Float64frombits(h.sum.Load())))
		sample(b, name+"_count", nil, nil, "", "", formatUint(count))
	})
	return h
}

func newFamily[T any](name, help, typ string, labels []string, mk func() *T) *Family[T] {
	if len(labels) > len(Labels{}) {
		panic("metrics: " + name + ": too many labels")
	}
	return &Family[T]{name: name, help: help, typ: typ, labels: labels, make: mk, children: map[Labels]*T{}}
}

// Write writes every metric in the text exposition format.
func (r *Registry) Write(w io.Writer) error {
	b := bufio.NewWriter(w)
	r.mu.Lock()
	ws := slices.Clone(r.writers)
	r.mu.Unlock()
	for _, f := range ws {
		f(b)
	}
	return b.Flush()
}

// sample writes one line: name{labels,extra="v"} value.
func sample(b *bufio.Writer, name string, labels, values []string, extra, extraVal, v string) {
	b.WriteString(name)
	n := 0
	sep := func() {
		if n == 0 {
			b.WriteByte('{')
		} else {
			b.WriteByte(',')
		}
		n++
	}
	for i, l := range labels {
		sep()
		b.WriteString(l + `="` + escapeLabel(values[i]) + `"`)
	}
	if extra != "" {
		sep()
		b.WriteString(extra + `="` + escapeLabel(extraVal) + `"`)
	}
	if n > 0 {
		b.WriteByte('}')
	}
	b.WriteString(" " + v + "\n")
}

// labelEscaper escapes a label value: backslash, double quote and line
// feed (exposition format, "Text format details").
var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

func escapeLabel(s string) string { return labelEscaper.Replace(s) }

// helpEscaper escapes HELP text: backslash and line feed only.
var helpEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`)

func escapeHelp(s string) string { return helpEscaper.Replace(s) }

func formatUint(v uint64) string { return strconv.FormatUint(v, 10) }

func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
