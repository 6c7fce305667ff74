package policy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/greypit/greypit/internal/classify"
	"github.com/greypit/greypit/internal/greylist"
	"github.com/greypit/greypit/internal/lists"
	"github.com/greypit/greypit/internal/store"
	"github.com/greypit/greypit/internal/traps"
)

// BenchmarkDecide is one request's parse and decision with Debian's
// whitelists loaded and batched sightings; new tuples (90% repeats in
// /repeat90).
func BenchmarkDecide(b *testing.B) {
	for _, mix := range []string{"new", "repeat90"} {
		b.Run(mix, func(b *testing.B) {
			s, gc := benchServer(b)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go gc.Run(ctx, time.Second, nil)
			// Requests are made in batches of 1000 outside the timer.
			const batch = 1000
			var (
				r   Request
				cs  connState
				sb  strings.Builder
				seq int
			)
			br := bufio.NewReader(strings.NewReader(""))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if i%batch == 0 {
					b.StopTimer()
					sb.Reset()
					for j := range batch {
						n := seq
						if mix == "new" || j%10 != 0 {
							seq++
						} else {
							n = j // repeats of the first batch
						}
						sb.WriteString(req(fmt.Sprintf("10.%d.%d.%d", n>>16&255, n>>8&255, n&255), fmt.Sprintf("u%d@example.org", n), "kim@example.test"))
					}
					br.Reset(strings.NewReader(sb.String()))
					b.StartTimer()
				}
				if err := ReadRequest(br, &r); err != nil {
					b.Fatal(err)
				}
				if a := s.Decide(ctx, &r, &cs); !strings.HasPrefix(a, "DEFER_IF_PERMIT") {
					b.Fatal(a)
				}
			}
		})
	}
}

// BenchmarkServeTCP is the whole server over loopback TCP with 8
// kept-alive connections, each tuple new.
func BenchmarkServeTCP(b *testing.B) {
	s, gc := benchServer(b)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go gc.Run(ctx, time.Second, nil)
	go s.Serve(ctx, ln)
	var seq atomic.Int64
	b.SetParallelism(4) // 8 goroutines on 2 CPUs
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		for pb.Next() {
			n := seq.Add(1)
			io.WriteString(c, req(fmt.Sprintf("10.%d.%d.%d", n>>16&255, n>>8&255, n&255), fmt.Sprintf("u%d@example.org", n), "kim@example.test"))
			if l, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(l, "action=DEFER_IF_PERMIT") {
				b.Error(l, err)
				return
			}
			br.ReadString('\n')
		}
	})
}

func benchServer(b *testing.B) (*Server, *store.GreyCache) {
	db, err := store.OpenBolt(filepath.Join(b.TempDir(), "g.db"), store.BoltOptions{})
	if err != nil {
		b.Fatal(err)
	}
	gc := store.NewGreyCache(db)
	b.Cleanup(func() { gc.Close() })
	ls, _ := lists.NewSet(nil, nil)
	w, err := LoadWhitelist([]string{"testdata/postgrey/whitelist_clients"}, []string{"testdata/postgrey/whitelist_recipients"})
	if err != nil {
		b.Fatal(err)
	}
	s := &Server{
		Config: Config{GreylistAction: "DEFER_IF_PERMIT", GreylistText: "Greylisted %r", BlackAction: "DEFER",
			AutoWhitelist: 5, WhiteTTL: time.Hour},
		Log:        slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Classifier: &classify.Classifier{Lists: ls, Store: gc},
		Store:      gc,
		Greylist: &greylist.Greylister{Store: gc, PrefixV4: 24, PrefixV6: 64,
			Params: store.GreyParams{PassDelay: 5 * time.Minute, RetryWindow: time.Hour, PassedTTL: time.Hour}},
	}
	// As in greypit policy: the spamtrap check runs for every grey client.
	s.Traps = &traps.Checker{Classifier: s.Classifier, Store: gc, BlackTTL: time.Hour, MaxTTL: time.Hour, Keep: time.Hour}
	s.Whitelist.Store(w)
	return s, gc
}
