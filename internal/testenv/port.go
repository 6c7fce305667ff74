package testenv

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"sync"
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
// binds. (Another process can still grab a port first; on a test machine
// that is rare.)
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
		if dup || !free(port) {
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
