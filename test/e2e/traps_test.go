package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/greypit/greypit/internal/store"
	"github.com/greypit/greypit/internal/testenv"
)

// trapSession runs EHLO and MAIL from src and returns the connection
// after the reply to RCPT TO:<rcpt>.
func trapSession(t *testing.T, g *Greypit, src, from, rcpt string) (*testenv.SMTPConn, testenv.Reply) {
	t.Helper()
	c := testenv.DialSMTP(t, src+":0", g.Addr)
	c.Conn.SetDeadline(time.Now().Add(60 * time.Second))
	c.Expect(220, "")
	c.Expect(250, "EHLO client.example.org")
	c.Expect(250, "MAIL FROM:<"+from+">")
	return c, c.Cmd("RCPT TO:<" + rcpt + ">")
}

// why returns `greypit db why` for addr.
func why(t *testing.T, g *Greypit, addr string) string {
	t.Helper()
	out, code := g.DB("why", addr)
	if code != 0 {
		t.Fatalf("db why %s (exit %d):\n%s", addr, code, out)
	}
	return out
}

// A grey host that mails a trap (stored, from the traps file, outside
// traps.domains, or as the sender) gets the reply any address gets, is
// blacklisted with the trap named, and the rest of its session is
// tarpitted. postmaster, abuse and the null sender's bounces are never
// trapped, and a white host mailing the same trap is delivered.
func TestTrapsSMTP(t *testing.T) {
	pf := backend(t, testenv.ModeProxy)
	trapFile := filepath.Join(t.TempDir(), "traps.txt")
	os.WriteFile(trapFile, []byte("# test traps\nlisted@example.test\n"), 0o644)
	g := startGreypit(t, greypitOpts{backend: pf.Addr(), allow: []string{"127.0.0.5"},
		extra: fmt.Sprintf("\n[traps]\nfiles = [%q]\ndomains = [\"example.test\"]\n", trapFile)})
	if out, code := g.DB("add", "-type", "spamtrap", "bait@example.test"); code != 0 {
		t.Fatalf("db add spamtrap: %s", out)
	}

	// The reply a normal recipient gets from a new grey host.
	c, normal := trapSession(t, g, "127.0.0.21", "sender@example.org", "carol@example.test")
	c.Expect(221, "QUIT")
	c.Close()
	if normal.Code != 451 {
		t.Fatalf("normal recipient: %s", normal)
	}

	t.Run("stored trap", func(t *testing.T) {
		c, r := trapSession(t, g, "127.0.0.22", "sender@example.org", "bait@example.test")
		defer c.Close()
		if r.String() != normal.String() {
			t.Errorf("trap RCPT reply %q differs from a normal recipient's %q", r, normal)
		}
		// From here on the tarpit answers: any recipient is "accepted",
		// the message is read and refused with a reason that names no trap.
		start := time.Now()
		if r := c.Cmd("RCPT TO:<dave@example.test>"); r.Code != 250 {
			t.Errorf("RCPT after the trap: %s, want the tarpit's 250", r)
		}
		if d := time.Since(start); d < 20*20*time.Millisecond {
			t.Errorf("the tarpit's reply took %v: not dripped", d)
		}
		c.Expect(354, "DATA")
		c.Send("Subject: spam\r\n\r\nbuy\r\n.")
		final := c.ReadReply()
		if final.Code != 451 || strings.Contains(final.Text(), "bait") || strings.Contains(final.Text(), "trap") {
			t.Errorf("final reply %s: want 451 without naming the trap", final)
		}
		c.Expect(221, "QUIT")
		w := why(t, g, "127.0.0.22")
		t.Logf("db why 127.0.0.22:\n%s", w)
		for _, want := range []string{"BLACK", "source trap", "spamtrap hit by 127.0.0.22", "RCPT TO <bait@example.test>", "store spamtrap bait@example.test"} {
			if !strings.Contains(w, want) {
				t.Errorf("db why lacks %q:\n%s", want, w)
			}
		}
		v := g.WaitLog(regexpMust(`msg=verdict .*client=127\.0\.0\.22 path=black`), 20*time.Second)
		if !strings.Contains(v, `rule="spamtrap: spamtrap hit`) || !strings.Contains(v, "messages=1") || !strings.Contains(v, "rcpts=1") {
			t.Errorf("verdict: %s", v)
		}
		// The next connection is tarpitted from the banner on.
		c2 := testenv.DialSMTP(t, "127.0.0.22:0", g.Addr)
		c2.Conn.SetDeadline(time.Now().Add(30 * time.Second))
		if r := c2.ReadReply(); r.Code != 220 || !strings.Contains(r.Text(), "ESMTP ready") {
			t.Errorf("banner for the trapped host: %s, want the tarpit's", r)
		}
		c2.Close()
	})

	t.Run("traps file and reload", func(t *testing.T) {
		r := g.swaks("127.0.0.23", "listed@example.test", "to a listed trap")
		if got := replyTo(r, "RCPT TO"); got != "451 "+normal.Lines[0] && got != normal.String() {
			t.Errorf("RCPT reply %q, want %q", got, normal)
		}
		if w := why(t, g, "127.0.0.23"); !strings.Contains(w, "traps.files "+trapFile+":2") {
			t.Errorf("db why:\n%s", w)
		}
		// A new address in the file is a trap once the file is re-read.
		os.WriteFile(trapFile, []byte("# test traps\nlisted@example.test\nadded@example.test\n"), 0o644)
		g.WaitLog(regexpMust(`msg="reloaded trap files" traps=2`), 20*time.Second)
		g.swaks("127.0.0.28", "added@example.test", "to an added trap")
		if w := why(t, g, "127.0.0.28"); !strings.Contains(w, "traps.files "+trapFile+":3") {
			t.Errorf("db why after the reload:\n%s", w)
		}
		// A broken file keeps the traps in force.
		os.WriteFile(trapFile, []byte("listed@example.test\nnot an address\n"), 0o644)
		g.WaitLog(regexpMust(`trap files reload failed.*not an address`), 20*time.Second)
		g.swaks("127.0.0.29", "added@example.test", "to an added trap after a bad edit")
		if w := why(t, g, "127.0.0.29"); !strings.Contains(w, "BLACK") {
			t.Errorf("db why after a broken reload:\n%s", w)
		}
		// SIGHUP re-reads the file even when size and time look unchanged
		// (the poller cannot see this edit).
		fi, _ := os.Stat(trapFile)
		fixed := "listed@example.test\nh@example.test\n"
		if int64(len(fixed)) != fi.Size() {
			t.Fatalf("test bug: %d bytes, the broken file has %d", len(fixed), fi.Size())
		}
		os.WriteFile(trapFile, []byte(fixed), 0o644)
		os.Chtimes(trapFile, fi.ModTime(), fi.ModTime())
		reloads := strings.Count(g.Log(), `msg="reloaded trap files"`)
		g.cmd.Process.Signal(syscall.SIGHUP)
		deadline := time.Now().Add(20 * time.Second)
		for strings.Count(g.Log(), `msg="reloaded trap files"`) == reloads {
			if time.Now().After(deadline) {
				t.Fatalf("no reload after SIGHUP:\n%s", g.Log())
			}
			time.Sleep(50 * time.Millisecond)
		}
		g.swaks("127.0.0.31", "h@example.test", "to a trap added before SIGHUP")
		if w := why(t, g, "127.0.0.31"); !strings.Contains(w, "traps.files "+trapFile+":2") {
			t.Errorf("db why after SIGHUP:\n%s", w)
		}
	})

	t.Run("outside our domains", func(t *testing.T) {
		c, r := trapSession(t, g, "127.0.0.24", "sender@example.org", "someone@foreign.example")
		c.Close()
		if r.String() != normal.String() {
			t.Errorf("RCPT reply %q, want %q", r, normal)
		}
		if w := why(t, g, "127.0.0.24"); !strings.Contains(w, "traps.domains: foreign.example is not ours") {
			t.Errorf("db why:\n%s", w)
		}
	})

	t.Run("trap as sender", func(t *testing.T) {
		c, r := trapSession(t, g, "127.0.0.26", "Bait@Example.Test", "carol@example.test")
		defer c.Close()
		if r.Code != 250 {
			t.Errorf("RCPT after MAIL FROM a trap: %s, want the tarpit's 250", r)
		}
		if w := why(t, g, "127.0.0.26"); !strings.Contains(w, "MAIL FROM <bait@example.test>") {
			t.Errorf("db why:\n%s", w)
		}
	})

	t.Run("never trapped", func(t *testing.T) {
		for i, rcpt := range []string{"postmaster@example.test", "abuse@example.test", "postmaster@foreign.example", "Abuse@foreign.example"} {
			src := fmt.Sprintf("127.0.0.%d", 50+i)
			c, r := trapSession(t, g, src, "sender@example.org", rcpt)
			c.Close()
			if r.String() != normal.String() {
				t.Errorf("%s: %q", rcpt, r)
			}
			if w := why(t, g, src); !strings.Contains(w, "GREY") {
				t.Errorf("%s made %s black:\n%s", rcpt, src, w)
			}
		}
		// A bounce to our trap: backscatter, not the bouncer's fault.
		c, r := trapSession(t, g, "127.0.0.27", "", "bait@example.test")
		c.Close()
		if r.Code != 451 {
			t.Errorf("null sender to a trap: %s", r)
		}
		if w := why(t, g, "127.0.0.27"); !strings.Contains(w, "GREY") {
			t.Errorf("a bounce to a trap blacklisted its sender:\n%s", w)
		}
		// A white host is spliced and its mail to the trap delivered.
		if r := g.swaks("127.0.0.5", "bait@example.test", "white to a trap"); r.Code != 0 {
			t.Fatalf("white host to a trap:\n%s", r)
		}
		msgs := pf.WaitMessages(t, 1, 20*time.Second)
		if msgs[0].Subject != "white to a trap" {
			t.Errorf("delivered %q", msgs[0].Subject)
		}
		if w := why(t, g, "127.0.0.5"); !strings.Contains(w, "WHITE") {
			t.Errorf("white host after mailing a trap:\n%s", w)
		}
	})

	t.Run("repeat offender", func(t *testing.T) {
		// The host of the first subtest hits again once its listing is
		// lifted: this time it stays black twice as long.
		g.DB("del", "-type", "black", "127.0.0.22")
		c, _ := trapSession(t, g, "127.0.0.22", "sender@example.org", "bait@example.test")
		c.Close()
		out, _ := g.DB("list", "-type", "black", "-json")
		var e store.Entry
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, `"key":"127.0.0.22"`) {
				json.Unmarshal([]byte(l), &e)
			}
		}
		if ttl := e.Expires.Sub(e.Created); ttl < 47*time.Hour || ttl > 49*time.Hour || e.Count != 2 {
			t.Errorf("second listing: %v for %v with count %d, want 48h and count 2 (%s)", e.Expires, ttl, e.Count, out)
		}
		if !strings.Contains(e.Reason, "1 earlier hit") {
			t.Errorf("reason %q", e.Reason)
		}
	})

	hits, code := runGreypit(g.args("traps", "hits")...)
	if code != 0 {
		t.Fatalf("traps hits (exit %d): %s", code, hits)
	}
	t.Logf("greypit traps hits:\n%s", hits)
	for _, want := range []string{"127.0.0.22", "127.0.0.23", "127.0.0.24", "127.0.0.26", "bait@example.test", "someone@foreign.example"} {
		if !strings.Contains(hits, want) {
			t.Errorf("traps hits lacks %s:\n%s", want, hits)
		}
	}
	for _, never := range []string{"127.0.0.5 ", "127.0.0.27", "127.0.0.50", "127.0.0.21 "} {
		if strings.Contains(hits, never) {
			t.Errorf("traps hits lists %s:\n%s", never, hits)
		}
	}
	// Nothing of a trapped session reached the backend.
	if l := pf.Grep(regexpMust(`127\.0\.0\.2[2-9]\]`)); l != nil {
		t.Errorf("the backend heard of trapped hosts: %q", l)
	}
}

