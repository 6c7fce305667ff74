// Package e2e tests the greypit binary end to end against real components:
// private Postfix instances as backend and as sending MTA, swaks and raw
// sockets as clients, all on loopback.
package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/greypit/greypit/internal/control"
	"github.com/greypit/greypit/internal/testenv"
)

var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "greypit-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "greypit")
	cmd := exec.Command("go", "build", "-o", binPath, "github.com/greypit/greypit/cmd/greypit")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building greypit: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Greypit is a running greypit daemon under test.
type Greypit struct {
	t       testing.TB
	Dir     string
	Port    int
	Addr    string // 127.0.0.1:Port
	Addr6   string // [::1]:Port
	Config  string
	Sets    []string
	state   string // the store's directory
	cmd     *exec.Cmd
	done    chan struct{}
	logPath string
	logFile *os.File
}

// greypitOpts are the settings a test changes; the rest comes from a
// test config file written here.
type greypitOpts struct {
	backend string
	handoff string
	allow   []string // allow list lines
	block   []string // block list lines
	extra   string   // more TOML appended to the config
	sets    []string // -set overrides
	state   string   // the store's directory (default: state under the test's)
}

func startGreypit(t *testing.T, o greypitOpts) *Greypit {
	t.Helper()
	dir := t.TempDir()
	g := &Greypit{t: t, Dir: dir, state: o.state}
	if g.state == "" {
		g.state = filepath.Join(dir, "state")
	}
	g.Port = testenv.FreePort(t)
	g.Addr = fmt.Sprintf("127.0.0.1:%d", g.Port)
	g.Addr6 = fmt.Sprintf("[::1]:%d", g.Port)
	if o.handoff == "" {
		o.handoff = "proxy-v2"
	}
	allow := filepath.Join(dir, "allow.list")
	block := filepath.Join(dir, "block.list")
	os.WriteFile(allow, []byte("# test allow list\n"+strings.Join(o.allow, "\n")+"\n"), 0o644)
	os.WriteFile(block, []byte("# test block list\n"+strings.Join(o.block, "\n")+"\n"), 0o644)
	g.Config = filepath.Join(dir, "greypit.toml")
	conf := fmt.Sprintf(`
[smtp]
listen = [%q, %q]
hostname = "greypit.test"
greet_wait = "300ms"
command_timeout = "20s"

[backend]
address = %q
handoff = %q
connect_timeout = "3s"
reply_timeout = "20s"

[greylist]
pass_delay = "3s"
retry_window = "1h"

[store]
path = %q
expire_every = "1s"

[lists]
allow = %q
block = %q

[log]
level = "debug"

[tarpit]
grey_stutter_for = "0s"
stutter = "20ms"
`, g.Addr, g.Addr6, o.backend, o.handoff, filepath.Join(g.state, "greypit.db"), allow, block) + o.extra
	if !strings.Contains(o.extra, "[dnsbl]") {
		// SPF keying and big senders are on by default: point them at a
		// loopback DNS server with no zones (every answer REFUSED), so no
		// test ever asks the machine's own resolver.
		conf += fmt.Sprintf("\n[dnsbl]\nresolver = %q\n", testenv.StartDNS(t).Addr)
	}
	os.WriteFile(g.Config, []byte(conf), 0o644)
	g.Sets = o.sets
	g.logPath = filepath.Join(dir, "greypit.log")
	g.Start()
	t.Cleanup(g.Stop)
	return g
}

func (g *Greypit) args(verb string, more ...string) []string {
	a := []string{verb, "-config", g.Config}
	for _, s := range g.Sets {
		a = append(a, "-set", s)
	}
	return append(a, more...)
}

// Start runs the daemon and waits until its control socket answers, which
// happens after the SMTP listeners are open.
func (g *Greypit) Start() {
	g.t.Helper()
	f, err := os.OpenFile(g.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		g.t.Fatal(err)
	}
	g.logFile = f
	g.cmd = exec.Command(binPath, g.args("serve")...)
	g.cmd.Stdout, g.cmd.Stderr = f, f
	if err := g.cmd.Start(); err != nil {
		g.t.Fatal(err)
	}
	g.done = make(chan struct{})
	go func() { g.cmd.Wait(); close(g.done) }()
	sock := filepath.Join(g.state, "greypit.db.sock")
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := control.Dial(sock); err == nil {
			return
		}
		select {
		case <-g.done:
			g.t.Fatalf("greypit exited during start-up:\n%s", g.Log())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("greypit did not start in 20s:\n%s", g.Log())
		}
	}
}

