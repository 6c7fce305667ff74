package tarpit

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/greypit/greypit/internal/smtp"
)

// TestBannerDrips checks that the banner goes out one byte per stutter.
func TestBannerDrips(t *testing.T) {
	cfg := testConfig()
	cfg.Stutter = 5 * time.Millisecond
	h := startHarness(t, cfg)
	banner := []byte(testHost + " ESMTP ready\r\n")
	banner = append([]byte("220 "), banner...)

	c, s := h.pair("")
	start := time.Now()
	if err := h.tp.Add(s, info(s, "drip"), nil); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var got []byte
	var sizes []int
	buf := make([]byte, 256)
	c.SetReadDeadline(time.Now().Add(waitLong))
	for len(got) < len(banner) {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("after %q: %v", got, err)
		}
		sizes = append(sizes, n)
		got = append(got, buf[:n]...)
	}
	elapsed := time.Since(start)
	if !bytes.Equal(got, banner) {
		t.Fatalf("banner %q, want %q", got, banner)
	}
	if min := time.Duration(len(banner)-1) * cfg.Stutter; elapsed < min {
		t.Errorf("banner of %d bytes took %v, want at least %v", len(banner), elapsed, min)
	}
	// Each read should see one byte; a scheduler hiccup (the race
	// detector, a loaded machine) may let two bytes meet in one read, so
	// a few multi-byte reads are tolerated, never a burst.
	ones := 0
	for _, n := range sizes {
		if n == 1 {
			ones++
		}
		if n > 4 {
			t.Errorf("a read returned %d bytes at once: %v", n, sizes)
		}
	}
	if ones*5 < len(sizes)*4 {
		t.Errorf("only %d of %d reads returned a single byte: %v", ones, len(sizes), sizes)
	}
}

// dialogue plays a whole bot session against the tarpit and checks every
// reply and the verdict.
func dialogue(t *testing.T, cfg Config) {
	h := startHarness(t, cfg)
	c := h.mustAdd(nil)
	start := time.Now()

	c.expect(220, "")
	r := c.cmd("EHLO bot.example", 250, "")
	if len(r.Lines) != 4 || !strings.Contains(r.Lines[0], "Hello bot.example") || !slices.Contains(r.Lines, "PIPELINING") {
		t.Errorf("EHLO reply %q", r.Lines)
	}
	c.cmd("RCPT TO:<victim@foreign.example>", 503, "5.5.1")
	c.cmd("DATA", 503, "5.5.1")
	c.cmd("MAIL FROM:<spammer@bot.example> BODY=8BITMIME", 250, "2.1.0")
	c.cmd("DATA", 503, "5.5.1")
	c.cmd("RCPT TO:<victim@foreign.example>", 250, "2.1.5")
	c.cmd("RCPT TO:<someone@elsewhere.example> NOTIFY=NEVER", 250, "2.1.5")
	c.cmd("NOOP", 250, "2.0.0")
	c.cmd("VRFY root", 252, "2.5.0")
	c.cmd("STARTTLS", 454, "4.7.0")
	c.cmd("DATA", 354, "")

	// The message arrives in awkward pieces: a dot-stuffed line, a line
	// that is only a stuffed dot, and the terminator cut in three.
	pieces := []string{
		"Subject: cheap\r\nFrom: a@b\r\n\r\n",
		"..leading dot\r\n.",
		".\r\n.", "x\r\nlast line\r",
		"\n", ".\r", "\n",
	}
	var msgLen int
	for _, p := range pieces {
		c.send(p)
		msgLen += len(p)
	}
	final := c.reply()
	checkFinal(t, cfg, final)

	c.cmd("RSET", 250, "2.0.0")
	c.cmd("HELO again.example", 250, "")
	c.send("QUIT\r\n")
	r = c.expect(221, "2.0.0")
	if !strings.Contains(r.Lines[0], testHost) {
		t.Errorf("221 reply %q", r.Lines)
	}
	c.expectEOF()
	elapsed := time.Since(start)

	v := h.verdict()
	want := Verdict{Outcome: "quit", Helo: "again.example", From: "spammer@bot.example", Rcpts: 2, Messages: 1, DataBytes: int64(msgLen)}
	if v.Outcome != want.Outcome || v.Helo != want.Helo || v.From != want.From || v.Rcpts != want.Rcpts ||
		v.Messages != want.Messages || v.DataBytes != want.DataBytes || v.Err != nil {
		t.Errorf("verdict %+v, want %+v", v, want)
	}
	if v.Dripped != c.received() {
		t.Errorf("verdict says %d bytes dripped, client received %d", v.Dripped, c.received())
	}
	if v.Reason != testReason || v.Rule != "test" || !v.Client.Addr().IsLoopback() {
		t.Errorf("verdict info %+v", v.Info)
	}
	if min := time.Duration(v.Dripped-1) * cfg.Stutter; v.Held < min || elapsed < min {
		t.Errorf("held %v (client saw %v) for %d bytes at %v", v.Held, elapsed, v.Dripped, cfg.Stutter)
	}
	if v.Held > elapsed+time.Second {
		t.Errorf("held %v, but the client was done after %v", v.Held, elapsed)
	}
	checkEmpty(t, h.tp)
}

