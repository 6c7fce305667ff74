package traps

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/greypit/greypit/internal/store"
)

var mailto = regexp.MustCompile(`mailto:([a-z]+\.[a-z]+@trap\.example\.net)"`)

func newWeb(t *testing.T) (*Web, *store.Bolt, *time.Time) {
	t.Helper()
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "greypit.db"), store.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := time.Now().UTC().Truncate(time.Second) // GetHarvest expires by the clock
	w := &Web{Store: st, Domain: "Trap.Example.NET.", Burst: 2, Every: time.Minute, Keep: time.Hour,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: func() time.Time { return now }}
	return w, st, &now
}

func visit(w *Web, method, path, remote string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, nil)
	r.RemoteAddr = remote
	r.Header.Set("User-Agent", "Collector/3")
	rec := httptest.NewRecorder()
	w.ServeHTTP(rec, r)
	return rec
}

func TestWebPage(t *testing.T) {
	w, st, now := newWeb(t)
	seen := map[string]bool{}
	for _, remote := range []string{"198.51.100.1:4000", "198.51.100.1:4001", "[2001:db8::1]:80", "[::ffff:198.51.100.2]:1"} {
		rec := visit(w, "GET", "/contact.html", remote)
		body := rec.Body.String()
		m := mailto.FindStringSubmatch(body)
		if rec.Code != 200 || m == nil {
			t.Fatalf("%s: %d\n%s", remote, rec.Code, body)
		}
		if seen[m[1]] {
			t.Errorf("address %s handed out twice", m[1])
		}
		seen[m[1]] = true
		for _, tag := range []string{`<meta name="robots" content="noindex,nofollow">`, `<meta name="no-email-collection" content="/">`} {
			if !strings.Contains(body, tag) {
				t.Errorf("page lacks %s", tag)
			}
		}
		h, err := st.GetHarvest(context.Background(), m[1])
		if err != nil || h.UserAgent != "Collector/3" || !h.Time.Equal(*now) || h.Visitor == "" || strings.Contains(h.Visitor, ":ffff:") {
			t.Errorf("%s: stored visit %+v, %v", remote, h, err)
		}
	}
	rec := visit(w, "GET", "/robots.txt", "198.51.100.3:1")
	if rec.Code != 200 || rec.Body.String() != "User-agent: *\nDisallow: /\n" {
		t.Errorf("robots.txt: %d %q", rec.Code, rec.Body.String())
	}
	if rec := visit(w, "POST", "/", "198.51.100.3:1"); rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", rec.Code)
	}
}

// A visitor gets Burst addresses at once, then one per Every; an IPv6
// visitor's whole /64 shares one allowance.
func TestWebRateLimit(t *testing.T) {
	w, _, now := newWeb(t)
	code := func(remote string) int { return visit(w, "GET", "/", remote).Code }
	for i, want := range []int{200, 200, 429, 429} {
		if got := code("192.0.2.7:1"); got != want {
			t.Errorf("visit %d: %d, want %d", i, got, want)
		}
	}
	rec := visit(w, "GET", "/", "192.0.2.7:1")
	if rec.Code != 429 || strings.Contains(rec.Body.String(), "@") || rec.Header().Get("Retry-After") != "60" {
		t.Errorf("limited visit: %d %q %q", rec.Code, rec.Body.String(), rec.Header().Get("Retry-After"))
	}
	if got := code("192.0.2.8:1"); got != 200 {
		t.Errorf("another visitor: %d", got)
	}
	*now = now.Add(time.Minute)
	if got, again := code("192.0.2.7:1"), code("192.0.2.7:1"); got != 200 || again != 429 {
		t.Errorf("after a minute: %d then %d, want 200 then 429", got, again)
	}
	code("[2001:db8:1:2::1]:1")
	code("[2001:db8:1:2::99]:1")
	if got := code("[2001:db8:1:2:ffff::3]:1"); got != 429 {
		t.Errorf("third visit from one /64: %d", got)
	}
	if got := code("[2001:db8:1:3::1]:1"); got != 200 {
		t.Errorf("another /64: %d", got)
	}
}

func TestNewLocalPart(t *testing.T) {
	re := regexp.MustCompile(`^[a-z]{7}\.[a-z]{7}$`)
	seen := map[string]bool{}
	for range 1000 {
		s := NewLocalPart()
		if !re.MatchString(s) || seen[s] {
			t.Fatalf("local part %q (seen before: %v)", s, seen[s])
		}
		seen[s] = true
	}
}

// Many visitors together get at most globalBurst addresses at once.
func TestWebGlobalLimit(t *testing.T) {
	w, _, now := newWeb(t)
	ok := 0
	for i := range globalBurst + 20 {
		if visit(w, "GET", "/", fmt.Sprintf("[2001:db8:%x::1]:1", i)).Code == 200 {
			ok++
		}
	}
	if ok != globalBurst {
		t.Errorf("%d of %d visitors got an address, want %d", ok, globalBurst+20, globalBurst)
	}
	*now = now.Add(globalEvery)
	if c := visit(w, "GET", "/", "192.0.2.200:1").Code; c != 200 {
		t.Errorf("after %v: %d", globalEvery, c)
	}
}
