package testenv

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// HAProxyRoute is one TCP frontend of a private HAProxy: it listens on
// Listen and forwards to Server, prefixing each connection with a PROXY
// header (Send: "send-proxy" for v1, "send-proxy-v2" for v2).
type HAProxyRoute struct {
	Listen, Server, Send string
	// Check adds health checks that carry a PROXY header (a v2 LOCAL
	// command with send-proxy-v2), every 300 ms.
	Check bool
}

// HAProxy is a private HAProxy load balancer on loopback.
type HAProxy struct {
	Config string
	cmd    *exec.Cmd
	out    *lockedBuffer
}

// StartHAProxy runs haproxy in the foreground from a config in a temp
// directory and waits until its frontends are bound (its monitor URI
// answers: HAProxy binds every listener before it serves any). It is
// stopped when the test ends.
func StartHAProxy(t testing.TB, routes ...HAProxyRoute) *HAProxy {
	t.Helper()
	exe := bin(t, "haproxy")
	monitor := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	var b strings.Builder
	fmt.Fprintf(&b, "global\n\tmaxconn 200\n\ndefaults\n\tmode tcp\n\ttimeout connect 5s\n\ttimeout client 120s\n\ttimeout server 120s\n\n")
	fmt.Fprintf(&b, "frontend monitor\n\tmode http\n\tbind %s\n\tmonitor-uri /ready\n\n", monitor)
	for i, r := range routes {
		check := ""
		if r.Check {
			check = " check inter 300ms check-send-proxy"
		}
		fmt.Fprintf(&b, "frontend f%d\n\tbind %s\n\tdefault_backend b%d\n\nbackend b%d\n\tserver s%d %s %s%s\n\n",
			i, r.Listen, i, i, i, r.Server, r.Send, check)
	}
	dir := t.TempDir()
	h := &HAProxy{Config: filepath.Join(dir, "haproxy.cfg"), out: &lockedBuffer{}}
	if err := os.WriteFile(h.Config, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	h.cmd = exec.Command(exe, "-db", "-f", h.Config)
	h.cmd.Stdout, h.cmd.Stderr = h.out, h.out
	if err := h.cmd.Start(); err != nil {
		t.Fatalf("testenv: haproxy: %v", err)
	}
	done := make(chan struct{})
	go func() { h.cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		h.cmd.Process.Kill()
		<-done
	})
	// Each probe is bounded, so a stalled one cannot outlast the deadline;
	// a loaded machine (parallel Postfix instances) can take seconds.
	hc := &http.Client{Timeout: 2 * time.Second}
	ready := poll(30*time.Second, 50*time.Millisecond, func() bool {
		select {
		case <-done:
			return true
		default:
		}
		resp, err := hc.Get("http://" + monitor + "/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	select {
	case <-done:
		t.Fatalf("testenv: haproxy exited:\n%s\nconfig:\n%s", h.out, b.String())
	default:
	}
	if !ready {
		t.Fatalf("testenv: haproxy not ready in 30s:\n%s", h.out)
	}
	return h
}

// Output is what haproxy wrote so far.
func (h *HAProxy) Output() string { return h.out.String() }

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
