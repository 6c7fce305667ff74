package networks

import (
	"bytes"
	"context"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/greypit/greypit/internal/store"
)

// Blocked traffic from a test history is attributed to the right ASes and
// networks of the sample iptoasn data, with the right shares.
func TestReportAttribution(t *testing.T) {
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "db"), store.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	asn, err := OpenASNDB("testdata/iptoasn-ip2asn-v4-subset.tsv")
	if err != nil {
		t.Fatal(err)
	}
	rec := NewRecorder(st, 30*24*time.Hour, nil)
	t0 := time.Now().Add(-time.Hour).Round(0)
	ev := func(d time.Duration, client, path string, tarpit float64) {
		rec.Record(store.Event{Time: t0.Add(d), Client: client, Path: path, Outcome: "quit", Tarpit: tarpit})
	}
	// Google (AS15169): 6 blocked sessions from 3 hosts in 2 /24s, 60 s held.
	for i, c := range []string{"8.8.8.1", "8.8.8.1", "8.8.8.2", "8.8.4.4", "8.8.4.4", "8.8.4.4"} {
		ev(time.Duration(i)*time.Second, c, "black", 10)
	}
	// Cloudflare (AS13335): 3 blocked, 30 s; and one trap hit.
	for i, c := range []string{"1.1.1.2", "1.1.1.200", "23.227.63.9"} {
		ev(time.Minute+time.Duration(i)*time.Second, c, "black", 10)
	}
	rec.Record(store.Event{Time: t0.Add(2 * time.Minute), Client: "1.1.1.3", Path: "black", Outcome: "trap-hit", Trap: true})
	// The single-address row AS7497: 1 blocked, 10 s.
	ev(3*time.Minute, "1.1.1.1", "black", 10)
	// No AS known: 1 blocked (IPv6, /48).
	ev(4*time.Minute, "2001:db8:1:2::3", "black", 0)
	// Not blocked: counted as sessions only.
	ev(5*time.Minute, "8.8.8.8", "grey", 0)
	ev(5*time.Minute, "8.8.8.8", "white", 0)
	// Outside the window.
	ev(-2*time.Hour, "8.8.8.1", "black", 1000)
	rec.Close()
	rec.Record(store.Event{Time: t0, Client: "8.8.8.1", Path: "black"}) // after Close: dropped, no panic

	b := NewReportBuilder(t0.Add(-time.Minute), time.Time{}, asn, 24, 48)
	if err := st.Events(context.Background(), t0.Add(-time.Minute), time.Time{}, func(e store.Event) error { b.Add(e); return nil }); err != nil {
		t.Fatal(err)
	}
	r := b.Report(0)
	if r.Sessions != 13 || r.Blocked != 11 || r.Traps != 1 || r.TarpitSeconds != 100 {
		t.Fatalf("totals: %+v", r)
	}
	type want struct {
		key            string
		blocked, traps int
		share, tarpit  float64
		hosts          int
	}
	check := func(what string, got []Group, ws []want) {
		t.Helper()
		if len(got) != len(ws) {
			t.Fatalf("%s: %d groups, want %d: %+v", what, len(got), len(ws), got)
		}
		for i, w := range ws {
			g := got[i]
			if g.Key != w.key || g.Blocked != w.blocked || g.Traps != w.traps || math.Abs(g.BlockedShare-w.share) > 1e-9 ||
				g.TarpitSeconds != w.tarpit || g.Hosts != w.hosts {
				t.Errorf("%s %d: %+v, want %+v", what, i, g, w)
			}
		}
	}
	check("by AS", r.ByAS, []want{
		{"AS15169", 6, 0, 6.0 / 11, 60, 3},
		{"AS13335", 3, 1, 3.0 / 11, 30, 4},
		{"AS7497", 1, 0, 1.0 / 11, 10, 1},
		{"unknown AS", 1, 0, 1.0 / 11, 0, 1},
	})
	if r.ByAS[0].AS == nil || r.ByAS[0].AS.Name != "GOOGLE - Google LLC" || r.ByAS[1].TrapShare != 1 || r.ByAS[0].TarpitShare != 0.6 {
		t.Errorf("AS details: %+v %+v", r.ByAS[0], r.ByAS[1])
	}
	check("by network", r.ByNetwork, []want{
		{"1.1.1.0/24", 3, 1, 3.0 / 11, 30, 4}, // with 1.1.1.1 of AS7497
		{"8.8.4.0/24", 3, 0, 3.0 / 11, 30, 1},
		{"8.8.8.0/24", 3, 0, 3.0 / 11, 30, 2},
		{"23.227.63.0/24", 1, 0, 1.0 / 11, 10, 1},
		{"2001:db8:1::/48", 1, 0, 1.0 / 11, 0, 1},
	})
	if top := b.Report(2); len(top.ByAS) != 2 || len(top.ByNetwork) != 2 {
		t.Errorf("top 2: %d, %d groups", len(top.ByAS), len(top.ByNetwork))
	}
	var out bytes.Buffer
	r.WriteText(&out)
	for _, s := range []string{"sessions 13, blocked 11, trap hits 1, tarpit time 1m40s", "54.5%", "GOOGLE - Google LLC", "8.8.4.0/24"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("text report lacks %q:\n%s", s, out.String())
		}
	}
}