// checkFinal checks the reply to a message.
func checkFinal(t *testing.T, cfg Config, r smtp.Reply) {
	t.Helper()
	if cfg.Blackhole {
		if r.Code != 250 || r.Enhanced != "2.0.0" {
			t.Errorf("blackhole final reply %d %s %q, want 250 2.0.0", r.Code, r.Enhanced, r.Lines)
		}
		return
	}
	enh := "5.7.1"
	if cfg.ReplyCode < 500 {
		enh = "4.7.1"
	}
	text := strings.Join(r.Lines, " ")
	if r.Code != cfg.ReplyCode || r.Enhanced != enh || !strings.Contains(text, testReason) || !strings.Contains(text, "client 127.0.0.1 ") {
		t.Errorf("final reply %d %s %q, want %d %s with the client and %q", r.Code, r.Enhanced, r.Lines, cfg.ReplyCode, enh, testReason)
	}
}

func TestDialogue(t *testing.T) {
	for _, tc := range []struct {
		name      string
		code      int
		blackhole bool
	}{
		{"451", 451, false},
		{"550", 550, false},
		{"blackhole", 451, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig()
			cfg.ReplyCode, cfg.Blackhole = tc.code, tc.blackhole
			dialogue(t, cfg)
		})
	}
}

// TestPregreetPending hands over input read before the banner: it is
// answered in order, after the banner.
func TestPregreetPending(t *testing.T) {
	for _, pressure := range []float64{1, 0.001} {
		t.Run(fmt.Sprint("pressure=", pressure), func(t *testing.T) {
			cfg := testConfig()
			cfg.Pressure = pressure
			h := startHarness(t, cfg)
			pending := "EHLO early.example\r\nMAIL FROM:<a@early.example>\r\nRCPT TO:<b@victim.example>\r\n" +
				"DATA\r\nSubject: x\r\n\r\nbody\r\n.\r\nNOOP\r\nQUIT\r\nthis is never read\r\n"
			c := h.mustAdd([]byte(pending))
			var got []int
			for range 7 {
				got = append(got, c.reply().Code)
			}
			if want := []int{220, 250, 250, 250, 354, 451, 250}; !slices.Equal(got, want) {
				t.Fatalf("replies %v, want %v", got, want)
			}
			c.expect(221, "2.0.0")
			c.expectEOF()
			v := h.verdict()
			if v.Outcome != "quit" || v.Helo != "early.example" || v.Messages != 1 || v.Rcpts != 1 || v.Dripped != c.received() {
				t.Errorf("verdict %+v (client received %d)", v, c.received())
			}
		})
	}
}

