package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/greypit/greypit/internal/store"
	"github.com/greypit/greypit/internal/testenv"
)

// eventually polls fn (bounded) until it reports done, and fails with its
// last output otherwise.
func eventually(t *testing.T, what string, timeout time.Duration, fn func() (string, bool)) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		out, ok := fn()
		if ok {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v; last:\n%s", what, timeout, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// run runs a greypit command with the daemon's config.
func (g *Greypit) run(verb string, args ...string) (string, int) {
	return runGreypit(g.args(verb, args...)...)
}

func (g *Greypit) mustRun(verb string, args ...string) string {
	g.t.Helper()
	out, code := g.run(verb, args...)
	if code != 0 {
		g.t.Fatalf("greypit %s %s: exit %d\n%s", verb, strings.Join(args, " "), code, out)
	}
	return out
}

// whyHas waits until `greypit db why ip` contains every want.
func (g *Greypit) whyHas(t *testing.T, ip string, want ...string) string {
	t.Helper()
	return eventually(t, "db why "+ip+" shows "+strings.Join(want, ", "), 20*time.Second, func() (string, bool) {
		out, _ := g.DB("why", ip)
		for _, w := range want {
			if !strings.Contains(out, w) {
				return out, false
			}
		}
		return out, true
	})
}

func candidatesOf(t *testing.T, g *Greypit) map[string]store.Candidate {
	t.Helper()
	out := g.mustRun("traps", "candidates", "-json")
	m := map[string]store.Candidate{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		var c store.Candidate
		if err := json.Unmarshal([]byte(l), &c); err != nil {
			t.Fatalf("candidates -json line %q: %v", l, err)
		}
		m[c.Address] = c
	}
	return m
}

// A real Postfix backend rejects unknown recipients; the daemon's
// follower, reading the log Postfix writes to a file of the test's, turns
// the rejects into trap candidates, counted by network; three networks
// promote one automatically, an operator approves and rejects others, and
// postmaster and protected addresses are never proposed.
func TestFollowTrapCandidates(t *testing.T) {
	testenv.Require(t, "postfix", "swaks")
	pf := testenv.StartPostfix(t, testenv.PostfixOptions{Mode: testenv.ModeProxy,
		ExtraMain: map[string]string{"virtual_mailbox_maps": "inline:{alice@example.test=box/}"}})
	prot := filepath.Join(t.TempDir(), "users")
	os.WriteFile(prot, []byte("# former users\nformer@example.test\n"), 0o644)
	g := startGreypit(t, greypitOpts{backend: pf.Addr(), allow: []string{"127.0.0.0/8"}, extra: fmt.Sprintf(`
[follow]
files = [%q]
[candidates]
protected = [%q]
promote_networks = 3
promote_days = 1
`, pf.LogPath(), prot)})
	g.WaitLog(regexpMust(`msg="follow: following"`), 10*time.Second)

	send := func(from, rcpt string) {
		t.Helper()
		r := g.swaks(from, rcpt, "probe")
		if got := replyTo(r, "RCPT TO"); !strings.HasPrefix(got, "550 5.1.1") {
			t.Fatalf("%s from %s: RCPT reply %q, want Postfix's 550 5.1.1\n%s", rcpt, from, got, r)
		}
	}
	for _, from := range []string{"127.0.0.21", "127.0.1.21", "127.0.2.21"} {
		send(from, "ghost@example.test")
	}
	for _, rcpt := range []string{"typo@example.test", "manual@example.test", "postmaster@example.test", "former@example.test"} {
		send("127.0.0.21", rcpt)
	}
	// postmaster is the last line but one: once former's reject is in the
	// log, all are.
	pf.WaitLog(t, regexpMust(`reject: RCPT from \S+\[127\.0\.0\.21\]: 550 5\.1\.1 <former@example\.test>: Recipient address rejected: User unknown in virtual mailbox table`), 20*time.Second)

	// The dry run over the same log: every candidate the daemon would act
	// on, with its line number, and nothing for postmaster or former.
	out, code := runGreypit(g.args("follow", "-once", "-dry-run", pf.LogPath())...)
	if code != 0 {
		t.Fatalf("follow -once -dry-run: exit %d\n%s", code, out)
	}
	var got []string
	logLines := strings.Split(pf.Log(), "\n")
	for _, l := range strings.Split(out, "\n") {
		if !strings.HasPrefix(l, "{") {
			continue
		}
		var ev struct {
			Kind, Client, Address string
			Line                  int
		}
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("dry-run line %q: %v", l, err)
		}
		if ev.Line < 1 || ev.Line > len(logLines) || !strings.Contains(logLines[ev.Line-1], "<"+ev.Address+">") {
			t.Errorf("event %+v does not point at its log line", ev)
		}
		got = append(got, ev.Kind+" "+ev.Client+" "+ev.Address)
	}
	want := "[trap_candidate 127.0.0.21 ghost@example.test trap_candidate 127.0.1.21 ghost@example.test " +
		"trap_candidate 127.0.2.21 ghost@example.test trap_candidate 127.0.0.21 typo@example.test " +
		"trap_candidate 127.0.0.21 manual@example.test]"
	if fmt.Sprint(got) != want {
		t.Errorf("dry-run events\n got %v\nwant %s\n%s", got, want, out)
	}

	// The daemon's follower: ghost promoted after three networks.
	eventually(t, "candidates recorded", 20*time.Second, func() (string, bool) {
		c := candidatesOf(t, g)
		return fmt.Sprintf("%+v", c), c["ghost@example.test"].State == store.CandidateApproved && c["manual@example.test"].Count == 1
	})
	c := candidatesOf(t, g)
	if gh := c["ghost@example.test"]; len(gh.Networks) != 3 || gh.Count != 3 || gh.By != "auto" {
		t.Errorf("ghost: %+v", gh)
	}
	for _, a := range []string{"postmaster@example.test", "former@example.test"} {
		if _, ok := c[a]; ok {
			t.Errorf("%s proposed: %+v", a, c[a])
		}
	}
	if c["typo@example.test"].State != store.CandidatePending || len(c["typo@example.test"].Evidence) != 1 {
		t.Errorf("typo: %+v", c["typo@example.test"])
	}
	table := g.mustRun("traps", "candidates")
	if !strings.Contains(table, "ghost@example.test") || !strings.Contains(table, "follow:postfix-unknown-user") {
		t.Errorf("candidates table:\n%s", table)
	}

	g.mustRun("traps", "approve", "manual@example.test")
	g.mustRun("traps", "reject", "typo@example.test")
	if out, code := g.run("traps", "approve", "former@example.test"); code == 0 || !strings.Contains(out, "protected") {
		t.Errorf("approving a protected address: exit %d\n%s", code, out)
	}
	traps := g.mustRun("db", "list", "-type", "spamtrap")
	for _, a := range []string{"ghost@example.test", "manual@example.test"} {
		if !strings.Contains(traps, a) {
			t.Errorf("%s is not a spamtrap:\n%s", a, traps)
		}
	}

	// A user added to the protected file is never proposed after SIGHUP.
	os.WriteFile(prot, []byte("# former users\nformer@example.test\nlate@example.test\n"), 0o644)
	g.cmd.Process.Signal(syscall.SIGHUP)
	g.WaitLog(regexpMust(`msg="reloaded lists and certificate"`), 10*time.Second)
	send("127.0.0.21", "late@example.test")
	pf.WaitLog(t, regexpMust(`<late@example\.test>: Recipient address rejected`), 20*time.Second)
	g.WaitLog(regexpMust(`address=late@example.test .*skipped="protected address \(`), 10*time.Second)

	// A rejected candidate stays rejected, however many networks try it.
	send("127.0.1.21", "typo@example.test")
	send("127.0.2.21", "typo@example.test")
	eventually(t, "typo's new rejects counted", 20*time.Second, func() (string, bool) {
		c := candidatesOf(t, g)["typo@example.test"]
		return fmt.Sprintf("%+v", c), c.Count == 3
	})
	if c := candidatesOf(t, g)["typo@example.test"]; c.State != store.CandidateRejected || len(c.Networks) != 3 {
		t.Errorf("typo after rejection: %+v", c)
	}
	if traps := g.mustRun("db", "list", "-type", "spamtrap"); strings.Contains(traps, "typo@") || strings.Contains(traps, "former@") {
		t.Errorf("rejected or protected address became a trap:\n%s", traps)
	}
}

