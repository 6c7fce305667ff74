package api

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/greypit/greypit/internal/classify"
	"github.com/greypit/greypit/internal/control"
	"github.com/greypit/greypit/internal/feedback"
	"github.com/greypit/greypit/internal/metrics"
	"github.com/greypit/greypit/internal/store"
)

// newAdmin serves the whole endpoint on a real store, with the same
// control.Local the daemon's control socket uses.
func newAdmin(t *testing.T) (*httptest.Server, *store.Bolt, *metrics.History) {
	t.Helper()
	st, cl := testStore(t)
	ops := &control.Local{Store: st, Classifier: cl, PrefixV4: 24, PrefixV6: 64}
	h := metrics.NewHistory(time.Minute, 3)
	s := &Server{Token: token, Log: slog.New(slog.DiscardHandler),
		Applier: &feedback.Applier{Store: st, Classifier: cl, BlackTTL: time.Hour, WhiteTTL: time.Hour},
		Admin: &Admin{Ops: ops, History: h, PrefixV4: 24, PrefixV6: 64,
			Explain: func(w control.Why) string { return "explained " + w.Address }}}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return ts, st, h
}

func do(t *testing.T, method, url, auth, body string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	code, _, body := do(t, "GET", url, "Bearer "+token, "")
	if code != 200 {
		t.Fatalf("GET %s: %d %s", url, code, body)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("GET %s: %v\n%s", url, err, body)
	}
}

func putBlack(t *testing.T, st store.Store, key, source string) {
	t.Helper()
	now := time.Now()
	if err := st.Put(context.Background(), store.Entry{Kind: store.Black, Key: key, Source: source, Reason: "test", Created: now, Updated: now}); err != nil {
		t.Fatal(err)
	}
}

// Without the token every admin endpoint answers 401 and changes
// nothing; the dashboard's files need no token and carry no data.
func TestAdminAuth(t *testing.T) {
	ts, st, _ := newAdmin(t)
	putBlack(t, st, "192.0.2.7", "db")
	for _, ep := range []struct{ method, path string }{
		{"GET", "/v1/stats"}, {"GET", "/v1/networks/top"}, {"GET", "/v1/hosts/192.0.2.7"},
		{"POST", "/v1/hosts/192.0.2.7/release"}, {"GET", "/v1/hosts/not-an-ip"},
	} {
		for _, auth := range []string{"", "Bearer wrong-token-wrong-token", "Basic " + token, "Bearer " + token + "x"} {
			code, h, body := do(t, ep.method, ts.URL+ep.path, auth, "")
			if code != http.StatusUnauthorized || !strings.Contains(body, `"error"`) || h.Get("WWW-Authenticate") == "" {
				t.Errorf("%s %s with %q: %d %s, want 401", ep.method, ep.path, auth, code, body)
			}
			if strings.Contains(body, "192.0.2.7") || strings.Contains(body, "sessions") {
				t.Errorf("%s %s with %q leaks data: %s", ep.method, ep.path, auth, body)
			}
		}
	}
	if _, err := st.Get(context.Background(), store.Black, "192.0.2.7"); err != nil {
		t.Fatalf("an unauthorised release changed the store: %v", err)
	}
	for _, p := range []string{"/", "/assets/app.js", "/assets/app.css", "/assets/uPlot.iife.min.js", "/assets/uPlot.min.css", "/assets/uPlot.LICENSE"} {
		code, h, body := do(t, "GET", ts.URL+p, "", "")
		if code != 200 || len(body) < 100 {
			t.Errorf("GET %s without a token: %d, %d bytes", p, code, len(body))
		}
		if !strings.Contains(h.Get("Content-Security-Policy"), "script-src 'self'") || h.Get("X-Frame-Options") != "DENY" {
			t.Errorf("GET %s: headers %v", p, h)
		}
		if strings.Contains(body, "192.0.2.7") {
			t.Errorf("GET %s carries data", p)
		}
	}
	if code, h, body := do(t, "GET", ts.URL+"/", "", ""); code != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/html") || !strings.Contains(body, `id="login-form"`) {
		t.Errorf("index: %d %q", code, h.Get("Content-Type"))
	}
	if code, _, _ := do(t, "GET", ts.URL+"/nothing-here", "", ""); code != 404 {
		t.Errorf("unknown page: %d, want 404", code)
	}
	// The feedback endpoint still refuses GET rather than serving a page.
	if code, _, _ := do(t, "GET", ts.URL+"/v1/feedback", "Bearer "+token, ""); code != http.StatusMethodNotAllowed {
		t.Errorf("GET /v1/feedback: %d, want 405", code)
	}
}

