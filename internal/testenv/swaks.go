package testenv

import (
	"context"
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// SwaksTimeout bounds one swaks run.
const SwaksTimeout = 60 * time.Second

// SwaksResult is the outcome of one swaks run.
type SwaksResult struct {
	Args []string // the arguments swaks was given
	Out  string   // stdout and stderr, interleaved
	// Code is swaks' exit status: 0 success; 21 connect/banner failure,
	// 23 rejected at MAIL, 24 all RCPTs rejected, 25 rejected at DATA,
	// 28/29 TLS or auth trouble, 2 usage error; -1 if it timed out or was
	// killed.
	Code int
}

// Swaks runs swaks with args, bounded by SwaksTimeout, and returns its
// combined output and exit code. A non-zero exit is not a test failure:
// many tests expect a rejection. Only failing to run swaks at all is.
//
// The flags greypit's tests use (swaks 20201014):
//
//	--server 127.0.0.1 --port N    where to connect
//	--local-interface 127.0.0.5    source address, i.e. the client IP the
//	                               server sees (-li; "ip:port" also works)
//	--from a@x.test --to b@example.test   envelope (--to may be comma-separated)
//	--helo name                    EHLO/HELO argument
//	--h-Subject "text"             add/replace a header (--header "X: y")
//	--body "text"                  message body
//	--pipeline                     use PIPELINING (fails if not offered)
//	--tls                          require STARTTLS (--tls-optional: try it)
//	--quit-after CONNECT|BANNER|EHLO|TLS|XCLIENT|MAIL|RCPT
//	                               stop early (also: --quit-after first-helo)
//	--xclient-addr IP              send XCLIENT ADDR=IP (other --xclient-* too)
//	--timeout 10s                  per-step timeout (swaks' default is 30s)
//	--hide-all / --silent          quieter output (but Replies then finds less)
func Swaks(t testing.TB, args ...string) SwaksResult {
	t.Helper()
	path := bin(t, "swaks")
	ctx, cancel := context.WithTimeout(context.Background(), SwaksTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	res := SwaksResult{Args: args, Out: string(out)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case ctx.Err() != nil:
		res.Code = -1
		t.Logf("testenv: swaks %s timed out after %v", strings.Join(args, " "), SwaksTimeout)
	case errors.As(err, &ee):
		res.Code = ee.ExitCode()
	default:
		t.Fatalf("testenv: running swaks: %v", err)
	}
	return res
}

// Replies returns the server's reply lines from swaks' transcript, in
// order, without swaks' markers. swaks marks what it received with "<- "
// (plaintext), "<~ " (inside TLS), and "<**" / "<~*" when the reply is an
// error (4xx/5xx). Multi-line replies give one element per line, e.g.
// "250-PIPELINING".
func (r SwaksResult) Replies() []string {
	var out []string
	for _, line := range strings.Split(r.Out, "\n") {
		line = strings.TrimRight(line, "\r")
		if len(line) < 3 {
			continue
		}
		switch line[:3] {
		case "<- ", "<~ ", "<**", "<~*":
			out = append(out, strings.TrimLeft(line[3:], " "))
		}
	}
	return out
}

// ErrorReplies returns only the replies swaks flagged as errors ("<**",
// "<~*").
func (r SwaksResult) ErrorReplies() []string {
	var out []string
	for _, line := range strings.Split(r.Out, "\n") {
		if strings.HasPrefix(line, "<**") || strings.HasPrefix(line, "<~*") {
			out = append(out, strings.TrimLeft(strings.TrimRight(line[3:], "\r"), " "))
		}
	}
	return out
}

// String is for failure messages: the command line and its transcript.
func (r SwaksResult) String() string {
	return "swaks " + strings.Join(r.Args, " ") + "\n(exit " + strconv.Itoa(r.Code) + ")\n" + r.Out
}