// Verdicts move hosts, each visible in `greypit db why` with its source:
// the CLI with and without a daemon, the HTTP endpoint (which refuses a
// missing or wrong token and changes nothing), and the follower reading a
// real Postfix's header_checks reject of a grey host that had just passed
// greylisting.
func TestFeedbackMovesHosts(t *testing.T) {
	testenv.Require(t, "postfix", "swaks")
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	checks := filepath.Join(dir, "header_checks")
	os.WriteFile(checks, []byte("/^Subject:.*SPAM-TEST/ REJECT spam content\n"), 0o644)
	pf := testenv.StartPostfix(t, testenv.PostfixOptions{Mode: testenv.ModeProxy,
		ExtraMain: map[string]string{"header_checks": "regexp:" + checks}})
	apiAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	const token = "e2e-token-0123456789"
	g := startGreypit(t, greypitOpts{backend: pf.Addr(), extra: fmt.Sprintf(`
[follow]
files = [%q]
[api]
listen = %q
token = %q
`, pf.LogPath(), apiAddr, token)})

	t.Run("cli", func(t *testing.T) {
		out := g.mustRun("feedback", "spam", "127.0.0.31", "-reason", "user report")
		if !strings.Contains(out, "127.0.0.31: BLACK") {
			t.Errorf("feedback spam:\n%s", out)
		}
		g.whyHas(t, "127.0.0.31", "BLACK", "source feedback:cli", "spam verdict: user report")
		r := g.swaks("127.0.0.31", "bob@example.test", "after spam verdict")
		if r.Code == 0 || !strings.Contains(r.Out, "451 4.7.1 Message refused: client 127.0.0.31 is listed here: spam verdict: user report") {
			t.Errorf("black host's message:\n%s", r)
		}
		out = g.mustRun("feedback", "ham", "-reason", "false positive", "127.0.0.31")
		if !strings.Contains(out, "removed black entry") || !strings.Contains(out, "WHITE") {
			t.Errorf("feedback ham:\n%s", out)
		}
		g.whyHas(t, "127.0.0.31", "WHITE", "source feedback:cli", "ham verdict: false positive")
		if out, code := g.run("feedback", "spam", "not-an-address"); code == 0 || !strings.Contains(out, "greypit: ") {
			t.Errorf("bad address: exit %d\n%s", code, out)
		}
	})

	t.Run("http", func(t *testing.T) {
		body := `{"verdict":"spam","address":"127.0.0.32","reason":"rspamd says so"}`
		for _, auth := range []string{"", "Bearer not-the-token-at-all"} {
			req, _ := http.NewRequest("POST", "http://"+apiAddr+"/v1/feedback", strings.NewReader(body))
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("auth %q: status %d, want 401", auth, resp.StatusCode)
			}
		}
		g.whyHas(t, "127.0.0.32", "GREY")
		req, _ := http.NewRequest("POST", "http://"+apiAddr+"/v1/feedback", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("with the token: status %d", resp.StatusCode)
		}
		g.whyHas(t, "127.0.0.32", "BLACK", "source feedback:http", "spam verdict: rspamd says so")
	})

	t.Run("follower", func(t *testing.T) {
		r := g.swaks("127.0.0.33", "bob@example.test", "SPAM-TEST cheap")
		first := time.Now()
		if got := replyTo(r, "RCPT TO"); !strings.HasPrefix(got, "451 4.7.1") {
			t.Fatalf("first attempt: %q\n%s", got, r)
		}
		waitUntil(first.Add(passDelay))
		r = g.swaks("127.0.0.33", "bob@example.test", "SPAM-TEST cheap")
		if got := lastReply(r); !strings.Contains(r.Out, "spam content") {
			t.Fatalf("retry: want the backend's header_checks reject, last reply %q\n%s", got, r)
		}
		pf.WaitLog(t, regexpMust(`reject: header Subject: SPAM-TEST cheap from \S+\[127\.0\.0\.33\]`), 20*time.Second)
		out := g.whyHas(t, "127.0.0.33", "BLACK", "source follow:postfix-checks", "header_checks reject")
		if strings.Contains(out, "passed greylisting") {
			t.Errorf("white entry kept:\n%s", out)
		}
		if list, _ := g.DB("list", "-type", "white"); strings.Contains(list, "127.0.0.33") {
			t.Errorf("white entry of 127.0.0.33 kept:\n%s", list)
		}
		g.WaitLog(regexpMust(`msg="follow: spam".*client=127\.0\.0\.33`), 10*time.Second)
	})

	t.Run("no-daemon", func(t *testing.T) {
		g.Stop()
		out := g.mustRun("feedback", "spam", "127.0.0.34", "-reason", "offline")
		if !strings.Contains(out, "BLACK") {
			t.Errorf("feedback without daemon:\n%s", out)
		}
		g.whyHas(t, "127.0.0.34", "BLACK", "source feedback:cli", "spam verdict: offline")
	})
}