func TestAdminBadInput(t *testing.T) {
	ts, st, _ := newAdmin(t)
	putBlack(t, st, "192.0.2.7", "db")
	for _, tc := range []struct{ method, path, body, want string }{
		{"GET", "/v1/hosts/not-an-ip", "", `"\"not-an-ip\" is not an IP address"`},
		{"GET", "/v1/hosts/192.0.2.300", "", "is not an IP address"},
		{"GET", "/v1/hosts/fe80::1%25eth0", "", "is not an IP address"},
		{"POST", "/v1/hosts/192.0.2.0%2F24/release", "", "is not an IP address"},
		{"POST", "/v1/hosts/banana/release", "", "is not an IP address"},
		{"POST", "/v1/hosts/192.0.2.7/release", "{", "bad JSON body"},
		{"POST", "/v1/hosts/192.0.2.7/release", `{"white":"yes"}`, "bad JSON body"},
		{"GET", "/v1/networks/top?since=yesterday", "", `since \"yesterday\"`},
		{"GET", "/v1/networks/top?since=-1h", "", "positive duration"},
		{"GET", "/v1/networks/top?top=0", "", `top \"0\"`},
		{"GET", "/v1/networks/top?top=1001", "", "from 1 to 1000"},
	} {
		code, h, body := do(t, tc.method, ts.URL+tc.path, "Bearer "+token, tc.body)
		var e struct{ Error string }
		if code != 400 || json.Unmarshal([]byte(body), &e) != nil || !strings.Contains(body, tc.want) || h.Get("Content-Type") != "application/json" {
			t.Errorf("%s %s %q: %d %s, want 400 with %s", tc.method, tc.path, tc.body, code, body, tc.want)
		}
	}
	if _, err := st.Get(context.Background(), store.Black, "192.0.2.7"); err != nil {
		t.Fatalf("a bad release changed the store: %v", err)
	}
}

// Lookup says what `db why` says; release deletes the host's black entry
// and the covering prefix that decided, and with white whitelists it.
func TestAdminHostRelease(t *testing.T) {
	ts, st, _ := newAdmin(t)
	ctx := context.Background()
	putBlack(t, st, "192.0.2.7", "trap")
	putBlack(t, st, "192.0.2.0/24", "networks")
	var h Host
	getJSON(t, ts.URL+"/v1/hosts/192.0.2.7", &h)
	if h.Why.Address != "192.0.2.7" || h.Why.Decision.Path != classify.Black || h.Text != "explained 192.0.2.7" {
		t.Fatalf("lookup: %+v", h)
	}
	var grey Host
	getJSON(t, ts.URL+"/v1/hosts/::ffff:198.51.100.1", &grey)
	if grey.Why.Address != "198.51.100.1" || grey.Why.Decision.Path != classify.Grey {
		t.Fatalf("mapped grey lookup: %+v", grey)
	}

	code, _, body := do(t, "POST", ts.URL+"/v1/hosts/192.0.2.7/release", "Bearer "+token, "")
	var rel Release
	if code != 200 || json.Unmarshal([]byte(body), &rel) != nil {
		t.Fatalf("release: %d %s", code, body)
	}
	if len(rel.Deleted) != 2 || rel.White || rel.Why.Decision.Path != classify.Grey || rel.Text != "explained 192.0.2.7" {
		t.Fatalf("release: %s", body)
	}
	for _, k := range []string{"192.0.2.7", "192.0.2.0/24"} {
		if _, err := st.Get(ctx, store.Black, k); err == nil {
			t.Errorf("black %s still there", k)
		}
	}
	// Releasing a host that is not black deletes nothing and says so.
	code, _, body = do(t, "POST", ts.URL+"/v1/hosts/192.0.2.7/release", "Bearer "+token, "")
	if code != 200 || !strings.Contains(body, `"deleted":[]`) {
		t.Errorf("second release: %d %s", code, body)
	}
	// With white, the host is also whitelisted by an operator entry.
	putBlack(t, st, "192.0.2.8", "feedback:http")
	code, _, body = do(t, "POST", ts.URL+"/v1/hosts/192.0.2.8/release", "Bearer "+token, `{"white":true,"reason":"our customer"}`)
	rel = Release{}
	if code != 200 || json.Unmarshal([]byte(body), &rel) != nil || !rel.White || rel.Why.Decision.Path != classify.White {
		t.Fatalf("release white: %d %s", code, body)
	}
	if e, err := st.Get(ctx, store.White, "192.0.2.8"); err != nil || e.Reason != "our customer" {
		t.Errorf("white entry %+v %v", e, err)
	}
}

