package session_test

import (
	"crypto/tls"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/greypit/greypit/internal/greylist"
	"github.com/greypit/greypit/internal/store"
)

const banner = hostname + " ESMTP greypit"

func TestGreetingAndQuit(t *testing.T) {
	h := newHarness(t)
	c, r := h.start()
	c.expect(220, "", banner)
	c.cmd("QUIT", 221, "2.0.0", hostname+" closing connection")
	c.expectEOF()
	res := r.result(t)
	if res.Outcome != "quit" || res.Pregreet || res.Err != nil {
		t.Errorf("result = %+v, want quit, no pregreet, no error", res)
	}
}

func TestPregreet(t *testing.T) {
	h := newHarness(t, func(h *harness) { h.cfg.GreetWait = 10 * time.Second })
	// The client talks before the banner. The session notices at once
	// (no 10 s wait), still sends the banner and answers the command.
	c, r := h.start("EHLO early.example\r\n")
	start := time.Now()
	c.expect(220, "", banner)
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("banner took %v after pregreet", el)
	}
	c.expect(250, "", hostname)
	c.cmd("QUIT", 221, "", "")
	res := r.result(t)
	if !res.Pregreet || res.Helo != "early.example" {
		t.Errorf("result = %+v, want pregreet and helo early.example", res)
	}
}

func TestNoPregreetWhenClientWaits(t *testing.T) {
	h := newHarness(t, func(h *harness) { h.cfg.GreetWait = 50 * time.Millisecond })
	c, r := h.start()
	c.expect(220, "", banner)
	c.cmd("EHLO patient.example", 250, "", hostname)
	c.cmd("QUIT", 221, "", "")
	if res := r.result(t); res.Pregreet {
		t.Errorf("result = %+v, want no pregreet", res)
	}
}

func TestEHLOExtensions(t *testing.T) {
	srvTLS, _ := selfSigned(t)
	tests := []struct {
		name string
		tls  func() *tls.Config
		want []string
	}{
		{"no TLS", nil, []string{hostname, "PIPELINING", "SIZE 1000000", "8BITMIME", "ENHANCEDSTATUSCODES"}},
		{"TLS func returns nil", func() *tls.Config { return nil }, []string{hostname, "PIPELINING", "SIZE 1000000", "8BITMIME", "ENHANCEDSTATUSCODES"}},
		{"TLS", func() *tls.Config { return srvTLS }, []string{hostname, "PIPELINING", "SIZE 1000000", "8BITMIME", "ENHANCEDSTATUSCODES", "STARTTLS"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(h *harness) { h.cfg.TLS = tt.tls })
			c, _ := h.start()
			c.expect(220, "", banner)
			r := c.cmd("EHLO client.example", 250, "", "")
			if !slices.Equal(r.Lines, tt.want) {
				t.Errorf("EHLO lines = %q, want %q", r.Lines, tt.want)
			}
			// HELO gets a one-line reply, no extensions.
			r = c.cmd("HELO client.example", 250, "", "")
			if !slices.Equal(r.Lines, []string{hostname}) {
				t.Errorf("HELO lines = %q", r.Lines)
			}
			c.cmd("QUIT", 221, "", "")
		})
	}
}

func TestHelloArguments(t *testing.T) {
	tests := []struct {
		line     string
		code     int
		enh      string
		wantHelo string
	}{
		{"HELO", 501, "5.5.4", ""},
		{"EHLO", 501, "5.5.4", ""},
		{"HELO    ", 501, "5.5.4", ""},
		{"HELO two words", 501, "5.5.4", ""},
		{"HELO one.example", 250, "", "one.example"},
		{"helo lower.example", 250, "", "lower.example"},
		{"EHLO [192.0.2.1]", 250, "", "[192.0.2.1]"},
		// EHLO may carry junk after the name; the name is kept.
		{"EHLO name.example junk here", 250, "", "name.example"},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			h := newHarness(t)
			c, r := h.start()
			c.expect(220, "", banner)
			c.cmd(tt.line, tt.code, tt.enh, "")
			if tt.code != 250 {
				// Not greeted: MAIL is still out of sequence.
				c.cmd("MAIL FROM:<a@example.com>", 503, "5.5.1", "Send HELO/EHLO first")
			}
			c.cmd("QUIT", 221, "", "")
			if res := r.result(t); res.Helo != tt.wantHelo {
				t.Errorf("Helo = %q, want %q", res.Helo, tt.wantHelo)
			}
		})
	}
}