// TestPressure checks that replies go out whole above the pressure mark
// and drip below it, and that the mark follows the session count.
func TestPressure(t *testing.T) {
	cfg := testConfig()
	cfg.Stutter = 5 * time.Millisecond
	cfg.MaxSessions = 10
	cfg.Pressure = 0.15 // mark 1.5: one session drips, two do not
	h := startHarness(t, cfg)

	readOnce := func(c *client) []byte {
		t.Helper()
		buf := make([]byte, 4096)
		c.c.SetReadDeadline(time.Now().Add(waitLong))
		n, err := c.c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		return buf[:n]
	}
	a := h.mustAdd(nil)
	if b := readOnce(a); len(b) != 1 {
		t.Fatalf("alone, the first read got %q; want one dripped byte", b)
	}
	// Let the banner finish before the second session raises the count.
	for seen := []byte("2"); !bytes.HasSuffix(seen, []byte("\r\n")); {
		seen = append(seen, readOnce(a)...)
	}
	b := h.mustAdd(nil)
	banner := "220 " + testHost + " ESMTP ready\r\n"
	if got := readOnce(b); string(got) != banner {
		t.Fatalf("above the mark, the first read got %q; want the whole banner", got)
	}
	a.send("EHLO x\r\n")
	got := readOnce(a)
	if !bytes.HasPrefix(got, []byte("250-")) || !bytes.HasSuffix(got, []byte("250 ENHANCEDSTATUSCODES\r\n")) {
		t.Fatalf("above the mark, a multi-line reply came as %q; want it whole in one read", got)
	}
	// Back below the mark, replies drip again.
	b.c.Close()
	if v := h.verdict(); v.Outcome != "closed" {
		t.Fatalf("verdict %+v", v)
	}
	a.send("NOOP\r\n")
	got = readOnce(a)
	if len(got) != 1 {
		t.Fatalf("below the mark again, a read got %q; want one byte", got)
	}
	for !bytes.HasSuffix(got, []byte("\r\n")) {
		got = append(got, readOnce(a)...)
	}
	if string(got) != "250 2.0.0 Ok\r\n" {
		t.Fatalf("NOOP reply %q", got)
	}
}

// TestConsumeSplits feeds a dialogue cut at every position (and byte by
// byte): the replies must not depend on how the input was cut.
func TestConsumeSplits(t *testing.T) {
	in := "EHLO a.example\r\nMAIL FROM:<x@a.example>\r\nRCPT TO:<y@b.example>\r\nDATA\r\n" +
		"Subject: s\r\n\r\n..stuffed\r\n.\r\r\n.x\r\n\r\n.\r\n" +
		"MAIL FROM:<>\r\nRCPT TO:<Postmaster>\r\nDATA\r\n.\r\n" +
		"NOOP\r\n" + strings.Repeat("z", 600) + "\r\nNOOP\r\nQUIT\r\nNOOP\r\n"
	tp := New(testConfig(), nil)
	ref := newSess(tp)
	want := feed(tp, ref, []byte(in), readChunk)
	reps := parseReplies(t, want)
	wantCodes := []int{220, 250, 250, 250, 354, 451, 250, 250, 354, 451, 250, 500, 250, 221}
	if got := codes(reps); !slices.Equal(got, wantCodes) {
		t.Fatalf("replies %v, want %v", got, wantCodes)
	}
	if ref.messages != 2 || ref.outcome != "quit" || !ref.closing {
		t.Fatalf("session %+v", ref)
	}
	check := func(name string, s *sess, got []byte) {
		t.Helper()
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: replies\n%q\nwant\n%q", name, got, want)
		}
		if s.messages != ref.messages || s.dataBytes != ref.dataBytes || s.rcpts != ref.rcpts || s.outcome != ref.outcome {
			t.Fatalf("%s: session differs: %+v vs %+v", name, s, ref)
		}
	}
	for i := range len(in) + 1 {
		s := newSess(tp)
		got := feed(tp, s, []byte(in[:i]), readChunk)
		got = append(got, feed(tp, s, []byte(in[i:]), readChunk)...)
		check(fmt.Sprint("split at ", i), s, got)
	}
	s := newSess(tp)
	check("byte by byte", s, feed(tp, s, []byte(in), 1))
}

