// Package testenv is a helper for greypit's end-to-end tests ONLY. It must
// never be imported by production code.
//
// It starts real, private Postfix instances on loopback (backends that
// greypit hands mail to, and sending MTAs that relay through greypit), runs
// swaks, and offers a raw SMTP client that binds a chosen loopback source
// address. Everything an instance needs lives in one directory under /tmp
// that is removed when the test ends; nothing touches the system Postfix in
// /etc/postfix, and the system Postfix does not need to be running.
//
// Requirements: the postfix and swaks Debian packages (scripts/test-deps.sh
// installs them) and root, because Postfix's master daemon must start as
// root. Without them tests skip, except under CI=true where they fail:
// CI must never silently skip the end-to-end tests.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// binDirs are searched, in this order, after PATH. Postfix puts its
// administrative commands in /usr/sbin, which is often not in a non-root
// user's PATH.
var binDirs = []string{"/usr/sbin", "/usr/bin", "/sbin"}

// installHint tells a developer how to get the missing components.
const installHint = "run `sudo scripts/test-deps.sh` (or: apt-get install postfix swaks)"

// inCI reports whether the tests run under CI, where missing components are
// a failure, not a reason to skip.
func inCI() bool {
	v, err := strconv.ParseBool(os.Getenv("CI"))
	return err == nil && v
}

// LookBin returns the absolute path of the named binary, searching PATH and
// then /usr/sbin, /usr/bin and /sbin. It returns "" when it is not found.
func LookBin(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		if abs, err := filepath.Abs(p); err == nil {
			return abs
		}
		return p
	}
	for _, d := range binDirs {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// Require makes sure the named binaries (e.g. "postfix", "postconf",
// "postqueue", "swaks") exist in PATH or /usr/sbin. If any is missing the
// test is skipped with an install hint, or fails when CI=true.
func Require(t testing.TB, bins ...string) {
	t.Helper()
	var missing []string
	for _, b := range bins {
		if LookBin(b) == "" {
			missing = append(missing, b)
		}
	}
	if len(missing) == 0 {
		return
	}
	unavailable(t, fmt.Sprintf("missing test dependencies %s; %s", strings.Join(missing, ", "), installHint))
}

// RequireRoot skips (or fails under CI=true) unless the test runs as root,
// which starting Postfix requires.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		unavailable(t, "Postfix end-to-end tests must run as root (Postfix's master daemon starts as root)")
	}
}

func unavailable(t testing.TB, msg string) {
	t.Helper()
	if inCI() {
		t.Fatalf("%s (CI=true: not skipping)", msg)
	}
	t.Skip(msg)
}

// bin returns the path of a binary that Require has vouched for.
func bin(t testing.TB, name string) string {
	t.Helper()
	p := LookBin(name)
	if p == "" {
		Require(t, name)
	}
	return p
}

// poll calls cond every interval until it returns true or timeout elapses;
// it reports whether cond succeeded. It is the one bounded wait loop the
// package uses instead of bare sleeps.
func poll(timeout, interval time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(interval)
	}
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
