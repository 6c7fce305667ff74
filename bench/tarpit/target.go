package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// target is the server process under test.
type target struct {
	name    string
	bin     string
	version string
	argv    []string
	config  string // greypit: the config file's text
	port    int
	unit    string // drip event the clients count: "byte" or "line"
	talk    bool   // clients answer SMTP replies

	cmd     *exec.Cmd
	pid     int
	out     *tail
	exited  chan struct{}
	waitErr error
}

// tail keeps the last bytes written to it.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > 8192 {
		t.buf = append([]byte(nil), t.buf[len(t.buf)-8192:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// freePort returns a TCP port nobody listens on at host now.
func freePort(host string) (int, error) {
	ln, err := net.Listen("tcp4", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// moduleRoot is the directory of the go.mod governing the working directory.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside the greypit module: run from the repository, or pass -greypit")
	}
	return filepath.Dir(gomod), nil
}

func prepareGreypit(o *options, dir string) (*target, error) {
	bin := o.greypit
	if bin == "" {
		root, err := moduleRoot()
		if err != nil {
			return nil, err
		}
		bin = filepath.Join(dir, "greypit")
		build := exec.Command("go", "build", "-o", bin, "./cmd/greypit")
		build.Dir = root
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return nil, fmt.Errorf("go build ./cmd/greypit: %w", err)
		}
	}
	port, err := freePort("127.0.0.1")
	if err != nil {
		return nil, err
	}
	closed, err := freePort("127.0.0.1") // nothing listens there: the backend is never reached
	if err != nil {
		return nil, err
	}
	block := filepath.Join(dir, "block.txt")
	if err := os.WriteFile(block, []byte("# every benchmark client is black\n127.0.0.0/8\n"), 0o644); err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf(`# written by bench/tarpit
[smtp]
listen = "127.0.0.1:%d"
hostname = "bench.test"
max_sessions = 100
greet_wait = "0s"

[backend]
address = "127.0.0.1:%d"

[store]
path = %q

[lists]
block = [%q]

[log]
level = "warn"

[tarpit]
stutter = %q
max_sessions = 20000
max_per_prefix = 20000
pressure = 1.0
idle_timeout = "1h"
session_timeout = "2h"
`, port, closed, filepath.Join(dir, "greypit.db"), block, o.stutter.String())
	cfgPath := filepath.Join(dir, "greypit.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	t := &target{
		name:   "greypit",
		bin:    bin,
		argv:   []string{bin, "serve", "-config", cfgPath},
		config: cfg,
		port:   port,
		unit:   "byte",
		talk:   true,
	}
	if out, err := exec.Command(bin, "version").CombinedOutput(); err == nil {
		t.version = strings.TrimSpace(string(out))
	}
	if o.greypit != "" {
		t.version += " (prebuilt " + o.greypit + ")"
	} else if root, err := moduleRoot(); err == nil {
		if out, err := exec.Command("git", "-C", root, "describe", "--always", "--dirty").Output(); err == nil {
			t.version += " (built from the working tree, git " + strings.TrimSpace(string(out)) + ")"
		}
	}
	return t, nil
}

func prepareEndlessh(o *options, dir string) (*target, error) {
	bin, err := exec.LookPath("endlessh")
	if err != nil {
		fmt.Fprintln(os.Stderr, "endlessh not found: apt-get install -y endlessh")
		inst := exec.Command("apt-get", "install", "-y", "endlessh")
		inst.Stdout, inst.Stderr = os.Stderr, os.Stderr
		if err := inst.Run(); err != nil {
			return nil, fmt.Errorf("apt-get install endlessh: %w", err)
		}
		if bin, err = exec.LookPath("endlessh"); err != nil {
			return nil, err
		}
	}
	// endlessh has no bind-address option: it listens on all IPv4
	// addresses (-4). A free port is picked on 0.0.0.0.
	port, err := freePort("0.0.0.0")
	if err != nil {
		return nil, err
	}
	// An empty config file, so no /etc/endlessh/config changes the run.
	cfgPath := filepath.Join(dir, "endlessh.conf")
	if err := os.WriteFile(cfgPath, nil, 0o644); err != nil {
		return nil, err
	}
	delay := o.stutter.Milliseconds()
	if delay < 1 {
		return nil, errors.New("endlessh: -stutter must be at least 1ms")
	}
	t := &target{
		name: "endlessh",
		bin:  bin,
		argv: []string{bin, "-f", cfgPath, "-4",
			"-p", strconv.Itoa(port),
			"-d", strconv.FormatInt(delay, 10),
			"-l", strconv.Itoa(o.lineLen),
			"-m", strconv.Itoa(o.conns + 100)},
		port: port,
		unit: "line", // endlessh sends a whole random line per delay
	}
	if out, err := exec.Command(bin, "-V").CombinedOutput(); err == nil {
		t.version = strings.TrimSpace(string(out))
	}
	return t, nil
}

func (t *target) start() error {
	t.out = &tail{}
	t.cmd = exec.Command(t.argv[0], t.argv[1:]...)
	t.cmd.Stdout, t.cmd.Stderr = t.out, t.out
	t.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := t.cmd.Start(); err != nil {
		return err
	}
	t.pid = t.cmd.Process.Pid
	t.exited = make(chan struct{})
	go func() {
		t.waitErr = t.cmd.Wait()
		close(t.exited)
	}()
	return nil
}

func (t *target) alive() bool {
	select {
	case <-t.exited:
		return false
	default:
		return true
	}
}

func (t *target) deadErr() error {
	return fmt.Errorf("%s exited (%v); its output ends:\n%s", t.name, t.waitErr, t.out.String())
}

// waitListening waits until the target listens on its port.
func (t *target) waitListening(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for !listening(t.port) {
		if !t.alive() {
			return t.deadErr()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s does not listen on port %d after %v; its output ends:\n%s", t.name, t.port, limit, t.out.String())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// stop ends the target: SIGTERM, then SIGKILL after grace.
func (t *target) stop(grace time.Duration) {
	if t.cmd == nil || !t.alive() {
		return
	}
	t.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-t.exited:
	case <-time.After(grace):
		t.cmd.Process.Kill()
		<-t.exited
	}
}
