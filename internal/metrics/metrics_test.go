package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/greypit/greypit/internal/testenv"
)

func scrape(t *testing.T, r *Registry) (string, map[string]testenv.Series) {
	t.Helper()
	var b strings.Builder
	if err := r.Write(&b); err != nil {
		t.Fatal(err)
	}
	m, err := testenv.ParseExposition(b.String())
	if err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	return b.String(), m
}

func TestExposition(t *testing.T) {
	r := &Registry{}
	c := r.NewCounter("t_plain_total", "A counter.\nSecond line with a \\ backslash.")
	cv := r.NewCounterVec("t_sessions_total", "By path.", "path", "outcome")
	g := r.NewGaugeVec("t_active", "Active.", "path")
	fc := r.NewFloatCounter("t_held_seconds_total", "Seconds.")
	h := r.NewHistogram("t_delay_seconds", "Delay.", []float64{1, 10, 100})
	r.NewGaugeFunc("t_func", "From a func.", func() float64 { return 2.5 })
	r.NewInfo("t_build_info", "Info.", []string{"version"}, func() []string { return []string{`v1 "quoted" \ back` + "\nnl"} })

	c.Add(3)
	cv.With("white", "spliced").Inc()
	cv.With("grey", "greylisted").Add(2)
	cv.With("grey", "greylisted").Inc()
	g.With("grey").Inc()
	g.With("grey").Inc()
	g.With("white").Inc()
	g.With("white").Dec()
	fc.Add(1.5)
	fc.Add(0.25)
	fc.Add(-7) // a counter never goes down
	for _, v := range []float64{0.5, 1, 5, 50, 500, 5000} {
		h.Observe(v)
	}
	text, m := scrape(t, r)
	for key, want := range map[string]float64{
		`t_plain_total{}`: 3,
		`t_sessions_total{outcome="spliced",path="white"}`:   1,
		`t_sessions_total{outcome="greylisted",path="grey"}`: 3,
		`t_active{path="grey"}`:                              2,
		`t_active{path="white"}`:                             0,
		`t_held_seconds_total{}`:                             1.75,
		`t_delay_seconds_bucket{le="1"}`:                     2, // le is inclusive
		`t_delay_seconds_bucket{le="10"}`:                    3,
		`t_delay_seconds_bucket{le="100"}`:                   4,
		`t_delay_seconds_bucket{le="+Inf"}`:                  6,
		`t_delay_seconds_count{}`:                            6,
		`t_delay_seconds_sum{}`:                              5556.5,
		`t_func{}`:                                           2.5,
		`t_build_info{version="v1 \"quoted\" \\ back\nnl"}`:  1,
	} {
		if s, ok := m[key]; !ok || s.Value != want {
			t.Errorf("%s = %v (present %v), want %v\n%s", key, s.Value, ok, want, text)
		}
	}
	for _, want := range []string{
		"# HELP t_plain_total A counter.\\nSecond line with a \\\\ backslash.\n",
		"# TYPE t_delay_seconds histogram\n",
		`t_build_info{version="v1 \"quoted\" \\ back\nnl"} 1` + "\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("exposition lacks %q:\n%s", want, text)
		}
	}
}

// The strict parser must reject what a scraper rejects, or the test above
// proves nothing.
func TestParserRejects(t *testing.T) {
	for _, bad := range []string{
		"x_total 1\n", // no HELP/TYPE
		"# HELP x_total h\n# TYPE x_total counter\nx_total{a=\"b\\q\"} 1\n",
		"# HELP x_total h\n# TYPE x_total counter\nx_total{a=\"b\"} 1\nx_total{a=\"b\"} 2\n",
		"# HELP x h\n# TYPE x counter\nx 1\n",
		"# HELP h h\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
		"# HELP h h\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n",
		"# HELP g h\n# TYPE g gauge\ng{a=\"1\"} x\n",
		"# HELP g h\n# TYPE g gauge\ng 1\n# HELP f h\n# TYPE f gauge\nf 1\ng{a=\"2\"} 1\n",
	} {
		if _, err := testenv.ParseExposition(bad); err == nil {
			t.Errorf("parser accepted %q", bad)
		}
	}
}

// Counting from many goroutines loses nothing.
func TestConcurrent(t *testing.T) {
	r := &Registry{}
	cv := r.NewCounterVec("t_total", "x", "a")
	h := r.NewHistogram("t_h", "x", []float64{1})
	fc := r.NewFloatCounter("t_f_total", "x")
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				cv.With([]string{"p", "q"}[i%2]).Inc()
				h.Observe(0.5)
				fc.Add(0.5)
			}
		}()
	}
	wg.Wait()
	_, m := scrape(t, r)
	if m[`t_total{a="p"}`].Value != 4000 || m[`t_total{a="q"}`].Value != 4000 || m[`t_h_count{}`].Value != 8000 || m[`t_f_total{}`].Value != 4000 {
		t.Errorf("lost updates: %v", m)
	}
}

func TestHandler(t *testing.T) {
	Sessions.With("white", "spliced").Inc()
	srv := httptest.NewServer(Handler(Default))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/plain; version=0.0.4; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	m, err := testenv.ParseExposition(string(body))
	if err != nil {
		t.Fatalf("%v\n%s", err, body)
	}
	if m[`greypit_sessions_total{outcome="spliced",path="white"}`].Value < 1 {
		t.Errorf("greypit_sessions_total missing:\n%s", body)
	}
	if _, ok := m[`greypit_greylist_pass_delay_seconds_count{}`]; !ok {
		t.Errorf("histogram missing:\n%s", body)
	}
	for path, want := range map[string]int{"/": 404, "/metrics/x": 404} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
	resp, err = http.Post(srv.URL+"/metrics", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 {
		t.Errorf("POST /metrics: %d, want 405", resp.StatusCode)
	}
}

// BenchmarkSession is the metrics cost of one session: the verdict's
// counter lookup, the active gauge up and down, a greylist outcome.
func BenchmarkSession(b *testing.B) {
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			a := Active.With("grey")
			a.Inc()
			Greylist.With("new").Inc()
			Sessions.With("grey", "greylisted").Inc()
			a.Dec()
		}
	})
}
