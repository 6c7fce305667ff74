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
// Every instance's readiness probe connects from 127.0.0.1 (it shows in the
// maillog as "connect from unknown[127.0.0.1]"), so tests that assert on
// client addresses use other loopback sources: 127.0.0.2 and up, any of
// which Linux lets a socket bind without configuration.
//
// Postfix facts the harness relies on (Postfix 3.7, Debian 12):
//   - `postfix -c DIR start|stop` and `postqueue -c DIR` work for root
//     without listing DIR in alternate_config_directories of
//     /etc/postfix/main.cf; nothing system-wide is changed.
//   - Postfix re-reads a main.cf modified within the last ~second in 300 ms
//     naps until it "cools down"; fresh config files are therefore
//     backdated, which cuts an instance's start from ~2.5 s to ~0.3 s.
//   - maillog_file needs the postlog service in master.cf and a
//     maillog_file_prefixes entry covering its path.
//   - minimal_backoff_time, maximal_backoff_time and queue_run_delay
//     accept 1s at the least; 0 makes qmgr die with a fatal error that
//     `postfix start` does not report (StartPostfix checks the log).
//   - smtpd_peername_lookup = no makes clients log as unknown[ADDR] with
//     no DNS; smtp_dns_support_level = disabled lets the smtp client reach
//     relayhost [ip]:port with no DNS at all.
//   - A smtpd with smtpd_upstream_proxy_protocol = haproxy sends nothing
//     until it has a PROXY header; it takes v1 and v2 (including the v2
//     LOCAL command) but not v1 "PROXY UNKNOWN".
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
const installHint = "run `sudo scripts/test-deps.sh` (or: apt-get install postfix swaks dnsutils haproxy prometheus chromium)"

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