// httpFrom GETs url from the loopback source address src.
func httpFrom(t *testing.T, src, url string) (int, string) {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("User-Agent", "EmailCollector/1.0")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s from %s: %v", url, src, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var trapAddr = regexp.MustCompile(`mailto:([a-z.]+@trap\.test)"`)

// Each visit to the harvester page gets its own address; mail to one names
// that visit as the harvester, robots are told to stay out, and a burst
// from one visitor is cut off.
func TestTrapsHarvester(t *testing.T) {
	pf := backend(t, testenv.ModeProxy)
	web := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	g := startGreypit(t, greypitOpts{backend: pf.Addr(),
		sets: []string{"traps.web_listen=" + web, "traps.web_domain=trap.test", "traps.web_burst=3", "traps.web_every=1h"}})
	base := "http://" + web

	code, robots := httpFrom(t, "127.0.0.30", base+"/robots.txt")
	if code != 200 || !regexp.MustCompile(`(?m)^User-agent: \*$`).MatchString(robots) || !regexp.MustCompile(`(?m)^Disallow: /$`).MatchString(robots) {
		t.Errorf("robots.txt (%d):\n%s", code, robots)
	}
	var addrs []string
	for range 2 {
		code, body := httpFrom(t, "127.0.0.31", base+"/")
		m := trapAddr.FindStringSubmatch(body)
		if code != 200 || m == nil {
			t.Fatalf("page (%d):\n%s", code, body)
		}
		for _, tag := range []string{`<meta name="robots" content="noindex,nofollow">`, `<meta name="no-email-collection" content="/">`} {
			if !strings.Contains(body, tag) {
				t.Errorf("page lacks %s", tag)
			}
		}
		addrs = append(addrs, m[1])
	}
	if addrs[0] == addrs[1] {
		t.Fatalf("two visits got the same address %s", addrs[0])
	}
	// A burst from one visitor: the fourth visit gets 429 and no address.
	httpFrom(t, "127.0.0.32", base+"/") // 1
	httpFrom(t, "127.0.0.32", base+"/") // 2
	httpFrom(t, "127.0.0.32", base+"/") // 3
	code, body := httpFrom(t, "127.0.0.32", base+"/contact")
	if code != http.StatusTooManyRequests || strings.Contains(body, "@trap.test") {
		t.Errorf("fourth visit in a burst: %d\n%s", code, body)
	}
	// Another visitor is not affected.
	if code, _ := httpFrom(t, "127.0.0.33", base+"/"); code != 200 {
		t.Errorf("another visitor during the burst: %d", code)
	}

	c, r := trapSession(t, g, "127.0.0.41", "offer@spam.example", addrs[0])
	c.Close()
	if r.Code != 451 {
		t.Errorf("RCPT to a harvested address: %s", r)
	}
	w := why(t, g, "127.0.0.41")
	if !strings.Contains(w, "BLACK") || !strings.Contains(w, "harvested by 127.0.0.31") || !strings.Contains(w, "spamtrap hit by 127.0.0.41") {
		t.Errorf("db why:\n%s", w)
	}
	check := func(hits string) {
		t.Helper()
		lines := strings.Split(strings.TrimSpace(hits), "\n")
		if len(lines) != 2 {
			t.Fatalf("traps hits: want a header and one hit:\n%s", hits)
		}
		for _, want := range []string{"127.0.0.41", addrs[0], "127.0.0.31", "EmailCollector/1.0", "traps.web_domain trap.test"} {
			if !strings.Contains(lines[1], want) {
				t.Errorf("traps hits lacks %q:\n%s", want, hits)
			}
		}
		if strings.Contains(hits, addrs[1]) {
			t.Errorf("traps hits names the other visit's address:\n%s", hits)
		}
	}
	hits, code := runGreypit(g.args("traps", "hits")...)
	if code != 0 {
		t.Fatalf("traps hits (exit %d): %s", code, hits)
	}
	t.Logf("greypit traps hits:\n%s", hits)
	check(hits)
	// The same without a daemon: greypit opens the store itself.
	g.Stop()
	hits, code = runGreypit(g.args("traps", "hits")...)
	if code != 0 {
		t.Fatalf("traps hits without a daemon (exit %d): %s", code, hits)
	}
	check(hits)
}