func TestCommandSequence(t *testing.T) {
	h := newHarness(t)
	c, r := h.start()
	c.expect(220, "", banner)
	c.cmd("MAIL FROM:<alice@example.com>", 503, "5.5.1", "Send HELO/EHLO first")
	c.cmd("EHLO client.example", 250, "", "")
	c.cmd("RCPT TO:<bob@example.net>", 503, "5.5.1", "Need MAIL command")
	c.cmd("MAIL FROM:<alice@example.com>", 250, "2.1.0", "Ok")
	c.cmd("MAIL FROM:<alice@example.com>", 503, "5.5.1", "Nested MAIL command")
	c.cmd("RSET", 250, "2.0.0", "")
	c.cmd("RCPT TO:<bob@example.net>", 503, "5.5.1", "Need MAIL command")
	c.cmd("MAIL FROM:<>", 250, "2.1.0", "")
	// A new EHLO resets the transaction too.
	c.cmd("EHLO client.example", 250, "", "")
	c.cmd("RCPT TO:<bob@example.net>", 503, "5.5.1", "")
	c.cmd("MAIL FROM:<bad address>", 501, "", "")
	c.cmd("NOOP", 250, "2.0.0", "")
	c.cmd("VRFY bob", 252, "2.5.0", "")
	c.cmd("HELP", 214, "", "")
	c.cmd("EXPN list", 502, "5.5.1", "not implemented")
	c.cmd("XYZZY", 500, "5.5.2", "")
	c.cmd("QUIT", 221, "", "")
	c.expectEOF()
	if res := r.result(t); res.Outcome != "quit" {
		t.Errorf("outcome %q", res.Outcome)
	}
}

func TestMailSize(t *testing.T) {
	h := newHarness(t)
	c, _ := h.start()
	c.expect(220, "", banner)
	c.cmd("EHLO client.example", 250, "", "")
	c.cmd("MAIL FROM:<a@example.com> SIZE=1000001", 552, "5.3.4", "Message size exceeds fixed limit")
	// The refused MAIL opened no transaction.
	c.cmd("RCPT TO:<b@example.com>", 503, "5.5.1", "")
	c.cmd("MAIL FROM:<a@example.com> SIZE=abc", 501, "5.5.4", "Bad SIZE parameter")
	c.cmd("MAIL FROM:<a@example.com> SIZE=-1", 501, "5.5.4", "Bad SIZE parameter")
	c.cmd("MAIL FROM:<a@example.com> SIZE=1000000", 250, "2.1.0", "")
	c.cmd("QUIT", 221, "", "")
}

func TestGreylistFirstRcpt(t *testing.T) {
	h := newHarness(t)
	c, r := h.start()
	c.expect(220, "", banner)
	c.cmd("EHLO client.example", 250, "", "")
	c.cmd("MAIL FROM:<prvs=1234abcd=alice@example.com>", 250, "", "")
	c.cmd("RCPT TO:<bob@example.net>", 451, "4.7.1", "Greylisted, please try again in 300 seconds")
	c.cmd("RCPT TO:<carol@example.net>", 451, "4.7.1", "try again in 300 seconds")
	h.clock.Advance(2 * time.Minute)
	c.cmd("RCPT TO:<bob@example.net>", 451, "4.7.1", "try again in 180 seconds")
	c.cmd("DATA", 554, "5.5.1", "No valid recipients")
	c.cmd("QUIT", 221, "", "")
	c.expectEOF()
	res := r.result(t)
	if res.Outcome != "greylisted" || res.From != "prvs=1234abcd=alice@example.com" || len(res.Rcpts) != 0 {
		t.Errorf("result = %+v", res)
	}
	if want := []string{"bob@example.net", "carol@example.net", "bob@example.net"}; !slices.Equal(res.Deferred, want) {
		t.Errorf("Deferred = %q, want %q", res.Deferred, want)
	}
	// The tuple is keyed on the client's /24 and the normalised sender.
	key := greylist.Key(netip.MustParseAddr("127.0.0.1"), 24, 64, "prvs=99=alice@example.com", "BOB@example.net")
	if key != "127.0.0.0/24 alice@example.com bob@example.net" {
		t.Fatalf("key %q", key)
	}
	e, err := h.store.Get(h.ctx, store.Grey, key)
	if err != nil || e.Count != 2 {
		t.Errorf("grey entry %q = %+v, %v; want 2 attempts", key, e, err)
	}
}

