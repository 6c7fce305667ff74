package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkGreyFlush is the cost per sighting of writing batches of 20,000
// new tuples into a file that already holds 200,000: tuples from
// ascending networks (/seq), and scattered over the key space (/random),
// and the file's size per tuple stored.
func BenchmarkGreyFlush(b *testing.B) {
	b.Run("seq", func(b *testing.B) { benchGreyFlush(b, func(n int) int { return n }) })
	// A multiplicative hash scatters the networks.
	b.Run("random", func(b *testing.B) { benchGreyFlush(b, func(n int) int { return int(uint32(n) * 2654435761) }) })
}

func benchGreyFlush(b *testing.B, net func(int) int) {
	db, err := OpenBolt(filepath.Join(b.TempDir(), "g.db"), BoltOptions{})
	if err != nil {
		b.Fatal(err)
	}
	c := NewGreyCache(db)
	defer c.Close()
	ctx := context.Background()
	p := GreyParams{PassDelay: time.Minute, RetryWindow: time.Hour, PassedTTL: time.Hour}
	now := time.Now()
	n := 0
	add := func(k int) {
		for range k {
			n++
			c.Greylist(ctx, fmt.Sprintf("%d.%d.%d.0/24 user%d@example.org rcpt%d@example.test", net(n)>>24&255, net(n)>>16&255, net(n)>>8&255, n, n%5000), "10.0.0.1", now, p)
		}
	}
	for range 10 {
		add(20000)
		c.Flush(ctx)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		add(20000)
		b.StartTimer()
		if err := c.Flush(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*20000), "ns/sighting")
	if fi, err := os.Stat(db.Path()); err == nil {
		b.ReportMetric(float64(fi.Size())/float64(n), "file-B/tuple")
	}
}