// Stats carry the registry's counters (they are process-wide, so the
// test compares differences), the pass-delay distribution and the
// history ring ending with the live sample.
func TestAdminStats(t *testing.T) {
	ts, _, hist := newAdmin(t)
	var before Stats
	getJSON(t, ts.URL+"/v1/stats", &before)
	if len(before.History) != 1 || before.Every != 60 {
		t.Fatalf("history before any sample: %d samples, every %v", len(before.History), before.Every)
	}
	hist.Add(metrics.Take(time.Now()))
	metrics.Sessions.With("grey", "greylisted").Add(3)
	metrics.Sessions.With("black", "tarpit").Inc()
	metrics.TarpitHeld.Add(12.5)
	metrics.TrapHits.Inc()
	metrics.GreylistDelay.Observe(100) // le 180
	metrics.GreylistDelay.Observe(1e6) // above the last bound
	var s Stats
	getJSON(t, ts.URL+"/v1/stats", &s)
	if d := s.Now.Sessions["grey"] - before.Now.Sessions["grey"]; d != 3 {
		t.Errorf("grey sessions moved by %d", d)
	}
	if d := s.Now.Sessions["black"] - before.Now.Sessions["black"]; d != 1 {
		t.Errorf("black sessions moved by %d", d)
	}
	if d := s.Now.TarpitSeconds - before.Now.TarpitSeconds; d != 12.5 {
		t.Errorf("tarpit seconds moved by %v", d)
	}
	if d := s.Now.TrapHits - before.Now.TrapHits; d != 1 {
		t.Errorf("trap hits moved by %d", d)
	}
	found := false
	for _, pc := range s.Sessions {
		if pc.Path == "grey" && pc.Outcome == "greylisted" && pc.Count >= 3 {
			found = true
		}
	}
	if !found {
		t.Errorf("no grey/greylisted count in %+v", s.Sessions)
	}
	d, b := s.GreylistDelay, before.GreylistDelay
	if len(d.Upper) != len(d.Counts) || d.Upper[1] != 180 || d.Counts[1]-b.Counts[1] != 1 || d.Over-b.Over != 1 || d.Count-b.Count != 2 {
		t.Errorf("delays %+v, before %+v", d, b)
	}
	if len(s.History) != 2 || !s.History[1].Time.Equal(s.Now.Time) || s.History[1].Sessions["grey"]-s.History[0].Sessions["grey"] != 3 {
		t.Errorf("history %+v", s.History)
	}
}

// The networks report groups the session history like `greypit report
// networks`.
func TestAdminTopNetworks(t *testing.T) {
	ts, st, _ := newAdmin(t)
	now := time.Now()
	err := st.AddEvents(context.Background(), []store.Event{
		{Time: now.Add(-time.Hour), Client: "192.0.2.7", Path: "black", Outcome: "tarpit", Tarpit: 30},
		{Time: now.Add(-time.Hour), Client: "192.0.2.9", Path: "black", Outcome: "trap-hit", Trap: true},
		{Time: now.Add(-time.Minute), Client: "198.51.100.1", Path: "black", Outcome: "tarpit", Tarpit: 5},
		{Time: now.Add(-time.Minute), Client: "203.0.113.5", Path: "grey", Outcome: "greylisted"},
		{Time: now.Add(-48 * time.Hour), Client: "203.0.113.9", Path: "black", Outcome: "tarpit"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Sessions, Blocked int
		Traps             int `json:"trap_hits"`
		ByNetwork         []struct {
			Key            string
			Hosts, Blocked int
			Traps          int     `json:"trap_hits"`
			Tarpit         float64 `json:"tarpit_seconds"`
		} `json:"by_network"`
	}
	getJSON(t, ts.URL+"/v1/networks/top", &r)
	if r.Sessions != 3 || r.Blocked != 2 || r.Traps != 1 || len(r.ByNetwork) != 2 {
		t.Fatalf("report %+v", r)
	}
	if n := r.ByNetwork[0]; n.Key != "192.0.2.0/24" || n.Hosts != 2 || n.Blocked != 1 || n.Traps != 1 || n.Tarpit != 30 {
		t.Errorf("first network %+v", n)
	}
	getJSON(t, ts.URL+"/v1/networks/top?since=3d&top=1", &r)
	if r.Blocked != 3 || len(r.ByNetwork) != 1 {
		t.Errorf("3d top 1: %+v", r)
	}
}