// TestDotStates walks the end-of-data recogniser through the cases that
// are not the end.
func TestDotStates(t *testing.T) {
	for _, tc := range []struct {
		body string
		end  bool
	}{
		{".\r\n", true},
		{"\r\n.\r\n", true},
		{"a\r\n.\r\n", true},
		{"a\n.\n", false}, // bare LF is not a line end
		{"a\r\n.\n", false},
		{"a\r\n..\r\n", false},
		{"a\r\n. \r\n", false},
		{"a.\r\n", false},
		{"a\r.\r\n", false},
		{"a\r\n.\r\r\n", false},
		{"a\r\n.\r\r\n.\r\n", true},
		{"a\r\r\n.\r\n", true},
	} {
		tp := New(testConfig(), nil)
		s := newSess(tp)
		feed(tp, s, []byte("HELO x\r\nMAIL FROM:<>\r\nRCPT TO:<a@b>\r\nDATA\r\n"+tc.body), readChunk)
		if got := s.state == stCommand && s.messages == 1; got != tc.end {
			t.Errorf("%q: message ended %v, want %v (state %d, dot %d)", tc.body, got, tc.end, s.state, s.dot)
		}
	}
}

// TestFinalReplyText checks the final reply for the codes and modes.
func TestFinalReplyText(t *testing.T) {
	for _, tc := range []struct {
		code      int
		blackhole bool
		reason    string
		want      string
	}{
		{451, false, testReason, "451 4.7.1 Message refused: client 192.0.2.7 is listed here: " + testReason + "\r\n"},
		{550, false, "  \t", "550 5.7.1 Message refused: client 192.0.2.7 is listed here: blacklisted\r\n"},
		{554, false, "bad\r\n250 ok", "554 5.7.1 Message refused: client 192.0.2.7 is listed here: bad  250 ok\r\n"},
		{451, true, testReason, "250 2.0.0 Ok: queued\r\n"},
	} {
		cfg := testConfig()
		cfg.ReplyCode, cfg.Blackhole = tc.code, tc.blackhole
		tp := New(cfg, nil)
		s := newSess(tp)
		s.info.Reason = tc.reason
		if got := string(tp.finalReply(s)); got != tc.want {
			t.Errorf("final reply %q, want %q", got, tc.want)
		}
	}
}

// TestTooManyErrors closes after maxErrors bad commands with 421.
func TestTooManyErrors(t *testing.T) {
	tp := New(testConfig(), nil)
	s := newSess(tp)
	in := strings.Repeat("BOGUS\r\n", maxErrors-1) + "\x00\r\nNOOP\r\n"
	reps := parseReplies(t, feed(tp, s, []byte(in), readChunk))
	if len(reps) != maxErrors+1 || reps[maxErrors].Code != 421 || reps[maxErrors].Enhanced != "4.7.0" || reps[maxErrors-1].Code != 502 {
		t.Fatalf("replies %v", codes(reps))
	}
	if !s.closing || s.outcome != "too-many-errors" {
		t.Fatalf("closing %v outcome %q", s.closing, s.outcome)
	}
}

// TestLongLines checks the command line bound: a 512-byte line (CRLF
// included) is a command, a longer one is refused once and skipped.
func TestLongLines(t *testing.T) {
	tp := New(testConfig(), nil)
	s := newSess(tp)
	ok := "NOOP " + strings.Repeat("a", 512-7) + "\r\n"
	long := "NOOP " + strings.Repeat("a", 512-6) + "\r\n"
	huge := strings.Repeat("b", 100000) + "\r\n"
	reps := parseReplies(t, feed(tp, s, []byte(ok+long+huge+"NOOP\r\n"), 100))
	if got, want := codes(reps), []int{220, 250, 500, 500, 250}; !slices.Equal(got, want) {
		t.Fatalf("replies %v, want %v", got, want)
	}
	if len(s.line) != 0 || s.state != stCommand {
		t.Fatalf("line %d bytes, state %d", len(s.line), s.state)
	}
}
