package cli

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// policy.listen as a path: a unix socket Postfix's user can reach, a
// stale socket replaced, anything else left alone.
func TestListenPolicyUnix(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "policy.sock")
	ln, err := listenPolicy(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o666 {
		t.Errorf("socket mode: %v %v", fi.Mode(), err)
	}
	if _, err := listenPolicy(p); err == nil || !strings.Contains(err.Error(), "another policy server") {
		t.Errorf("second listener: %v", err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close() // leaves a stale socket file
	ln2, err := listenPolicy(p)
	if err != nil {
		t.Fatalf("over a stale socket: %v", err)
	}
	ln2.Close()
	f := filepath.Join(dir, "file")
	os.WriteFile(f, []byte("x"), 0o644)
	if _, err := listenPolicy(f); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("over a regular file: %v", err)
	}
	if b, _ := os.ReadFile(f); string(b) != "x" {
		t.Error("the regular file was touched")
	}
}