// Stop sends SIGTERM and waits for a clean exit.
func (g *Greypit) Stop() {
	if g.cmd == nil || g.cmd.Process == nil {
		return
	}
	select {
	case <-g.done:
	default:
		g.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-g.done:
		case <-time.After(40 * time.Second):
			g.cmd.Process.Kill()
			<-g.done
			g.t.Errorf("greypit did not stop within 40s of SIGTERM")
		}
	}
	g.logFile.Close()
	g.cmd = nil
	if g.t.Failed() {
		g.t.Logf("greypit log:\n%s", g.Log())
	}
}

// Kill9 kills the daemon without warning.
func (g *Greypit) Kill9() {
	g.cmd.Process.Kill()
	<-g.done
	g.logFile.Close()
	g.cmd = nil
}

func (g *Greypit) Log() string {
	b, _ := os.ReadFile(g.logPath)
	return string(b)
}

// WaitLog waits until a log line matches re and returns it.
func (g *Greypit) WaitLog(re *regexp.Regexp, timeout time.Duration) string {
	g.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, l := range strings.Split(g.Log(), "\n") {
			if re.MatchString(l) {
				return l
			}
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("no greypit log line matches %s within %v:\n%s", re, timeout, g.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Verdicts returns the verdict lines logged so far.
func (g *Greypit) Verdicts() []string {
	var out []string
	for _, l := range strings.Split(g.Log(), "\n") {
		if strings.Contains(l, "msg=verdict") {
			out = append(out, l)
		}
	}
	return out
}

// WaitVerdicts waits for n verdict lines in all.
func (g *Greypit) WaitVerdicts(n int) []string {
	g.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		v := g.Verdicts()
		if len(v) >= n {
			return v
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("want %d verdict lines, have %d:\n%s", n, len(v), g.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// DB runs `greypit db` with the daemon's config.
func (g *Greypit) DB(args ...string) (string, int) {
	return runGreypit(g.args("db", args...)...)
}

func runGreypit(args ...string) (string, int) {
	cmd := exec.Command(binPath, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return out.String(), ee.ExitCode()
	}
	if err != nil {
		return err.Error(), -1
	}
	return out.String(), 0
}

// swaks sends one message to greypit from the loopback address from.
func (g *Greypit) swaks(from, rcpt, subject string, extra ...string) testenv.SwaksResult {
	g.t.Helper()
	host, port := "127.0.0.1", fmt.Sprint(g.Port)
	if strings.Contains(from, ":") {
		host = "::1"
	}
	args := []string{"--server", host, "--port", port, "--local-interface", from,
		"--helo", "client.example.org", "--from", "sender@example.org", "--to", rcpt,
		"--h-Subject", subject, "--timeout", "30s"}
	return testenv.Swaks(g.t, append(args, extra...)...)
}

// backend starts a private Postfix backend in mode.
func backend(t *testing.T, mode string) *testenv.Postfix {
	t.Helper()
	testenv.Require(t, "postfix", "swaks")
	return testenv.StartPostfix(t, testenv.PostfixOptions{Mode: mode})
}

// lastReply returns swaks' last server reply line.
func lastReply(r testenv.SwaksResult) string {
	rs := r.Replies()
	if len(rs) == 0 {
		return ""
	}
	return rs[len(rs)-1]
}

// replyTo returns the reply line swaks got right after sending a command
// starting with prefix (e.g. "RCPT TO").
func replyTo(r testenv.SwaksResult, prefix string) string {
	lines := strings.Split(r.Out, "\n")
	for i, l := range lines {
		if strings.Contains(l, "-> "+prefix) || strings.Contains(l, "~> "+prefix) {
			for _, m := range lines[i+1:] {
				m = strings.TrimRight(m, "\r")
				if len(m) > 3 && (m[:3] == "<- " || m[:3] == "<~ " || m[:3] == "<**" || m[:3] == "<~*") {
					return strings.TrimLeft(m[3:], " ")
				}
			}
		}
	}
	return ""
}

func regexpMust(s string) *regexp.Regexp { return regexp.MustCompile(s) }
