package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/greypit/greypit/internal/testenv"
)

// scrape fetches and strictly parses greypit's /metrics.
func scrape(t *testing.T, addr string) map[string]testenv.Series {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("scrape: %s %q\n%s", resp.Status, resp.Header.Get("Content-Type"), body)
	}
	m, err := testenv.ParseExposition(string(body))
	if err != nil {
		t.Fatalf("scrape: %v\n%s", err, body)
	}
	promtoolCheck(t, body)
	return m
}

// promtoolCheck runs Prometheus' own linter on a scrape.
func promtoolCheck(t *testing.T, body []byte) {
	t.Helper()
	cmd := exec.Command(testenv.LookBin("promtool"), "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s\n%s", err, out, body)
	}
}

// value returns a series' value, 0 when absent (a labelled child is made
// on its first use).
func value(m map[string]testenv.Series, key string) float64 { return m[key].Value }

// White, grey (new, early, passed and handed off) and black sessions
// through the real binary move the scraped counters by exactly what they
// did; the gauges are back at zero when the sessions are over. Every
// scrape passes the strict parser and `promtool check metrics`.
func TestMetrics(t *testing.T) {
	testenv.Require(t, "promtool")
	pf := backend(t, testenv.ModeProxy)
	maddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	g := startGreypit(t, greypitOpts{backend: pf.Addr(), allow: []string{"127.0.0.5"}, block: []string{"127.0.0.66"},
		sets: []string{"metrics.listen=" + maddr, "tarpit.stutter=2ms"}})
	before := scrape(t, maddr)
	if s, ok := before[`greypit_build_info{goversion="`+goVersion(t)+`",version="dev"}`]; !ok || s.Value != 1 {
		t.Errorf("no build info for %s: %v", goVersion(t), before)
	}

	// White: one splice.
	if r := g.swaks("127.0.0.5", "alice@example.test", "white"); r.Code != 0 {
		t.Fatalf("white:\n%s", r)
	}
	// Grey: new, early, then a pass handed off.
	expectGreylisted(t, g.swaks("127.0.7.7", "bob@example.test", "grey 1"), "new")
	first := time.Now()
	expectGreylisted(t, g.swaks("127.0.7.7", "bob@example.test", "grey 2"), "early")
	waitUntil(first.Add(passDelay))
	if r := g.swaks("127.0.7.7", "bob@example.test", "grey 3"); r.Code != 0 {
		t.Fatalf("passing retry:\n%s", r)
	}
	pf.WaitMessages(t, 2, 20*time.Second)
	// An open grey session shows in the gauge.
	c := testenv.DialSMTP(t, "127.0.8.8:0", g.Addr)
	c.Expect(220, "")
	if v := value(scrape(t, maddr), `greypit_sessions_active{path="grey"}`); v != 1 {
		t.Errorf("active grey sessions with one open: %v", v)
	}
	c.Expect(221, "QUIT")
	c.Close()
	// Black: tarpitted.
	tarpitFinal(t, g, "127.0.0.66")
	g.WaitVerdicts(6)
	after := scrape(t, maddr)

	for key, want := range map[string]float64{
		`greypit_sessions_total{outcome="spliced",path="white"}`:   1,
		`greypit_sessions_total{outcome="greylisted",path="grey"}`: 2,
		`greypit_sessions_total{outcome="quit",path="grey"}`:       1,
		`greypit_sessions_total{outcome="handoff",path="grey"}`:    1,
		`greypit_greylist_total{outcome="new"}`:                    1,
		`greypit_greylist_total{outcome="early"}`:                  1,
		`greypit_greylist_total{outcome="pass"}`:                   1,
		`greypit_greylist_pass_delay_seconds_count{}`:              1,
		`greypit_backend_sessions_total{kind="splice"}`:            1,
		`greypit_backend_sessions_total{kind="handoff"}`:           1,
		`greypit_trap_hits_total{}`:                                0,
	} {
		if d := value(after, key) - value(before, key); d != want {
			t.Errorf("%s moved by %v, want %v", key, d, want)
		}
	}
	var black float64
	for k, s := range after {
		if strings.HasPrefix(k, `greypit_sessions_total{`) && strings.Contains(k, `path="black"`) {
			black += s.Value - value(before, k)
		}
	}
	if black != 1 {
		t.Errorf("black sessions moved by %v, want 1", black)
	}
	if d := value(after, `greypit_greylist_pass_delay_seconds_sum{}`); d < passDelay.Seconds() || d > passDelay.Seconds()+30 {
		t.Errorf("greylist delay sum %v, want about %v", d, passDelay.Seconds())
	}
	if v := value(after, `greypit_greylist_pass_delay_seconds_bucket{le="60"}`); v != 1 {
		t.Errorf("the %v delay is not in the le=60 bucket: %v", passDelay, v)
	}
	if v := value(after, `greypit_tarpit_held_seconds_total{}`); v <= 0 {
		t.Errorf("tarpit held seconds %v", v)
	}
	if v := value(after, `greypit_tarpit_dripped_bytes_total{}`); v < float64(len("220 ")) {
		t.Errorf("tarpit dripped bytes %v", v)
	}
	for _, p := range []string{"white", "grey", "black"} {
		if v := value(after, `greypit_sessions_active{path="`+p+`"}`); v != 0 {
			t.Errorf("active %s sessions %v after all ended", p, v)
		}
	}
	for k, s := range after {
		if (strings.HasPrefix(k, "greypit_backend_errors_total") || strings.HasPrefix(k, "greypit_store_errors_total")) && s.Value != 0 {
			t.Errorf("%s = %v", k, s.Value)
		}
	}
}

// goVersion is the toolchain's version, which built the binary.
func goVersion(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOVERSION").Output()
	if err != nil {
		t.Fatalf("go env GOVERSION: %v", err)
	}
	return strings.TrimSpace(string(out))
}