// The daemon's follower survives a malformed and a cut-off line, a
// rotation (rename and new file) and a copytruncate, and after a restart
// goes on where it stopped: lines written while it was down are read,
// older ones are not read again.
func TestFollowRotationTruncation(t *testing.T) {
	dir := t.TempDir()
	logf := filepath.Join(dir, "mail.log")
	os.WriteFile(logf, []byte("Dec  1 09:00:00 mx postfix/smtpd[1]: old line before greypit started\n"), 0o644)
	// Its hosts share one /24: network escalation would blacklist the
	// host whose old line must not be read again.
	g := startGreypit(t, greypitOpts{backend: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)),
		extra: fmt.Sprintf("[follow]\nfiles = [%q]\n", logf), sets: []string{"networks.escalate_hosts=0"}})
	g.WaitLog(regexpMust(`msg="follow: following"`), 10*time.Second)
	line := func(ip string) string {
		return "Dec  1 10:00:00 mx postfix/smtpd[7]: 1A2B3C4D5E: milter-reject: END-OF-MESSAGE from x.example[" + ip +
			"]: 5.7.1 Spam detected; from=<a@x.example> to=<b@example.test> proto=ESMTP helo=<x.example>\n"
	}
	appendLog := func(s string) {
		f, err := os.OpenFile(logf, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(s)
		f.Close()
	}
	appendLog("\x00\xff\xfe garbage\nDec  1 10:00:00 mx postfix/smtpd[7]: NOQUEUE: milter-reject: RCPT from x[192.0.2.99\n" + line("192.0.2.41"))
	g.whyHas(t, "192.0.2.41", "BLACK", "source follow:postfix-milter", "Spam detected")

	// Rotation: the writer keeps the old file open and adds to it once
	// more before it reopens.
	old, err := os.OpenFile(logf, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	os.Rename(logf, logf+".1")
	old.WriteString(line("192.0.2.42"))
	old.Close()
	appendLog(line("192.0.2.43"))
	g.whyHas(t, "192.0.2.42", "BLACK")
	g.whyHas(t, "192.0.2.43", "BLACK")
	g.WaitLog(regexpMust(`follow: log rotated`), 10*time.Second)

	// copytruncate: the new contents are shorter than what was read.
	appendLog(line("192.0.2.44"))
	g.whyHas(t, "192.0.2.44", "BLACK")
	os.Truncate(logf, 0)
	appendLog(line("192.0.2.45"))
	g.whyHas(t, "192.0.2.45", "BLACK")
	g.WaitLog(regexpMust(`follow: log truncated`), 10*time.Second)
	if strings.Contains(g.Log(), "192.0.2.99") {
		t.Errorf("the cut-off line was acted on")
	}

	// Restart: 192.0.2.45's entry is removed while greypit is down; its
	// line must not be read again, the new one must.
	g.Stop()
	g.mustRun("db", "del", "-type", "black", "192.0.2.45")
	appendLog(line("192.0.2.46"))
	g.Start() // the saved position is before 192.0.2.46's line, however soon the follower opens
	g.whyHas(t, "192.0.2.46", "BLACK")
	if out, _ := g.DB("why", "192.0.2.45"); !strings.Contains(out, "GREY") {
		t.Errorf("an old line was read again after the restart:\n%s", out)
	}

	// `greypit follow -once` (not a dry run) acts through the daemon, and
	// on the store file when no daemon runs.
	for _, ip := range []string{"192.0.2.47", "192.0.2.48"} {
		if ip == "192.0.2.48" {
			g.Stop()
		}
		one := filepath.Join(dir, ip+".log")
		os.WriteFile(one, []byte(line(ip)), 0o644)
		out := g.mustRun("follow", "-once", one)
		if !strings.Contains(out, `"kind":"spam"`) || !strings.Contains(out, `"path":"black"`) {
			t.Errorf("follow -once %s:\n%s", ip, out)
		}
		g.whyHas(t, ip, "BLACK", "source follow:postfix-milter")
	}
}

// `greypit follow -once -dry-run` exits 0 on any input and prints the
// events of the sample logs as JSON lines.
func TestFollowDryRunAnyInput(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "binary.log")
	junk := make([]byte, 70000)
	for i := range junk {
		junk[i] = byte(i*7 + i/3)
	}
	os.WriteFile(bin, junk, 0o644)
	samples, _ := filepath.Glob("../../internal/maillog/testdata/*.log")
	if len(samples) == 0 {
		t.Fatal("no sample logs")
	}
	out, code := runGreypit(append([]string{"follow", "-once", "-dry-run", bin}, samples...)...)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	kinds := map[string]int{}
	for _, l := range strings.Split(out, "\n") {
		if !strings.HasPrefix(l, "{") {
			continue
		}
		var ev map[string]any
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		if ev["client"] == "" || ev["line"] == nil || ev["file"] == nil {
			t.Errorf("incomplete event %s", l)
		}
		kinds[ev["kind"].(string)]++
	}
	if kinds["spam"] != 7 || kinds["trap_candidate"] != 2 {
		t.Errorf("events by kind %v, want 7 spam and 2 trap candidates\n%s", kinds, out)
	}
}

