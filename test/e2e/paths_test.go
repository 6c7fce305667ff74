package e2e

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/greypit/greypit/internal/testenv"
)

// An allow-listed client is spliced: the backend's own banner and replies
// reach it, Postfix logs the client's true address, and the message is
// delivered. Run for both ways of telling the backend the address.
func TestWhiteSplice(t *testing.T) {
	for _, tc := range []struct{ pfMode, handoff string }{
		{testenv.ModeProxy, "proxy-v2"},
		{testenv.ModeXClient, "xclient"},
	} {
		t.Run(tc.handoff, func(t *testing.T) {
			pf := backend(t, tc.pfMode)
			g := startGreypit(t, greypitOpts{backend: pf.Addr(), handoff: tc.handoff, allow: []string{"127.0.0.5", "::1"}})

			r := g.swaks("127.0.0.5", "alice@example.test", "white "+tc.handoff)
			if r.Code != 0 {
				t.Fatalf("white client was not accepted:\n%s", r)
			}
			if rs := r.Replies(); len(rs) == 0 || !strings.Contains(rs[0], pf.Hostname()) {
				t.Errorf("banner did not come from the backend (%s): %q", pf.Hostname(), rs)
			}
			pf.WaitLog(t, regexp.MustCompile(`client=\S*\[127\.0\.0\.5\]`), 20*time.Second)
			msgs := pf.WaitMessages(t, 1, 20*time.Second)
			if msgs[0].Subject != "white "+tc.handoff {
				t.Errorf("delivered subject %q", msgs[0].Subject)
			}
			v := g.WaitVerdicts(1)
			if !strings.Contains(v[0], "path=white") || !strings.Contains(v[0], "outcome=spliced") || !strings.Contains(v[0], "lists.allow") {
				t.Errorf("verdict line: %s", v[0])
			}

			// IPv6 loopback, also allow-listed.
			r = g.swaks("::1", "bob@example.test", "white v6 "+tc.handoff)
			if r.Code != 0 {
				t.Fatalf("white IPv6 client was not accepted:\n%s", r)
			}
			pf.WaitLog(t, regexp.MustCompile(`client=\S*\[::1\]`), 20*time.Second)
			pf.WaitMessages(t, 2, 20*time.Second)
		})
	}
}

// A new client is greylisted; an early retry is greylisted again; a retry
// after the pass delay is handed to the backend on the same connection,
// delivered once, and the host is white afterwards: its next connection
// is spliced.
func TestGreylistPassAndHandoff(t *testing.T) {
	for _, tc := range []struct{ pfMode, handoff string }{
		{testenv.ModeProxy, "proxy-v2"},
		{testenv.ModeXClient, "xclient"},
	} {
		t.Run(tc.handoff, func(t *testing.T) {
			pf := backend(t, tc.pfMode)
			g := startGreypit(t, greypitOpts{backend: pf.Addr(), handoff: tc.handoff})
			testGreylistPass(t, pf, g)
		})
	}
}

func testGreylistPass(t *testing.T, pf *testenv.Postfix, g *Greypit) {

	r := g.swaks("127.0.0.6", "carol@example.test", "grey")
	first := time.Now()
	if got := replyTo(r, "RCPT TO"); !strings.HasPrefix(got, "451 4.7.1") {
		t.Fatalf("first attempt: RCPT reply %q, want 451 4.7.1\n%s", got, r)
	}
	if r.Code == 0 {
		t.Fatalf("first attempt succeeded:\n%s", r)
	}
	r = g.swaks("127.0.0.6", "carol@example.test", "grey")
	if got := replyTo(r, "RCPT TO"); !strings.HasPrefix(got, "451 4.7.1") {
		t.Fatalf("early retry: RCPT reply %q, want 451 4.7.1\n%s", got, r)
	}
	if out, _ := g.DB("why", "127.0.0.6"); !strings.Contains(out, "GREY") || !strings.Contains(out, "pending") {
		t.Errorf("db why during greylisting:\n%s", out)
	}
	waitUntil(first.Add(passDelay))

	r = g.swaks("127.0.0.6", "carol@example.test", "grey")
	if r.Code != 0 {
		t.Fatalf("retry after the pass delay was not delivered:\n%s", r)
	}
	rcpt := replyTo(r, "RCPT TO")
	if !strings.HasPrefix(rcpt, "250") || !strings.Contains(r.Out, "queued as") {
		t.Fatalf("RCPT reply %q; want the backend's 250 and its queue id\n%s", rcpt, r)
	}
	pf.WaitLog(t, regexp.MustCompile(`client=\S*\[127\.0\.0\.6\]`), 20*time.Second)
	msgs := pf.WaitMessages(t, 1, 20*time.Second)
	if msgs[0].DeliveredTo != "carol@example.test" {
		t.Errorf("delivered to %q", msgs[0].DeliveredTo)
	}
	out, code := g.DB("why", "127.0.0.6")
	if code != 0 || !strings.Contains(out, "WHITE") || !strings.Contains(out, "passed greylisting") {
		t.Errorf("db why after the pass (exit %d):\n%s", code, out)
	}

	// The next connection is spliced from the first byte.
	r = g.swaks("127.0.0.6", "dave@example.test", "now white")
	if r.Code != 0 {
		t.Fatalf("white host's next message:\n%s", r)
	}
	v := g.WaitVerdicts(4)
	if !strings.Contains(v[3], "path=white") || !strings.Contains(v[3], "outcome=spliced") {
		t.Errorf("fourth session verdict: %s", v[3])
	}
	for i, want := range []string{"outcome=greylisted", "outcome=greylisted", "outcome=handoff"} {
		if !strings.Contains(v[i], want) || !strings.Contains(v[i], "path=grey") {
			t.Errorf("verdict %d: want %s: %s", i, want, v[i])
		}
	}
	pf.WaitMessages(t, 2, 20*time.Second)
	if n := len(pf.Messages()); n != 2 {
		t.Errorf("backend has %d messages, want exactly 2", n)
	}
}

// The same over IPv6 loopback, with the /64 as the tuple's prefix.
func TestGreylistIPv6(t *testing.T) {
	pf := backend(t, testenv.ModeProxy)
	g := startGreypit(t, greypitOpts{backend: pf.Addr()})
	r := g.swaks("::1", "erin@example.test", "grey v6")
	first := time.Now()
	if got := replyTo(r, "RCPT TO"); !strings.HasPrefix(got, "451 4.7.1") {
		t.Fatalf("first attempt: %q\n%s", got, r)
	}
	out, _ := g.DB("list", "-type", "grey")
	if !strings.Contains(out, "::/64 sender@example.org erin@example.test") {
		t.Errorf("grey tuple not keyed on the /64:\n%s", out)
	}
	waitUntil(first.Add(passDelay))
	r = g.swaks("::1", "erin@example.test", "grey v6")
	if r.Code != 0 {
		t.Fatalf("IPv6 retry:\n%s", r)
	}
	pf.WaitLog(t, regexp.MustCompile(`client=\S*\[::1\]`), 20*time.Second)
	pf.WaitMessages(t, 1, 20*time.Second)
}

// passDelay is greylist.pass_delay in the test config.
const passDelay = 3 * time.Second

// waitUntil sleeps until t: the greylist pass delay is wall-clock time, so
// there is no event to wait for instead.
func waitUntil(t time.Time) {
	if d := time.Until(t); d > 0 {
		time.Sleep(d)
	}
}