func TestGreylistShortDelayRoundsUp(t *testing.T) {
	h := newHarness(t, func(h *harness) { h.grey.Params.PassDelay = 50 * time.Millisecond })
	c, _ := h.start()
	c.expect(220, "", banner)
	c.cmd("HELO client.example", 250, "", "")
	c.cmd("MAIL FROM:<a@example.com>", 250, "", "")
	c.cmd("RCPT TO:<b@example.com>", 451, "4.7.1", "try again in 1 seconds")
	c.cmd("QUIT", 221, "", "")
}

func TestMaxRecipients(t *testing.T) {
	h := newHarness(t, func(h *harness) { h.cfg.MaxRecipients = 2 })
	c, _ := h.start()
	c.expect(220, "", banner)
	c.cmd("EHLO client.example", 250, "", "")
	c.cmd("MAIL FROM:<a@example.com>", 250, "", "")
	c.cmd("RCPT TO:<b1@example.com>", 451, "4.7.1", "")
	c.cmd("RCPT TO:<b2@example.com>", 451, "4.7.1", "")
	c.cmd("RCPT TO:<b3@example.com>", 452, "4.5.3", "Too many recipients")
	c.cmd("QUIT", 221, "", "")
}

// DATA after greylisted recipients is what a pipelining client sends
// regardless; it is answered 554 but not counted against MaxErrors.
func TestDataNotCountedAsError(t *testing.T) {
	h := newHarness(t, func(h *harness) { h.cfg.MaxErrors = 2 })
	c, r := h.start()
	c.expect(220, "", banner)
	c.cmd("EHLO client.example", 250, "", "")
	c.cmd("MAIL FROM:<a@example.com>", 250, "", "")
	c.cmd("RCPT TO:<b@example.com>", 451, "4.7.1", "")
	for range 3 {
		c.cmd("DATA", 554, "5.5.1", "No valid recipients")
	}
	c.cmd("BOGUS", 500, "5.5.2", "")
	c.cmd("BOGUS", 421, "4.7.0", "Too many errors")
	c.expectEOF()
	if res := r.result(t); res.Outcome != "greylisted" {
		// Deferred recipients make the outcome "greylisted".
		t.Errorf("outcome %q", res.Outcome)
	}
}

func TestMaxErrors(t *testing.T) {
	for _, max := range []int{1, 3} {
		t.Run(strconv.Itoa(max), func(t *testing.T) {
			h := newHarness(t, func(h *harness) { h.cfg.MaxErrors = max })
			c, r := h.start()
			c.expect(220, "", banner)
			bad := []struct {
				line string
				code int
			}{{"MAIL FROM:<a@example.com>", 503}, {"EXPN x", 502}, {"FOO", 500}}
			for i := 0; i < max-1; i++ {
				c.cmd(bad[i].line, bad[i].code, "", "")
			}
			c.cmd(bad[max-1].line, 421, "4.7.0", hostname+" Too many errors, closing connection")
			c.expectEOF()
			if res := r.result(t); res.Outcome != "too-many-errors" {
				t.Errorf("outcome %q", res.Outcome)
			}
		})
	}
}

func TestLineTooLong(t *testing.T) {
	h := newHarness(t)
	c, _ := h.start()
	c.expect(220, "", banner)
	c.cmd("NOOP "+strings.Repeat("x", 600), 500, "5.5.2", "Line too long")
	// The rest of the long line was discarded: the session is in sync.
	c.cmd("NOOP", 250, "2.0.0", "")
	c.write("NOOP\n")
	c.expect(500, "5.5.2", "Invalid characters or line ending")
	c.cmd("NOOP", 250, "2.0.0", "")
	c.cmd("QUIT", 221, "", "")
}

func TestHTTPClosed(t *testing.T) {
	h := newHarness(t)
	c, r := h.start()
	c.expect(220, "", banner)
	c.write("GET / HTTP/1.1\r\nHost: mx.greypit.test\r\nUser-Agent: test\r\n\r\n")
	c.expect(500, "5.5.1", "not HTTP")
	c.expectEOF()
	if res := r.result(t); res.Outcome != "http" {
		t.Errorf("outcome %q, want http", res.Outcome)
	}
}

func TestCommandTimeout(t *testing.T) {
	h := newHarness(t, func(h *harness) { h.cfg.CommandTimeout = 100 * time.Millisecond })
	c, r := h.start()
	c.expect(220, "", banner)
	c.expect(421, "4.4.2", hostname+" Timeout, closing connection")
	c.expectEOF()
	if res := r.result(t); res.Outcome != "timeout" {
		t.Errorf("outcome %q, want timeout", res.Outcome)
	}
}