// With follow.dry_run the daemon's follower logs what a line would change
// and changes nothing.
func TestFollowDaemonDryRun(t *testing.T) {
	logf := filepath.Join(t.TempDir(), "mail.log")
	os.WriteFile(logf, nil, 0o644)
	g := startGreypit(t, greypitOpts{backend: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)),
		extra: fmt.Sprintf("[follow]\nfiles = [%q]\ndry_run = true\n", logf)})
	g.WaitLog(regexpMust(`msg="follow: following".*dry_run=true`), 10*time.Second)
	f, _ := os.OpenFile(logf, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString("Dec  1 10:00:00 mx postfix/smtpd[7]: NOQUEUE: milter-reject: RCPT from x.example[192.0.2.61]: 550 5.7.1 Spam; from=<a@x.example> to=<b@example.test> proto=ESMTP helo=<x.example>\n" +
		"Dec  1 10:00:01 mx postfix/smtpd[7]: NOQUEUE: reject: RCPT from x.example[192.0.2.61]: 550 5.1.1 <nobody@example.test>: Recipient address rejected: User unknown in local recipient table; from=<a@x.example> to=<nobody@example.test> proto=ESMTP helo=<x.example>\n")
	f.Close()
	l := g.WaitLog(regexpMust(`msg="follow: spam \(dry run: nothing changed\)".*client=192\.0\.2\.61`), 10*time.Second)
	if !strings.Contains(l, "black entry 192.0.2.61") {
		t.Errorf("dry-run log line does not say what would change: %s", l)
	}
	g.WaitLog(regexpMust(`msg="follow: trap_candidate \(dry run: nothing changed\)".*address=nobody@example.test`), 10*time.Second)
	g.whyHas(t, "192.0.2.61", "GREY")
	if c := candidatesOf(t, g); len(c) != 0 {
		t.Errorf("dry run stored candidates: %+v", c)
	}
}
