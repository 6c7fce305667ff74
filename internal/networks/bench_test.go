package networks

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/greypit/greypit/internal/store"
)

// BenchmarkRebuild is the periodic re-evaluation over a store of 100,000
// white and 20,000 black host entries (2,000 networks with 10 black hosts
// each; half of them have a white host too, the rest escalate).
func BenchmarkRebuild(b *testing.B) {
	// Loading 120,000 entries is one fsync each: on tmpfs if there is one.
	dir := b.TempDir()
	if d, err := os.MkdirTemp("/dev/shm", "greypit-bench-"); err == nil {
		dir = d
		defer os.RemoveAll(d)
	}
	st, err := store.OpenBolt(filepath.Join(dir, "db"), store.BoltOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	now := time.Now().Round(0)
	var evs []store.Entry
	for i := range 100_000 {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		evs = append(evs, store.Entry{Kind: store.White, Key: a.String(), Source: "greylist", Created: now, Updated: now, Expires: now.Add(time.Hour)})
	}
	for n := range 2000 {
		for h := range 10 {
			a := netip.AddrFrom4([4]byte{172, byte(n >> 8), byte(n), byte(h + 1)})
			evs = append(evs, store.Entry{Kind: store.Black, Key: a.String(), Source: "pregreet", Created: now, Updated: now, Expires: now.Add(time.Hour)})
		}
		if n%2 == 0 {
			a := netip.AddrFrom4([4]byte{172, byte(n >> 8), byte(n), 200})
			evs = append(evs, store.Entry{Kind: store.White, Key: a.String(), Source: "greylist", Created: now, Updated: now, Expires: now.Add(time.Hour)})
		}
	}
	var buf []byte
	for _, e := range evs {
		buf = fmt.Appendf(buf, "%s\n", mustJSON(e))
	}
	if _, err := store.Load(ctx, st, bytesReader(buf)); err != nil {
		b.Fatal(err)
	}
	e := New(Config{PrefixV4: 24, PrefixV6: 48, EscalateHosts: 5, EscalateTTL: time.Hour, HalfLife: time.Hour}, st, nil)
	up, _, err := e.Rebuild(ctx)
	if err != nil || up != 1000 {
		b.Fatalf("first rebuild: %d escalations, %v", up, err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, _, err := e.Rebuild(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(evs)), "entries")
}