func TestSessionTimeout(t *testing.T) {
	h := newHarness(t, func(h *harness) { h.cfg.SessionTimeout = 200 * time.Millisecond })
	c, r := h.start()
	c.expect(220, "", banner)
	// A client that keeps talking still meets the session's deadline;
	// the loop is bounded by it (each NOOP is answered at once).
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c.write("NOOP\r\n")
		if rep, _ := c.reply(); rep.Code == 421 {
			if rep.Enhanced != "4.4.2" {
				t.Errorf("timeout reply %+v", rep)
			}
			break
		}
	}
	c.expectEOF()
	if res := r.result(t); res.Outcome != "timeout" {
		t.Errorf("outcome %q, want timeout", res.Outcome)
	}
}

// Pipelined commands (RFC 2920) are answered in order and in one write.
func TestPipelinedRepliesInOneFlush(t *testing.T) {
	h := newHarness(t, func(h *harness) { h.wrap = true })
	c, r := h.start()
	c.expect(220, "", banner)
	c.write("EHLO client.example\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\nQUIT\r\n")
	c.expect(250, "", hostname)
	c.expect(250, "2.1.0", "")
	c.expect(451, "4.7.1", "")
	c.expect(554, "5.5.1", "")
	c.expect(221, "2.0.0", "")
	c.expectEOF()
	r.result(t)
	w := r.writes.Writes()
	if len(w) != 2 {
		t.Fatalf("session made %d writes, want 2 (banner, then all pipelined replies): %q", len(w), w)
	}
	if !strings.HasPrefix(w[1], "250-"+hostname) || !strings.HasSuffix(w[1], "221 2.0.0 "+hostname+" closing connection\r\n") {
		t.Errorf("second write = %q", w[1])
	}
}

func TestShutdownIdleSession(t *testing.T) {
	h := newHarness(t)
	c, r := h.start()
	c.expect(220, "", banner)
	c.cmd("EHLO client.example", 250, "", "")
	r.sess.Shutdown()
	c.expect(421, "4.3.2", "shutting down")
	c.expectEOF()
	if res := r.result(t); res.Outcome != "shutdown" {
		t.Errorf("outcome %q, want shutdown", res.Outcome)
	}
}

func TestSTARTTLS(t *testing.T) {
	srvTLS, cliTLS := selfSigned(t)
	h := newHarness(t, func(h *harness) { h.cfg.TLS = func() *tls.Config { return srvTLS } })
	c, r := h.start()
	c.expect(220, "", banner)
	c.cmd("EHLO client.example", 250, "", "STARTTLS")
	c.cmd("STARTTLS now", 501, "5.5.4", "")
	c.cmd("MAIL FROM:<a@example.com>", 250, "", "")
	c.starttls(cliTLS)
	// RFC 3207 §4.2: everything before TLS is forgotten.
	c.cmd("MAIL FROM:<a@example.com>", 503, "5.5.1", "Send HELO/EHLO first")
	rep := c.cmd("EHLO client.example", 250, "", "")
	if slices.Contains(rep.Lines, "STARTTLS") {
		t.Errorf("STARTTLS offered again inside TLS: %q", rep.Lines)
	}
	c.cmd("STARTTLS", 502, "5.5.1", "")
	c.cmd("QUIT", 221, "", "")
	res := r.result(t)
	if !res.TLS || res.Outcome != "quit" {
		t.Errorf("result = %+v, want TLS quit", res)
	}
}

func TestSTARTTLSNotConfigured(t *testing.T) {
	h := newHarness(t)
	c, _ := h.start()
	c.expect(220, "", banner)
	c.cmd("EHLO client.example", 250, "", "")
	c.cmd("STARTTLS", 502, "5.5.1", "STARTTLS not available")
	c.cmd("QUIT", 221, "", "")
}

// Commands pipelined behind STARTTLS would be read as if sent inside TLS
// (the CVE-2011-0411 class): refuse and close.
func TestSTARTTLSInjection(t *testing.T) {
	srvTLS, _ := selfSigned(t)
	h := newHarness(t, func(h *harness) { h.cfg.TLS = func() *tls.Config { return srvTLS } })
	c, r := h.start()
	c.expect(220, "", banner)
	c.cmd("EHLO client.example", 250, "", "")
	c.write("STARTTLS\r\nMAIL FROM:<evil@example.com>\r\n")
	c.expect(554, "5.5.1", "Pipelining after STARTTLS")
	c.expectEOF()
	if res := r.result(t); res.Outcome != "starttls-injection" || res.TLS {
		t.Errorf("result = %+v", res)
	}
}
