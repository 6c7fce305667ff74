package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/greypit/greypit/internal/testenv"
)

// editConfig replaces old by new in the daemon's config file and sends
// SIGHUP; it returns once the daemon has logged the outcome of that
// reload (a line matching done).
func (g *Greypit) editConfig(old, new, done string) string {
	g.t.Helper()
	b, err := os.ReadFile(g.Config)
	if err != nil {
		g.t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		g.t.Fatalf("config has no %q:\n%s", old, b)
	}
	if err := os.WriteFile(g.Config, []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
		g.t.Fatal(err)
	}
	return g.hup(done)
}

// hup sends SIGHUP and waits for a new log line matching done.
func (g *Greypit) hup(done string) string {
	g.t.Helper()
	re := regexpMust(done)
	seen := len(re.FindAllString(g.Log(), -1))
	if err := g.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		g.t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if all := re.FindAllString(g.Log(), -1); len(all) > seen {
			return all[len(all)-1]
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("no log line matching %s after SIGHUP:\n%s", done, g.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// SIGHUP re-reads the config file: a new greylist delay applies to the
// tuples of the next sessions, a new DNSBL zone turns a listed host
// black, an invalid edit (a bad value, or a list file that does not load)
// keeps everything as it was and says why, and a key that needs a restart
// is named in a warning and keeps its running value.
func TestReloadConfig(t *testing.T) {
	pf := backend(t, testenv.ModeProxy)
	srv := testenv.StartDNS(t, "old.test", "bl.test")
	srv.Add(t, rfc5782("old.test")...)
	srv.Add(t, rfc5782("bl.test")...)
	srv.Add(t, "43.0.0.127.bl.test. 300 IN A 127.0.0.2")
	g := startGreypit(t, greypitOpts{backend: pf.Addr(), extra: dnsConfig(srv, `sites = ["old.test"]`)})

	// A longer delay: a retry after the old 3s is still deferred.
	g.editConfig(`pass_delay = "3s"`, `pass_delay = "20s"`, `msg="config reloaded" changed=\[greylist.pass_delay\]`)
	r := g.swaks("127.0.0.41", "ria@example.test", "first")
	first := time.Now()
	if got := replyTo(r, "RCPT TO"); !strings.HasPrefix(got, "451 4.7.1") {
		t.Fatalf("first attempt: %q\n%s", got, r)
	}
	waitUntil(first.Add(passDelay + 500*time.Millisecond))
	if got := replyTo(g.swaks("127.0.0.41", "ria@example.test", "retry under 20s"), "RCPT TO"); !strings.HasPrefix(got, "451 4.7.1") {
		t.Fatalf("retry after 3s with pass_delay 20s: %q", got)
	}

	// A shorter one: a new tuple passes after it and Postfix gets the
	// mail. (A tuple keeps the pass time set at its first attempt.)
	g.editConfig(`pass_delay = "20s"`, `pass_delay = "1s"`, `msg="config reloaded" changed=\[greylist.pass_delay\]`)
	r = g.swaks("127.0.0.41", "sam@example.test", "first")
	first = time.Now()
	if got := replyTo(r, "RCPT TO"); !strings.HasPrefix(got, "451 4.7.1") {
		t.Fatalf("first attempt: %q\n%s", got, r)
	}
	waitUntil(first.Add(1500 * time.Millisecond))
	if r := g.swaks("127.0.0.41", "sam@example.test", "passed after reload"); r.Code != 0 {
		t.Fatalf("retry with pass_delay 1s:\n%s", r)
	}
	if m := pf.WaitMessages(t, 1, 20*time.Second); m[0].Subject != "passed after reload" {
		t.Errorf("delivered %q", m[0].Subject)
	}

	// An invalid value: the error names key and line, and the 1s delay
	// stays in force.
	line := g.editConfig(`pass_delay = "1s"`, `pass_delay = "soon"`, `config reload failed.*`)
	if !strings.Contains(line, "greypit.toml:") || !strings.Contains(line, "pass_delay") {
		t.Errorf("reload error does not name the file line and key: %s", line)
	}
	// A valid file whose new block list path does not load: the whole
	// reload fails, the delay change beside it included.
	b, _ := os.ReadFile(g.Config)
	conf := strings.Replace(string(b), `pass_delay = "soon"`, `pass_delay = "20s"`, 1)
	conf = strings.Replace(conf, "block.list", "missing.list", 1)
	os.WriteFile(g.Config, []byte(conf), 0o644)
	if line := g.hup(`config reload failed.*`); !strings.Contains(line, "missing.list") {
		t.Errorf("reload error does not name the list file: %s", line)
	}
	os.WriteFile(g.Config, b, 0o644)
	r = g.swaks("127.0.0.42", "tom@example.test", "first")
	first = time.Now()
	if got := replyTo(r, "RCPT TO"); !strings.HasPrefix(got, "451 4.7.1") {
		t.Fatalf("first attempt after a bad reload: %q", got)
	}
	waitUntil(first.Add(1500 * time.Millisecond))
	if r := g.swaks("127.0.0.42", "tom@example.test", "old delay kept"); r.Code != 0 {
		t.Fatalf("retry after 1.5s with the 1s delay kept:\n%s", r)
	}
	pf.WaitMessages(t, 2, 20*time.Second)

	// A restart-only key next to a reloadable one: a warning names the
	// first, the second applies (127.0.0.43 is listed in bl.test).
	g.editConfig(`pass_delay = "soon"`, `pass_delay = "1s"`, `config reloaded`)
	b, _ = os.ReadFile(g.Config)
	conf = strings.Replace(string(b), `expire_every = "1s"`, `expire_every = "2s"`, 1)
	conf = strings.Replace(conf, `sites = ["old.test"]`, `sites = ["bl.test"]`, 1)
	os.WriteFile(g.Config, []byte(conf), 0o644)
	g.hup(`msg="config reloaded" changed=\[dnsbl.sites\]`)
	g.WaitLog(regexpMust(`level=WARN msg="config keys changed that need a restart.*keys=\[store.expire_every\]`), 5*time.Second)
	c := testenv.DialSMTP(t, "127.0.0.43:0", g.Addr)
	c.Conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	c.Expect(220, "")
	c.Close()
	g.WaitLog(regexpMust(`msg=verdict.*client=127.0.0.43 path=black rule="dnsbl score`), 20*time.Second)
}

// smtp.data_timeout: a black host that stops in the middle of its
// message gets 421 and is closed within data_timeout (plus the drip of
// the reply), not after the tarpit's idle timeout.
func TestDataTimeout(t *testing.T) {
	pf := backend(t, testenv.ModeProxy)
	g := startGreypit(t, greypitOpts{backend: pf.Addr(), block: []string{"127.0.0.51"},
		sets: []string{"smtp.data_timeout=2s", "tarpit.stutter=5ms"}})
	c := testenv.DialSMTP(t, "127.0.0.51:0", g.Addr)
	c.Conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	c.Expect(220, "")
	c.Expect(250, "HELO bot.example")
	c.Expect(250, "MAIL FROM:<bot@example.org>")
	c.Expect(250, "RCPT TO:<victim@example.net>")
	c.Expect(354, "DATA")
	c.Write([]byte("Subject: cut short\r\n\r\nhalf a line"))
	stalled := time.Now()
	c.Conn.SetReadDeadline(stalled.Add(15 * time.Second))
	r := c.ReadReply()
	waited := time.Since(stalled)
	if r.Code != 421 || !strings.Contains(r.Text(), "Timeout waiting for data") {
		t.Fatalf("stalled DATA: %s", r)
	}
	if waited < 2*time.Second || waited > 10*time.Second {
		t.Errorf("421 after %v, want data_timeout 2s (plus the drip)", waited)
	}
	c.Conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Conn.Read(make([]byte, 1)); err == nil {
		t.Errorf("connection still open after the 421")
	}
	g.WaitLog(regexpMust(`msg=verdict.*client=127.0.0.51 path=black.*outcome=data-timeout`), 10*time.Second)
}

// SIGTERM with drain_timeout: a white session that stays open past it is
// closed, new connections are refused meanwhile, and greypit exits 0.
func TestDrainBounded(t *testing.T) {
	pf := backend(t, testenv.ModeProxy)
	g := startGreypit(t, greypitOpts{backend: pf.Addr(), allow: []string{"127.0.0.5"}, sets: []string{"smtp.drain_timeout=2s"}})
	white := testenv.DialSMTP(t, "127.0.0.5:0", g.Addr)
	white.Expect(220, "")
	white.Expect(250, "EHLO client.example.org") // the backend's: spliced

	g.cmd.Process.Signal(syscall.SIGTERM)
	g.WaitLog(regexpMust(`shutting down: draining sessions" active=1`), 10*time.Second)
	if c, err := net.DialTimeout("tcp", g.Addr, 2*time.Second); err == nil {
		c.Close()
		t.Errorf("a new connection was accepted during the drain")
	} else if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("new connection during the drain: %v, want refused", err)
	}
	stop := time.Now()
	select {
	case <-g.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("greypit still running 20s after SIGTERM with drain_timeout 2s:\n%s", g.Log())
	}
	if d := time.Since(stop); d > 10*time.Second {
		t.Errorf("exit %v after the drain began", d)
	}
	if code := g.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
	g.WaitLog(regexpMust(`drain timed out; closed sessions" sessions=1`), 5*time.Second)
	white.Close()
}

// `greypit policy -config`: SIGHUP re-reads the file, and the next
// answer on the same Postfix connection uses the new greylist text.
func TestReloadPolicy(t *testing.T) {
	dir := t.TempDir()
	paddr := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	conf := filepath.Join(dir, "greypit.toml")
	body := fmt.Sprintf(`
[policy]
listen = %q
greylist_text = "old text"

[store]
path = %q

[dnsbl]
resolver = %q
`, paddr, filepath.Join(dir, "greypit.db"), testenv.StartDNS(t).Addr)
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startPolicyProc(t, "greypit-policy", paddr, binPath, "policy", "-config", conf)
	c := testenv.Dial(t, "", paddr)
	br := bufio.NewReader(c)
	ask := func(rcpt string) string {
		t.Helper()
		io.WriteString(c, "request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=127.0.0.61\nclient_name=unknown\n"+
			"sender=bob@example.org\nrecipient="+rcpt+"\n\n")
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		br.ReadString('\n')
		return strings.TrimSpace(l)
	}
	if got := ask("a@example.test"); got != "action=DEFER_IF_PERMIT old text" {
		t.Fatalf("before reload: %q", got)
	}
	seen := strings.Count(p.Log(), "config reloaded")
	os.WriteFile(conf, []byte(strings.Replace(body, "old text", "new text", 1)), 0o644)
	p.cmd.Process.Signal(syscall.SIGHUP)
	deadline := time.Now().Add(20 * time.Second)
	for strings.Count(p.Log(), "config reloaded") == seen {
		if time.Now().After(deadline) {
			t.Fatalf("no reload logged:\n%s", p.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := ask("b@example.test"); got != "action=DEFER_IF_PERMIT new text" {
		t.Errorf("after reload: %q", got)
	}
}
