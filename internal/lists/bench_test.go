package lists

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

// bigDROP writes a DROP file of n distinct prefixes (/16 to /24 IPv4 and
// /32 to /48 IPv6, one in eight) and returns its name.
func bigDROP(tb testing.TB, n int) string {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), "drop.txt")
	f, err := os.Create(p)
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "; Spamhaus DROP List - synthetic, for the benchmark")
	r := rand.New(rand.NewPCG(1, 2))
	seen := map[netip.Prefix]bool{}
	for len(seen) < n {
		var pfx netip.Prefix
		if r.IntN(8) == 0 {
			var b [16]byte
			b[0], b[1] = 0x20, 0x01
			for i := 2; i < 6; i++ {
				b[i] = byte(r.Uint32())
			}
			pfx = netip.PrefixFrom(netip.AddrFrom16(b), 32+r.IntN(17)).Masked()
		} else {
			v := r.Uint32()
			pfx = netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), 16+r.IntN(9)).Masked()
		}
		if !seen[pfx] {
			seen[pfx] = true
			fmt.Fprintf(w, "%s ; SBL%d\n", pfx, len(seen))
		}
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	f.Close()
	return p
}

// BenchmarkLoad100k loads a 100,000-prefix DROP file (target: < 1 s).
func BenchmarkLoad100k(b *testing.B) {
	file := bigDROP(b, 100_000)
	b.ResetTimer()
	for b.Loop() {
		s, err := NewSetFiles(Files{DROP: []string{file}})
		if err != nil {
			b.Fatal(err)
		}
		if n := s.Counts()["drop"]; n != 100_000 {
			b.Fatalf("%d prefixes", n)
		}
	}
}

// BenchmarkBlocked looks up addresses in that list (target: well under
// 1 µs); about a quarter of them are listed.
func BenchmarkBlocked(b *testing.B) {
	s, err := NewSetFiles(Files{DROP: []string{bigDROP(b, 100_000)}})
	if err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 4))
	addrs := make([]netip.Addr, 1024)
	for i := range addrs {
		v := r.Uint32()
		addrs[i] = netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	}
	hits := 0
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if len(s.Blocked(addrs[i%len(addrs)])) > 0 {
			hits++
		}
		i++
	}
	b.ReportMetric(float64(hits)/float64(i), "hit/op")
}
