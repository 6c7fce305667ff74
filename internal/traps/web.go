package traps

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/greypit/greypit/internal/store"
)

// Web is the harvester page: every visit is shown its own fresh trap
// address under Domain and recorded with the visitor's address, user agent
// and time, so that mail to the address later names both the sender and
// the harvester (Project Honey Pot's design, with the mapping kept in our
// own store). Well-behaved robots are told to stay out: robots.txt
// disallows everything, and the page carries noindex,nofollow and
// no-email-collection. Visits are rate-limited per visitor, so one
// harvester cannot fill the store.
type Web struct {
	Store  store.Store
	Domain string
	Burst  int           // visits per visitor at once
	Every  time.Duration // one more visit per this interval
	Keep   time.Duration // visits are kept this long
	Log    *slog.Logger
	Now    func() time.Time

	mu       sync.Mutex
	visitors map[netip.Prefix]*allowance
	all      allowance // all visitors together: globalBurst, one per globalEvery
	swept    time.Time
}

// allowance is a token bucket: tokens as of when.
type allowance struct {
	tokens float64
	when   time.Time
}

// maxVisitors bounds the rate limiter's table; above it, visitors whose
// allowance is full again are forgotten, at most once a second.
const maxVisitors = 65536

// New addresses for all visitors together are limited too, so a crowd of
// harvesters (or one with many IPv6 /64s) cannot make the store write
// more than about this many records per second.
const (
	globalBurst = 100
	globalEvery = 50 * time.Millisecond
)

func (w *Web) now() time.Time {
	if w.Now != nil {
		return w.Now()
	}
	return time.Now()
}

// allow takes one visit from the visitor's allowance.
func (w *Web) allow(p netip.Prefix, now time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.visitors == nil {
		w.visitors = map[netip.Prefix]*allowance{}
	}
	a := w.visitors[p]
	if a == nil {
		if len(w.visitors) >= maxVisitors && now.Sub(w.swept) >= time.Second {
			w.swept = now
			for k, a := range w.visitors {
				if refill(a, now, w.Burst, w.Every) >= float64(w.Burst) {
					delete(w.visitors, k)
				}
			}
		}
		if len(w.visitors) >= maxVisitors {
			return false // a flood from everywhere: no new addresses for newcomers
		}
		a = &allowance{tokens: float64(w.Burst), when: now}
		w.visitors[p] = a
	}
	if w.all.when.IsZero() {
		w.all = allowance{tokens: globalBurst, when: now}
	}
	if !take(a, now, w.Burst, w.Every) {
		return false
	}
	return take(&w.all, now, globalBurst, globalEvery)
}

// take refills a and takes one visit from it if there is one.
func take(a *allowance, now time.Time, burst int, every time.Duration) bool {
	a.tokens, a.when = refill(a, now, burst, every), now
	if a.tokens < 1 {
		return false
	}
	a.tokens--
	return true
}

func refill(a *allowance, now time.Time, burst int, every time.Duration) float64 {
	return min(float64(burst), a.tokens+float64(now.Sub(a.when))/float64(every))
}

// visitorKey groups IPv6 visitors by /64: one host usually has a whole one.
func visitorKey(a netip.Addr) netip.Prefix {
	bits := 32
	if a.Is6() {
		bits = 64
	}
	p, _ := a.Prefix(bits)
	return p
}

const robots = "User-agent: *\nDisallow: /\n"

var page = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="robots" content="noindex,nofollow">
<meta name="robots" content="noarchive">
<meta name="no-email-collection" content="/">
<title>Contact</title>
</head>
<body>
<p>Terms of use: robots, spiders and address harvesters may not visit this
page or collect the addresses on it. The address below is given to this
visit only and recorded with the visitor's IP address and the time.</p>
<div style="display:none"><a href="mailto:{{.}}">{{.}}</a></div>
<!-- {{.}} -->
</body>
</html>
`))

// ServeHTTP implements http.Handler.
func (w *Web) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/robots.txt" {
		rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprint(rw, robots)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		rw.Header().Set("Allow", "GET, HEAD")
		http.Error(rw, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		http.Error(rw, "bad request", http.StatusBadRequest)
		return
	}
	visitor := ap.Addr().Unmap()
	now := w.now()
	if !w.allow(visitorKey(visitor), now) {
		rw.Header().Set("Retry-After", fmt.Sprint(int(w.Every.Seconds()+0.5)))
		http.Error(rw, "too many requests", http.StatusTooManyRequests)
		return
	}
	h := store.Harvest{Visitor: visitor.String(), UserAgent: truncate(r.UserAgent(), 200), Time: now, Expires: now.Add(w.Keep)}
	for range 5 {
		h.Address = NewLocalPart() + "@" + strings.ToLower(strings.TrimSuffix(w.Domain, "."))
		if err = w.Store.PutHarvest(r.Context(), h); !errors.Is(err, store.ErrExists) {
			break
		}
	}
	if err != nil {
		w.Log.Error("harvester page: recording the visit failed", "visitor", h.Visitor, "err", err)
		http.Error(rw, "temporarily unavailable", http.StatusServiceUnavailable)
		return
	}
	w.Log.Info("harvester page visit", "visitor", h.Visitor, "user_agent", h.UserAgent, "address", h.Address)
	rw.Header().Set("Content-Type", "text/html; charset=utf-8")
	rw.Header().Set("Cache-Control", "no-store")
	rw.Header().Set("X-Robots-Tag", "noindex, nofollow")
	page.Execute(rw, h.Address)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// NewLocalPart returns a random local part that reads like a name
// ("dalemi.rokus"): harvesters keep such addresses, and about 2^40 of
// them make guessing one impossible.
func NewLocalPart() string {
	const cons, vows = "bcdfghjklmnprstvz", "aeiou"
	pick := func(s string) byte {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(s))))
		if err != nil {
			panic(err) // crypto/rand does not fail on Linux
		}
		return s[n.Int64()]
	}
	var b strings.Builder
	for w := range 2 {
		if w > 0 {
			b.WriteByte('.')
		}
		for range 3 {
			b.WriteByte(pick(cons))
			b.WriteByte(pick(vows))
		}
		b.WriteByte(pick(cons))
	}
	return b.String()
}

// ServeWeb serves w on ln until ctx is done.
func ServeWeb(ctx context.Context, ln net.Listener, w *Web) error {
	srv := &http.Server{
		Handler:           w,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(w.Log.Handler(), slog.LevelWarn),
	}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("traps.web_listen: %w", err)
	}
	return nil
}
