package testenv

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
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
	conf string   // config file (sentinels need one), before the options
	args []string // more options, e.g. --cluster-enabled yes

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

// StartRedisCluster starts n (at least 3) redis-server nodes with
// cluster mode on, joins them into one cluster of n masters with
// `redis-cli --cluster create`, and waits until every node reports
// cluster_state:ok.
func StartRedisCluster(t testing.TB, n int) []*Redis {
	t.Helper()
	cli := bin(t, "redis-cli")
	nodes := make([]*Redis, n)
	create := []string{"--cluster", "create"}
	for i := range nodes {
		r := &Redis{t: t, bin: bin(t, "redis-server"), dir: t.TempDir(), port: FreePort(t)}
		r.args = []string{"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(r.dir, "nodes.conf")}
		t.Cleanup(r.Stop)
		r.Start()
		nodes[i] = r
		create = append(create, r.Addr())
	}
	out, err := exec.Command(cli, append(create, "--cluster-replicas", "0", "--cluster-yes")...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, r := range nodes {
		if !poll(20*time.Second, 50*time.Millisecond, func() bool {
			info, err := r.command("CLUSTER", "INFO")
			return err == nil && strings.Contains(info, "cluster_state:ok")
		}) {
			info, err := r.command("CLUSTER", "INFO")
			t.Fatalf("cluster node %s not ok: %v\n%s", r.Addr(), err, info)
		}
	}
	return nodes
}

// StartSentinel starts a Redis Sentinel (redis-server --sentinel) that
// monitors master under the name master, and waits until it knows the
// master's address. Addr is then the sentinel's.
func StartSentinel(t testing.TB, master *Redis, name string) *Redis {
	t.Helper()
	r := &Redis{t: t, bin: bin(t, "redis-server"), dir: t.TempDir(), port: FreePort(t)}
	conf := filepath.Join(r.dir, "sentinel.conf")
	// Sentinel rewrites its config file, so it must be writable.
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("sentinel monitor %s 127.0.0.1 %d 1\n", name, master.port)), 0o600); err != nil {
		t.Fatal(err)
	}
	r.conf, r.args = conf, []string{"--sentinel"}
	t.Cleanup(r.Stop)
	r.Start()
	want := fmt.Sprintf("127.0.0.1 %d", master.port)
	if !poll(10*time.Second, 20*time.Millisecond, func() bool {
		got, err := r.command("SENTINEL", "get-master-addr-by-name", name)
		return err == nil && got == want
	}) {
		got, err := r.command("SENTINEL", "get-master-addr-by-name", name)
		t.Fatalf("sentinel on %s: master %s is %q, %v; want %q", r.Addr(), name, got, err, want)
	}
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
	var args []string
	if r.conf != "" {
		args = append(args, r.conf) // a config file must come first
	}
	args = append(args, "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--dir", r.dir, "--daemonize", "no", "--protected-mode", "no", "--loglevel", "notice")
	if !slices.Contains(r.args, "--sentinel") {
		args = append(args, "--save", "", "--appendonly", "no")
	}
	args = append(args, r.args...)
	cmd := exec.Command(r.bin, args...)
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

// command sends one command in RESP and returns a simple or bulk
// string reply, or the elements of an array of bulk strings joined by
// spaces. Enough for PING and SENTINEL queries; not a client.
func (r *Redis) command(args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", r.Addr(), time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	req := fmt.Sprintf("*%d\r\n", len(args))
	for _, a := range args {
		req += fmt.Sprintf("$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(req)); err != nil {
		return "", err
	}
	br := bufio.NewReader(c)
	line := func() (string, error) {
		l, err := br.ReadString('\n')
		return strings.TrimRight(l, "\r\n"), err
	}
	head, err := line()
	if err != nil || head == "" {
		return "", fmt.Errorf("reply %q: %v", head, err)
	}
	switch head[0] {
	case '+':
		return head[1:], nil
	case '-':
		return "", fmt.Errorf("%s", head[1:])
	case '$':
		n, err := strconv.Atoi(head[1:])
		if err != nil || n < 0 {
			return "", err
		}
		b := make([]byte, n+2) // the value and its CRLF
		if _, err := io.ReadFull(br, b); err != nil {
			return "", err
		}
		return string(b[:n]), nil
	case '*':
		n, err := strconv.Atoi(head[1:])
		if err != nil {
			return "", fmt.Errorf("reply %q", head)
		}
		var parts []string
		for range max(n, 0) {
			if _, err := line(); err != nil { // $len
				return "", err
			}
			p, err := line()
			if err != nil {
				return "", err
			}
			parts = append(parts, p)
		}
		return strings.Join(parts, " "), nil
	}
	return "", fmt.Errorf("unexpected reply %q", head)
}

// ping sends PING and wants PONG.
func (r *Redis) ping() error {
	got, err := r.command("PING")
	if err != nil {
		return err
	}
	if got != "PONG" {
		return fmt.Errorf("PING answered %q", got)
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
	r.cmd.Process.Signal(syscall.SIGCONT) // a paused server dies too
	r.cmd.Process.Kill()
	r.cmd.Wait()
	r.out.Close()
	r.cmd, r.out = nil, nil
}

// Pause stops the server with SIGSTOP: connections stay open and the
// kernel still accepts new ones, but nothing is answered, like a Redis
// behind a network partition. Resume (SIGCONT) lets it go on.
func (r *Redis) Pause() { r.signal(syscall.SIGSTOP) }

// Resume undoes Pause.
func (r *Redis) Resume() { r.signal(syscall.SIGCONT) }

func (r *Redis) signal(sig syscall.Signal) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil {
		r.cmd.Process.Signal(sig)
	}
}

// Failover is a Sentinel-monitored group on loopback: a master, its
// replicas and the sentinels, set up to fail over fast (the master is
// down after 1s without an answer). Master is the one started as master;
// after a failover ask the sentinels (MasterAddr) for the current one.
type Failover struct {
	Name      string
	Master    *Redis
	Replicas  []*Redis
	Sentinels []*Redis
}

// StartFailover starts a master, replicas replicas of it and sentinels
// sentinels (quorum: a majority of them) monitoring it under name, and
// waits until every sentinel knows the replicas and the other sentinels,
// so a failover can start as soon as the master goes.
func StartFailover(t testing.TB, name string, replicas, sentinels int) *Failover {
	t.Helper()
	f := &Failover{Name: name, Master: StartRedis(t)}
	for range replicas {
		r := &Redis{t: t, bin: bin(t, "redis-server"), dir: t.TempDir(), port: FreePort(t)}
		r.args = []string{"--replicaof", "127.0.0.1", strconv.Itoa(f.Master.port)}
		t.Cleanup(r.Stop)
		r.Start()
		f.Replicas = append(f.Replicas, r)
	}
	for _, r := range f.Replicas {
		if !poll(10*time.Second, 20*time.Millisecond, func() bool {
			info, err := r.command("INFO", "replication")
			return err == nil && strings.Contains(info, "master_link_status:up")
		}) {
			info, _ := r.command("INFO", "replication")
			t.Fatalf("replica %s did not sync with its master:\n%s", r.Addr(), info)
		}
	}
	quorum := sentinels/2 + 1
	for range sentinels {
		r := &Redis{t: t, bin: bin(t, "redis-server"), dir: t.TempDir(), port: FreePort(t)}
		conf := filepath.Join(r.dir, "sentinel.conf")
		c := fmt.Sprintf("sentinel monitor %[1]s 127.0.0.1 %[2]d %[3]d\n"+
			"sentinel down-after-milliseconds %[1]s 1000\n"+
			"sentinel failover-timeout %[1]s 5000\n"+
			"sentinel parallel-syncs %[1]s 1\n", name, f.Master.port, quorum)
		if err := os.WriteFile(conf, []byte(c), 0o600); err != nil {
			t.Fatal(err)
		}
		r.conf, r.args = conf, []string{"--sentinel"}
		t.Cleanup(r.Stop)
		r.Start()
		f.Sentinels = append(f.Sentinels, r)
	}
	// Replicas are learnt from the master's INFO, the other sentinels
	// from hello messages every 2s.
	for _, s := range f.Sentinels {
		if !poll(20*time.Second, 50*time.Millisecond, func() bool {
			info, err := s.command("SENTINEL", "master", name)
			return err == nil && strings.Contains(info, fmt.Sprintf("num-slaves %d ", replicas)) &&
				strings.Contains(info, fmt.Sprintf("num-other-sentinels %d ", sentinels-1))
		}) {
			info, err := s.command("SENTINEL", "master", name)
			t.Fatalf("sentinel %s does not know the group yet: %v\n%s", s.Addr(), err, info)
		}
	}
	return f
}

// SentinelAddrs are the sentinels' addresses.
func (f *Failover) SentinelAddrs() []string {
	var a []string
	for _, s := range f.Sentinels {
		a = append(a, s.Addr())
	}
	return a
}

// MasterAddr is the master's address if every sentinel that answers
// agrees on it, else an error.
func (f *Failover) MasterAddr() (string, error) {
	addr := ""
	for _, s := range f.Sentinels {
		got, err := s.command("SENTINEL", "get-master-addr-by-name", f.Name)
		if err != nil {
			continue
		}
		host, port, _ := strings.Cut(got, " ")
		a := net.JoinHostPort(host, port)
		if addr != "" && a != addr {
			return "", fmt.Errorf("sentinels disagree: %s and %s", addr, a)
		}
		addr = a
	}
	if addr == "" {
		return "", errors.New("no sentinel answers")
	}
	return addr, nil
}

// IsMaster reports whether r answers as a master (INFO replication).
func (r *Redis) IsMaster() bool {
	info, err := r.command("INFO", "replication")
	return err == nil && strings.Contains(info, "role:master")
}

var shared struct {
	once     sync.Once
	cluster  []*Redis
	err      error
	skip     string
	cleanups []func()
	mu       sync.Mutex
}

// sharedTB outlives the test that starts a shared server: its cleanups
// and temporary directories wait for StopShared.
type sharedTB struct{ testing.TB }

func (sharedTB) Cleanup(f func()) {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	shared.cleanups = append(shared.cleanups, f)
}

func (s sharedTB) TempDir() string {
	d, err := os.MkdirTemp("", "greypit-shared-redis-")
	if err != nil {
		s.Fatalf("testenv: %v", err)
	}
	s.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// SharedRedisCluster is one 3-node cluster for the whole test binary
// (started by the first test that asks), so a contract suite can run on a
// cluster without paying its start-up per test; tests keep apart by key
// prefix. The test binary's TestMain must call StopShared.
func SharedRedisCluster(t testing.TB) []*Redis {
	t.Helper()
	shared.once.Do(func() {
		ok := false
		defer func() {
			switch {
			case ok:
			case t.Skipped():
				shared.skip = "testenv: the shared cluster could not start (see " + t.Name() + ")"
			default:
				shared.err = fmt.Errorf("testenv: starting the shared cluster failed in %s", t.Name())
			}
		}()
		shared.cluster = StartRedisCluster(sharedTB{t}, 3)
		ok = true
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	if shared.skip != "" {
		t.Skip(shared.skip)
	}
	return shared.cluster
}

// StopShared stops what SharedRedisCluster started.
func StopShared() {
	shared.mu.Lock()
	fs := shared.cleanups
	shared.cleanups = nil
	shared.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}
