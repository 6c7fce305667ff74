package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/greypit/greypit/internal/testenv"
)

const dashToken = "dashboard-test-token-0123456789"

// browser starts a private headless Chromium; the context runs its tab.
// Console errors and uncaught exceptions (a CSP violation is one) are
// collected in errs.
func browser(t *testing.T) (ctx context.Context, errs func() []string) {
	t.Helper()
	testenv.Require(t, "chromium")
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(testenv.LookBin("chromium")),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox, // tests run as root
		chromedp.Headless,
		chromedp.DisableGPU,
		chromedp.Flag("no-proxy-server", true),
		chromedp.WindowSize(1280, 1600),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	var mu sync.Mutex
	var got []string
	msgs := chromedp.Console(ctx) // starts the browser
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			// The requests the test makes fail on purpose log a 400 or 401.
			if (m.Type == chromedp.ConsoleError || m.IsException()) && !refusedOnPurpose.MatchString(m.Text) {
				mu.Lock()
				got = append(got, m.String())
				mu.Unlock()
			}
		}
	}()
	return ctx, func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), got...) }
}

var refusedOnPurpose = regexp.MustCompile(`^Failed to load resource: the server responded with a status of 40[01] `)

// do runs browser actions with a bound.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// eval runs one value-returning browser action with a bound.
func eval[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(tctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// pageState is what the dashboard shows, read from its DOM.
type pageState struct {
	DashHidden  bool              `json:"dashHidden"`
	Sums        map[string]string `json:"sums"`
	TarpitSecs  string            `json:"tarpitSecs"`
	Canvases    int               `json:"canvases"`
	TrafficSums []float64         `json:"trafficSums"` // per path, summed over the chart's data
	Delays      []float64         `json:"delays"`
	Samples     int               `json:"samples"`
	Networks    [][]string        `json:"networks"`
	Body        string            `json:"body"`
}

const readPage = `(() => {
  const t = (id) => document.getElementById(id).textContent;
  const s = {dashHidden: document.getElementById("dash").hidden, sums: {},
    tarpitSecs: document.getElementById("sum-tarpit").dataset.seconds || "",
    canvases: document.querySelectorAll("#dash .uplot canvas").length,
    trafficSums: [], delays: [], samples: 0,
    networks: [...document.querySelectorAll("#networks tbody tr")].map((tr) => [...tr.cells].map((c) => c.textContent)),
    body: document.body.innerText};
  for (const k of ["white", "grey", "black", "none", "passed", "traps", "tarpit-bytes"]) s.sums[k] = t("sum-" + k);
  if (typeof charts !== "undefined" && charts.traffic) {
    s.samples = charts.traffic.data[0].length;
    s.trafficSums = charts.traffic.data.slice(1).map((ys) => ys.reduce((a, b) => a + b, 0));
    s.delays = Array.from(charts.delays.data[1]);
  }
  return s;
})()`

func (p pageState) String() string {
	return fmt.Sprintf("dash hidden %v, sums %v, tarpit %q, %d canvases, traffic %v over %d samples, delays %v, networks %q\n%s",
		p.DashHidden, p.Sums, p.TarpitSecs, p.Canvases, p.TrafficSums, p.Samples, p.Delays, p.Networks, p.Body)
}

// waitPage polls the DOM until ok accepts it (the page refreshes every
// few seconds; the session history reaches the store within a second).
func waitPage(t *testing.T, ctx context.Context, what string, ok func(pageState) string) pageState {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for {
		p := eval(t, ctx, "reading the page", chromedp.Evaluate[pageState](readPage))
		why := ok(p)
		if why == "" {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s\npage: %s", what, why, p)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// The dashboard in a real Chromium: without the token it shows a login
// form and no data (the API answers the page's own request with 401);
// logged in, its numbers, charts and top-networks table match real SMTP
// traffic (a greylisted host that passes, a spamtrap hit, a tarpitted
// black host); the host lookup shows `db why` and Release takes the host
// off the black list in the store.
func TestDashboard(t *testing.T) {
	pf := backend(t, testenv.ModeProxy)
	ctx, consoleErrors := browser(t)
	apiAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	trapFile := filepath.Join(t.TempDir(), "traps.txt")
	os.WriteFile(trapFile, []byte("bait@example.test\n"), 0o644)
	g := startGreypit(t, greypitOpts{backend: pf.Addr(),
		extra: fmt.Sprintf("\n[traps]\nfiles = [%q]\ndomains = [\"example.test\"]\n", trapFile),
		sets:  []string{"api.listen=" + apiAddr, "api.token=" + dashToken, "api.sample_every=1s", "tarpit.stutter=2ms"}})
	url := "http://" + apiAddr + "/"

	// Traffic: a grey host deferred, a grey host hitting a trap (and
	// tarpitted for the rest of that session), the same host back and
	// tarpitted as black, and the grey host's retry passing.
	expectGreylisted(t, g.swaks("127.0.7.7", "bob@example.test", "grey 1"), "new")
	first := time.Now()
	g.swaks("127.0.0.66", "bait@example.test", "to a trap")
	if w := why(t, g, "127.0.0.66"); !strings.Contains(w, "127.0.0.66: BLACK") {
		t.Fatalf("trap hit did not blacklist:\n%s", w)
	}
	tarpitFinal(t, g, "127.0.0.66")
	waitUntil(first.Add(passDelay))
	if r := g.swaks("127.0.7.7", "bob@example.test", "grey 2"); r.Code != 0 {
		t.Fatalf("passing retry:\n%s", r)
	}
	pf.WaitMessages(t, 1, 20*time.Second)
	verdicts := g.WaitVerdicts(4)
	want := map[string]int{}
	var held float64
	blackFrom66 := 0
	pathRe, heldRe := regexp.MustCompile(` path=(\w+)`), regexp.MustCompile(` held=([0-9.]+m?s)`)
	for _, v := range verdicts {
		p := pathRe.FindStringSubmatch(v)[1]
		want[p]++
		if m := heldRe.FindStringSubmatch(v); m != nil {
			d, _ := time.ParseDuration(m[1])
			held += d.Seconds()
		}
		if p == "black" && strings.Contains(v, "client=127.0.0.66") {
			blackFrom66++
		}
	}
	if len(verdicts) != 4 || want["black"] < 1 || want["grey"] < 2 || held <= 0 {
		t.Fatalf("traffic did not go as planned (%v, held %v):\n%s", want, held, strings.Join(verdicts, "\n"))
	}

	t.Run("without the token", func(t *testing.T) {
		do(t, ctx, "opening the dashboard", chromedp.Navigate(url), chromedp.WaitVisible(chromedp.ID("login-form")))
		status := eval(t, ctx, "fetching without the token", chromedp.Evaluate[int](`fetch("/v1/stats").then((r) => r.status)`, chromedp.EvalAwaitPromise))
		html := eval(t, ctx, "reading the page", chromedp.OuterHTML(chromedp.CSS("html")))
		if status != 401 {
			t.Errorf("the page's own request without the token: %d, want 401", status)
		}
		p := waitPage(t, ctx, "no data", func(pageState) string { return "" })
		if !p.DashHidden || p.Sums["grey"] != "–" || p.Canvases != 0 || len(p.Networks) != 0 || strings.Contains(html, "127.0.") {
			t.Errorf("the page shows data without the token: %s", p)
		}
		// A wrong token is refused and shows nothing either.
		do(t, ctx, "logging in with a wrong token",
			chromedp.SendKeys(chromedp.ID("token"), "wrong-token-wrong-token"),
			chromedp.Click(chromedp.CSS("#login-form button")))
		waitPage(t, ctx, "refused login", func(p pageState) string {
			if !strings.Contains(p.Body, "Wrong token.") {
				return "no wrong-token message"
			}
			if !p.DashHidden || p.Sums["grey"] != "–" {
				return "data shown after a wrong token"
			}
			return ""
		})
	})

	t.Run("numbers match the traffic", func(t *testing.T) {
		do(t, ctx, "logging in",
			chromedp.Navigate(url),
			chromedp.WaitVisible(chromedp.ID("login-form")),
			chromedp.SendKeys(chromedp.ID("token"), dashToken),
			chromedp.Click(chromedp.CSS("#login-form button")),
			chromedp.WaitVisible(chromedp.ID("dash")))
		p := waitPage(t, ctx, "dashboard numbers", func(p pageState) string {
			for path, key := range map[string]string{"white": "white", "grey": "grey", "black": "black", "none": "none"} {
				if p.Sums[key] != strconv.Itoa(want[path]) {
					return fmt.Sprintf("%s sessions %q, want %d", path, p.Sums[key], want[path])
				}
			}
			if p.Sums["passed"] != "1" || p.Sums["traps"] != "1" {
				return "passed/trap hits not 1"
			}
			if s, _ := strconv.ParseFloat(p.TarpitSecs, 64); s < held-0.01 || s > held+0.01 {
				return fmt.Sprintf("tarpit seconds %q, want %.3f (the verdicts' held)", p.TarpitSecs, held)
			}
			if p.Canvases < 4 {
				return fmt.Sprintf("%d chart canvases, want 4", p.Canvases)
			}
			// The traffic chart's per-interval counts add up to the totals.
			if len(p.TrafficSums) != 4 || int(p.TrafficSums[1]) != want["grey"] || int(p.TrafficSums[2]) != want["black"] || p.Samples < 2 {
				return "traffic chart does not add up"
			}
			// One pass delay of about 3s: the first bucket (le 60s).
			if len(p.Delays) == 0 || p.Delays[0] != 1 {
				return "greylist delay chart has no pass in its first bucket"
			}
			if len(p.Networks) == 0 {
				return "no top networks"
			}
			n := p.Networks[0]
			if n[0] != "127.0.0.0/24" || n[3] != strconv.Itoa(blackFrom66) || n[5] != "1" || n[2] != "1" {
				return fmt.Sprintf("top network %q, want 127.0.0.0/24 with 1 host, %d blocked, 1 trap hit", n, blackFrom66)
			}
			return ""
		})
		if strings.Contains(p.Body, "update failed") {
			t.Errorf("page reports a failed update: %s", p.Body)
		}
		if f := os.Getenv("GREYPIT_DASHBOARD_SCREENSHOT"); f != "" { // to look at it
			os.WriteFile(f, eval(t, ctx, "screenshot", chromedp.FullScreenshot(100)), 0o644)
		}
	})

	t.Run("host lookup and release", func(t *testing.T) {
		do(t, ctx, "bad address",
			chromedp.SetValue(chromedp.ID("host-addr"), "not-an-address"),
			chromedp.Click(chromedp.CSS("#host-form button")))
		waitPage(t, ctx, "bad address error", func(p pageState) string {
			if !strings.Contains(p.Body, `"not-an-address" is not an IP address`) {
				return "no error for a bad address"
			}
			return ""
		})
		do(t, ctx, "looking up the black host",
			chromedp.SetValue(chromedp.ID("host-addr"), "127.0.0.66"),
			chromedp.Click(chromedp.CSS("#host-form button")),
			chromedp.WaitVisible(chromedp.ID("host-release")))
		path := eval(t, ctx, "host path", chromedp.Text(chromedp.ID("host-path")))
		text := eval(t, ctx, "host text", chromedp.TextContent(chromedp.ID("host-text")))
		cli := why(t, g, "127.0.0.66")
		if path != "black" || strings.TrimSpace(text) != strings.TrimSpace(cli) {
			t.Fatalf("lookup shows %q:\n%s\nwant what db why says:\n%s", path, text, cli)
		}
		do(t, ctx, "pressing Release",
			chromedp.Click(chromedp.ID("host-release")),
			chromedp.Poll[chromedp.Void](`document.getElementById("host-msg").textContent.startsWith("Released")`, chromedp.WithPollingTimeout(20*time.Second)))
		msg := eval(t, ctx, "release message", chromedp.Text(chromedp.ID("host-msg")))
		path = eval(t, ctx, "host path", chromedp.Text(chromedp.ID("host-path")))
		if !strings.Contains(msg, "deleted 127.0.0.66") || path != "grey" {
			t.Errorf("after release: %q, path %q", msg, path)
		}
		if w := why(t, g, "127.0.0.66"); strings.Contains(w, "BLACK") || !strings.Contains(w, "127.0.0.66: GREY") {
			t.Errorf("db why after release:\n%s", w)
		}
		if out, _ := g.DB("list", "-type", "black"); strings.Contains(out, "127.0.0.66") {
			t.Errorf("db list -type black after release:\n%s", out)
		}
		// The released host is greylisted now, not tarpitted.
		expectGreylisted(t, g.swaks("127.0.0.66", "bob@example.test", "after release"), "released host")
		// `greypit db release` is the same operation from the CLI.
		g.DB("add", "-type", "black", "-reason", "by hand", "127.0.0.77")
		if out, code := g.DB("release", "-white", "127.0.0.77"); code != 0 || !strings.Contains(out, "released 127.0.0.77: deleted black 127.0.0.77, whitelisted; now WHITE") {
			t.Errorf("db release (exit %d):\n%s", code, out)
		}
	})

	t.Run("log out", func(t *testing.T) {
		do(t, ctx, "logging out", chromedp.Click(chromedp.ID("logout")), chromedp.WaitVisible(chromedp.ID("login-form")))
		stored := eval(t, ctx, "stored token", chromedp.Evaluate[string](`sessionStorage.getItem("greypit.token") || ""`))
		do(t, ctx, "reloading", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("login-form")))
		p := waitPage(t, ctx, "logged out", func(pageState) string { return "" })
		if stored != "" || !p.DashHidden || p.Sums["grey"] != "–" {
			t.Errorf("after log out: token %q, page %s", stored, p)
		}
	})
	if errs := consoleErrors(); len(errs) > 0 {
		t.Errorf("browser errors:\n%s", strings.Join(errs, "\n"))
	}
}
