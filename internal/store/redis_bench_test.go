package store

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/greypit/greypit/internal/testenv"
)

// benchBackends opens an empty store of each backend for a benchmark:
// a bbolt file in a temp dir and a store on a private loopback redis-server.
func benchBackends(b *testing.B, fn func(b *testing.B, s Store)) {
	b.Run("bolt", func(b *testing.B) {
		s, err := OpenBolt(filepath.Join(b.TempDir(), "bench.db"), BoltOptions{})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		fn(b, s)
	})
	b.Run("redis", func(b *testing.B) {
		srv := testenv.StartRedis(b)
		s, err := OpenRedis(RedisOptions{Addrs: []string{srv.Addr()}})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		fn(b, s)
	})
}

// BenchmarkGreylist: first attempts of distinct tuples from parallel
// sessions (GOMAXPROCS*4 of them), as a busy MX sees them. bbolt batches
// concurrent writers into one fsync; Redis does one optimistic
// transaction (WATCH, GET, MULTI/SET/ZADD/EXEC) per attempt.
func BenchmarkGreylist(b *testing.B) {
	benchBackends(b, func(b *testing.B, s Store) {
		ctx := context.Background()
		var n atomic.Int64
		now := time.Now()
		b.SetParallelism(4)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				key := fmt.Sprintf("192.0.2.0/24 s%d@example.org r@example.net", n.Add(1))
				if _, _, err := s.Greylist(ctx, key, "192.0.2.1", now, testParams); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkMatch: the per-connection black lookup for an IPv4 address,
// one caller, against 1,000 stored host entries and 100 /24 prefixes;
// a third of the lookups hit.
func BenchmarkMatch(b *testing.B) {
	benchBackends(b, func(b *testing.B, s Store) {
		ctx := context.Background()
		for i := range 1000 {
			mustPut(b, s, Entry{Kind: Black, Key: fmt.Sprintf("10.%d.%d.1", i/250, i%250)})
		}
		for i := range 100 {
			mustPut(b, s, Entry{Kind: Black, Key: fmt.Sprintf("172.16.%d.0/24", i)})
		}
		addrs := make([]netip.Addr, 300)
		for i := range addrs {
			switch i % 3 {
			case 0:
				addrs[i] = netip.AddrFrom4([4]byte{10, byte(i % 4), byte(i % 250), 1}) // host hit
			case 1:
				addrs[i] = netip.AddrFrom4([4]byte{172, 16, byte(i % 200), 9}) // prefix hit for half
			default:
				addrs[i] = netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}) // miss
			}
		}
		b.ResetTimer()
		for i := range b.N {
			if _, err := s.MatchAll(ctx, Black, addrs[i%len(addrs)]); err != nil {
				b.Fatal(err)
			}
		}
	})
}
