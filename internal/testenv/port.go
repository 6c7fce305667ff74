package testenv

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
)

var (
	portsMu sync.Mutex
	ports   = map[int]bool{} // ports FreePort has handed out in this process
)

// minPort is the lowest port FreePort hands out.
const minPort = 10000

// FreePort returns a TCP port that is free now on 127.0.0.1 (and on ::1
// where IPv6 loopback exists, as greypit listens on both) and that FreePort
// has not returned before in this test binary. It is for a listener that
// another process opens later (greypit, Postfix, HAProxy, Redis), so it
// lies below the kernel's ephemeral range: a port from that range can be
// taken by any outgoing connection of a busy test run before the listener
// binds. Test binaries run side by side (go test ./... runs packages in
// parallel), so a port is also claimed machine-wide (see claim). (A
// process outside the tests can still grab a port first; that is rare.)
func FreePort(t testing.TB) int {
	t.Helper()
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		fmt.Sscan(string(b), &low)
	}
	if low <= minPort+1000 {
		return ephemeralPort(t)
	}
	for range 200 {
		port := minPort + rand.IntN(low-minPort)
		portsMu.Lock()
		dup := ports[port]
		portsMu.Unlock()
		if dup || !free(port) || !claim(port) {
			continue
		}
		portsMu.Lock()
		ports[port] = true
		portsMu.Unlock()
		return port
	}
	t.Fatalf("testenv: FreePort: no free port below %d after 200 tries", low)
	return 0
}

// claimDir holds one file per port a test process has claimed, naming
// the process.
var claimDir = filepath.Join(os.TempDir(), "greypit-testenv-ports")

// claim makes port this process's among all test processes on the
// machine: it creates claimDir/PORT holding the process id, or takes over
// a file whose process has exited. Without this, two test binaries could
// both find a port free and hand it to two listeners started later.
func claim(port int) bool {
	if err := os.MkdirAll(claimDir, 0o777); err != nil {
		return true // no claims possible: fall back to the free check alone
	}
	name := filepath.Join(claimDir, strconv.Itoa(port))
	me := strconv.Itoa(os.Getpid())
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
	if err == nil {
		_, err = f.WriteString(me)
		f.Close()
		return err == nil
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(string(b))
	if err == nil && pid > 0 && syscall.Kill(pid, 0) == nil {
		return false // a live test process holds it (perhaps this one)
	}
	// Its process is gone: take it over. Two processes racing for the
	// same stale file is possible but needs the same random port twice.
	return os.WriteFile(name, []byte(me), 0o666) == nil
}

// free reports whether port can be bound on the IPv4 loopback and, where
// there is one, the IPv6 loopback.
func free(port int) bool {
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return false
	}
	l.Close()
	l6, err := net.Listen("tcp", fmt.Sprintf("[::1]:%d", port))
	if err != nil {
		// No IPv6 loopback at all is fine; the port taken on ::1 is not.
		probe, perr := net.Listen("tcp", "[::1]:0")
		if perr != nil {
			return true
		}
		probe.Close()
		return false
	}
	l6.Close()
	return true
}

// ephemeralPort is FreePort on a machine whose ephemeral range leaves no
// room below it: the kernel picks.
func ephemeralPort(t testing.TB) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("testenv: FreePort: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		portsMu.Lock()
		dup := ports[port]
		ports[port] = true
		portsMu.Unlock()
		if !dup {
			return port
		}
	}
	t.Fatalf("testenv: FreePort: no fresh port after 50 tries")
	return 0
}
