package networks

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/greypit/greypit/internal/store"
)

// Report is the McColo view: where blocked traffic came from over a
// window, grouped by AS and by network, each group with its share of the
// total.
type Report struct {
	Since         time.Time `json:"since"`
	Until         time.Time `json:"until"`
	Sessions      int       `json:"sessions"`       // every session in the window
	Blocked       int       `json:"blocked"`        // sessions on the black path
	Traps         int       `json:"trap_hits"`      // spamtrap hits
	TarpitSeconds float64   `json:"tarpit_seconds"` // time black sessions were held
	ByAS          []Group   `json:"by_as"`
	ByNetwork     []Group   `json:"by_network"`
}

// Group is one AS's or one network's part of a Report.
type Group struct {
	Key           string  `json:"key"` // "AS15169", "unknown AS", or "192.0.2.0/24"
	AS            *AS     `json:"as,omitempty"`
	Hosts         int     `json:"hosts"` // distinct blocked or trapped clients
	Blocked       int     `json:"blocked"`
	BlockedShare  float64 `json:"blocked_share"` // of Report.Blocked, 0 to 1
	Traps         int     `json:"trap_hits"`
	TrapShare     float64 `json:"trap_share"`
	TarpitSeconds float64 `json:"tarpit_seconds"`
	TarpitShare   float64 `json:"tarpit_share"`
}

// ReportBuilder sums events into a Report.
type ReportBuilder struct {
	r                  Report
	asn                ASNDB
	prefixV4, prefixV6 int
	byAS, byNet        map[string]*group
}

type group struct {
	Group
	hosts map[netip.Addr]bool
}

// NewReportBuilder starts a report over [since, until); asn may be nil.
func NewReportBuilder(since, until time.Time, asn ASNDB, prefixV4, prefixV6 int) *ReportBuilder {
	return &ReportBuilder{
		r:   Report{Since: since, Until: until},
		asn: asn, prefixV4: prefixV4, prefixV6: prefixV6,
		byAS: map[string]*group{}, byNet: map[string]*group{},
	}
}

// EventSource reads the session events from since on, oldest first;
// control.Ops.Events is one.
type EventSource func(ctx context.Context, since time.Time, fn func(store.Event) error) error

// Collect adds the events of the report's window read from src.
func (b *ReportBuilder) Collect(ctx context.Context, src EventSource) error {
	return src(ctx, b.r.Since, func(e store.Event) error {
		if e.Time.Before(b.r.Until) {
			b.Add(e)
		}
		return nil
	})
}

// Add counts one event.
func (b *ReportBuilder) Add(ev store.Event) {
	if !ev.Trap {
		b.r.Sessions++
	}
	blocked := ev.Path == "black" && !ev.Trap
	if !blocked && !ev.Trap {
		return
	}
	a, err := netip.ParseAddr(ev.Client)
	if err != nil {
		return
	}
	a = a.Unmap()
	bits := b.prefixV6
	if a.Is4() {
		bits = b.prefixV4
	}
	pfx, _ := a.Prefix(bits)
	var as *AS
	asKey := "unknown AS"
	if b.asn != nil {
		if x, ok := b.asn.Lookup(a); ok {
			as, asKey = &x, "AS"+strconv.FormatUint(uint64(x.Number), 10)
		}
	}
	for _, g := range []*group{b.get(b.byAS, asKey, as), b.get(b.byNet, pfx.String(), as)} {
		g.hosts[a] = true
		if blocked {
			g.Blocked++
			g.TarpitSeconds += ev.Tarpit
		} else {
			g.Traps++
		}
	}
	if blocked {
		b.r.Blocked++
		b.r.TarpitSeconds += ev.Tarpit
	} else {
		b.r.Traps++
	}
}

func (b *ReportBuilder) get(m map[string]*group, key string, as *AS) *group {
	g := m[key]
	if g == nil {
		g = &group{Group: Group{Key: key, AS: as}, hosts: map[netip.Addr]bool{}}
		m[key] = g
	}
	return g
}

// Report returns the groups, largest first (blocked sessions, then trap
// hits, then tarpit time), at most top of each (0: all).
func (b *ReportBuilder) Report(top int) Report {
	r := b.r
	r.ByAS = b.groups(b.byAS, top)
	r.ByNetwork = b.groups(b.byNet, top)
	return r
}

func (b *ReportBuilder) groups(m map[string]*group, top int) []Group {
	out := make([]Group, 0, len(m))
	share := func(n, total float64) float64 {
		if total == 0 {
			return 0
		}
		return n / total
	}
	for _, g := range m {
		x := g.Group
		x.Hosts = len(g.hosts)
		x.BlockedShare = share(float64(x.Blocked), float64(b.r.Blocked))
		x.TrapShare = share(float64(x.Traps), float64(b.r.Traps))
		x.TarpitShare = share(x.TarpitSeconds, b.r.TarpitSeconds)
		out = append(out, x)
	}
	slices.SortFunc(out, func(a, b Group) int {
		return cmp.Or(cmp.Compare(b.Blocked, a.Blocked), cmp.Compare(b.Traps, a.Traps),
			cmp.Compare(b.TarpitSeconds, a.TarpitSeconds), cmp.Compare(a.Key, b.Key))
	})
	if top > 0 && len(out) > top {
		out = out[:top]
	}
	return out
}

// WriteText prints r as two tables.
func (r Report) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "networks report %s to %s\n", r.Since.UTC().Format(time.RFC3339), r.Until.UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "sessions %d, blocked %d, trap hits %d, tarpit time %s\n",
		r.Sessions, r.Blocked, r.Traps, (time.Duration(r.TarpitSeconds * float64(time.Second))).Round(time.Second))
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	for _, t := range []struct {
		title  string
		groups []Group
	}{{"AS", r.ByAS}, {"NETWORK", r.ByNetwork}} {
		fmt.Fprintf(tw, "\n%s\tBLOCKED\tSHARE\tTRAPS\tSHARE\tTARPIT\tSHARE\tHOSTS\tNAME\n", t.title)
		for _, g := range t.groups {
			name := "-"
			if g.AS != nil && g.AS.Name != "" {
				name = g.AS.Name
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\t%s\t%s\t%d\t%s\n", g.Key, g.Blocked, pct(g.BlockedShare), g.Traps, pct(g.TrapShare),
				(time.Duration(g.TarpitSeconds * float64(time.Second))).Round(time.Second), pct(g.TarpitShare), g.Hosts, name)
		}
		if len(t.groups) == 0 {
			fmt.Fprintln(tw, "(none)")
		}
	}
	return tw.Flush()
}

func pct(f float64) string { return strconv.FormatFloat(100*f, 'f', 1, 64) + "%" }
