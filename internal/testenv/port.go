package testenv

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"testing"
)

// ListenPort returns a free port on 127.0.0.1 below the kernel's
// ephemeral range, for a listener that another process opens later
// (greypit's metrics.listen, HAProxy's frontends). A port from FreePort
// lies in the ephemeral range, where any outgoing connection of a busy
// test run (Postfix, swaks) can take it before the listener binds.
func ListenPort(t testing.TB) int {
	t.Helper()
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		fmt.Sscan(string(b), &low)
	}
	const min = 10000
	if low <= min+1000 {
		return FreePort(t)
	}
	for range 200 {
		port := min + rand.IntN(low-min)
		portsMu.Lock()
		dup := ports[port]
		portsMu.Unlock()
		if dup {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		l.Close()
		portsMu.Lock()
		ports[port] = true
		portsMu.Unlock()
		return port
	}
	t.Fatalf("testenv: ListenPort: no free port below %d after 200 tries", low)
	return 0
}
