package testenv

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Redis is a private redis-server on a loopback port: its own directory,
// no persistence (--save ”, no AOF), no password. Stop and Start keep the
// port, so a test can take the store away from greypit and give it back.
type Redis struct {
	t    testing.TB
	bin  string
	dir  string
	port int

	mu  sync.Mutex
	cmd *exec.Cmd
	out *os.File
}

// StartRedis starts a redis-server and stops it when the test ends. It
// needs the redis-server Debian package (scripts/test-deps.sh); without it
// the test skips, or fails under CI=true.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	r := &Redis{t: t, bin: bin(t, "redis-server"), dir: t.TempDir(), port: FreePort(t)}
	t.Cleanup(r.Stop)
	r.Start()
	return r
}

// Addr is the server's host:port.
func (r *Redis) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port)) }

// Start (re)starts the server on its port and waits until it answers PING.
func (r *Redis) Start() {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil {
		return
	}
	out, err := os.OpenFile(filepath.Join(r.dir, "redis.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		r.t.Fatalf("redis: %v", err)
	}
	cmd := exec.Command(r.bin, "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--dir", r.dir, "--save", "", "--appendonly", "no", "--daemonize", "no",
		"--protected-mode", "no", "--loglevel", "notice")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		out.Close()
		r.t.Fatalf("redis: start %s: %v", r.bin, err)
	}
	r.cmd, r.out = cmd, out
	if !poll(10*time.Second, 20*time.Millisecond, func() bool { return r.ping() == nil }) {
		err := r.ping()
		log, _ := os.ReadFile(out.Name())
		r.t.Fatalf("redis on %s does not answer PING: %v\n%s", r.Addr(), err, tail(string(log), 20))
	}
}

// ping sends an inline PING and wants +PONG.
func (r *Redis) ping() error {
	c, err := net.DialTimeout("tcp", r.Addr(), time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

// Stop kills the server (SIGKILL: like a crash or a cut network, its
// clients get no goodbye) and waits for it to exit. Data is lost, as
// with --save ”.
func (r *Redis) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return
	}
	r.cmd.Process.Kill()
	r.cmd.Wait()
	r.out.Close()
	r.cmd, r.out = nil, nil
}
