package e2e

import (
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/greypit/greypit/internal/testenv"
)

// connectCount is how many connections the backend's log shows.
func connectCount(pf *testenv.Postfix) int {
	return len(pf.Grep(regexpMust(`postfix/smtpd\[\d+\]: connect from`)))
}

// probeEnd is the backend's log line for the end of greypit's start-up
// probe (EHLO, QUIT).
var probeEnd = regexpMust(`disconnect from \S*\[::1\]`)

// probes is how many start-up probes the backend has seen.
func probes(pf *testenv.Postfix) int { return len(pf.Grep(probeEnd)) }

// quietBackend waits for the start-up probe of a greypit started after
// the backend had seen before probes, so that every later backend
// connection is one a test caused.
func quietBackend(t *testing.T, pf *testenv.Postfix, before int) int {
	t.Helper()
	pf.WaitLogN(t, probeEnd, before+1, 20*time.Second)
	return connectCount(pf)
}

// A black host meets the open relay: a dripped banner, 250 for a foreign
// recipient, 354, and after the message the configured refusal with the
// listing reason. The backend hears nothing of it.
func TestTarpitBlackHost(t *testing.T) {
	pf := backend(t, testenv.ModeProxy)
	for _, code := range []string{"451", "550"} {
		t.Run(code, func(t *testing.T) {
			seen := probes(pf)
			g := startGreypit(t, greypitOpts{backend: pf.Addr(), block: []string{"127.0.0.66/31 # known spammers"},
				sets: []string{"tarpit.reply_code=" + code}})
			before := quietBackend(t, pf, seen)

			// The banner, timed byte by byte.
			c := testenv.Dial(t, "127.0.0.66:0", g.Addr)
			start := time.Now()
			var banner []byte
			reads := 0
			buf := make([]byte, 64)
			for !strings.HasSuffix(string(banner), "\r\n") && len(banner) < 200 {
				n, err := c.Read(buf)
				if err != nil {
					t.Fatalf("reading the banner: %v (got %q)", err, banner)
				}
				reads++
				banner = append(banner, buf[:n]...)
			}
			elapsed := time.Since(start)
			// Dripped, the banner arrives a byte per read; a busy machine
			// may deschedule this reader for a few stutters now and then,
			// so allow some reads of several bytes, not a banner in a few.
			if reads < len(banner)/4 {
				t.Errorf("banner of %d bytes came in %d reads: it is not dripped", len(banner), reads)
			}
			// The drip wheel fires on its own ticks, so one gap may come a
			// little short of the 20ms stutter: allow one.
			if min := time.Duration(len(banner)-2) * 20 * time.Millisecond; elapsed < min {
				t.Errorf("banner of %d bytes took %v, want at least %v", len(banner), elapsed, min)
			}
			if !strings.HasPrefix(string(banner), "220 ") {
				t.Errorf("banner %q", banner)
			}
			c.Close()

			r := testenv.Swaks(t, "--server", "127.0.0.1", "--port", portOf(g.Addr), "--local-interface", "127.0.0.67",
				"--helo", "bot.example", "--from", "spam@bot.example", "--to", "victim@foreign.example",
				"--h-Subject", "buy now", "--timeout", "60s")
			if got := replyTo(r, "RCPT TO"); !strings.HasPrefix(got, "250") {
				t.Errorf("RCPT to a foreign domain: %q, want 250\n%s", got, r)
			}
			if got := replyTo(r, "DATA"); !strings.HasPrefix(got, "354") {
				t.Errorf("DATA: %q, want 354\n%s", got, r)
			}
			final := replyTo(r, ".")
			if !strings.HasPrefix(final, code+" ") || !strings.Contains(final, "known spammers") && !strings.Contains(final, "block list") {
				t.Errorf("final reply %q, want %s with the listing reason\n%s", final, code, r)
			}
			v := g.WaitVerdicts(2)
			for _, l := range v {
				if !strings.Contains(l, "path=black") || !regexp.MustCompile(`dripped=[1-9]`).MatchString(l) || !strings.Contains(l, "held=") {
					t.Errorf("verdict: %s", l)
				}
			}
			if !strings.Contains(v[1], "messages=1") || !strings.Contains(v[1], "rcpts=0") && !strings.Contains(v[1], "from=spam@bot.example") {
				t.Errorf("swaks verdict: %s", v[1])
			}
			if n := connectCount(pf); n != before {
				t.Errorf("the backend saw %d connection(s) during the black tests:\n%s", n-before, pf.Log())
			}
			if pf.Grep(regexpMust(`127\.0\.0\.6[67]`)) != nil {
				t.Errorf("the backend heard of a black client:\n%s", pf.Log())
			}
		})
	}
}

// A client that talks before the banner is blacklisted with reason
// pregreet, db why says so, and its next connection is tarpitted.
func TestPregreet(t *testing.T) {
	pf := backend(t, testenv.ModeProxy)
	g := startGreypit(t, greypitOpts{backend: pf.Addr(), sets: []string{"smtp.greet_wait=500ms"}})
	c := testenv.DialSMTP(t, "127.0.0.77:0", g.Addr)
	c.Send("EHLO eager.example") // before any banner
	if r := c.ReadReply(); r.Code != 220 {
		t.Fatalf("banner after pregreet: %s", r)
	}
	if r := c.ReadReply(); r.Code != 250 || !strings.Contains(r.Text(), "eager.example") {
		t.Fatalf("reply to the early EHLO: %s", r)
	}
	c.Close()
	v := g.WaitVerdicts(1)
	if !strings.Contains(v[0], "path=black") || !strings.Contains(v[0], "pregreet") {
		t.Errorf("verdict: %s", v[0])
	}
	out, code := g.DB("why", "127.0.0.77")
	if code != 0 || !strings.Contains(out, "BLACK") || !strings.Contains(out, "pregreet") {
		t.Errorf("db why after pregreet (exit %d):\n%s", code, out)
	}
	// The next connection goes straight to the tarpit.
	c = testenv.DialSMTP(t, "127.0.0.77:0", g.Addr)
	if r := c.ReadReply(); r.Code != 220 {
		t.Fatalf("second connection: %s", r)
	}
	c.Close()
	v = g.WaitVerdicts(2)
	if !strings.Contains(v[1], "path=black") || !strings.Contains(v[1], "store black 127.0.0.77") {
		t.Errorf("second verdict: %s", v[1])
	}
	// A patient client is not affected.
	r := g.swaks("127.0.0.78", "olga@example.test", "patient")
	if got := replyTo(r, "RCPT TO"); !strings.HasPrefix(got, "451 4.7.1") {
		t.Errorf("patient client: %q\n%s", got, r)
	}
}

// With the tarpit full, the next black host gets a prompt 421 (not
// dripped), and white and grey clients are served meanwhile.
func TestTarpitCaps(t *testing.T) {
	pf := backend(t, testenv.ModeProxy)
	g := startGreypit(t, greypitOpts{backend: pf.Addr(), allow: []string{"127.0.0.5"},
		block: []string{"127.0.0.64/28", "::1"},
		sets:  []string{"tarpit.stutter=1s", "tarpit.max_sessions=3", "tarpit.max_per_prefix=2"}})
	held := []*testenv.SMTPConn{}
	for _, src := range []string{"127.0.0.65:0", "127.0.0.66:0"} {
		c := testenv.DialSMTP(t, src, g.Addr)
		one := make([]byte, 1)
		if _, err := io.ReadFull(c.Conn, one); err != nil || one[0] != '2' {
			t.Fatalf("held black session: %q %v", one, err)
		}
		held = append(held, c)
	}
	// Same /24 as the two held: the per-prefix cap.
	promptRefusal(t, g.Addr, "127.0.0.67:0")
	// Another prefix (IPv6) still fits; then the total cap is reached.
	c6 := testenv.DialSMTP(t, "[::1]:0", g.Addr6)
	one := make([]byte, 1)
	if _, err := io.ReadFull(c6.Conn, one); err != nil || one[0] != '2' {
		t.Fatalf("IPv6 black session: %q %v", one, err)
	}
	held = append(held, c6)
	promptRefusal(t, g.Addr, "127.0.0.68:0")

	// White and grey traffic meanwhile.
	start := time.Now()
	if r := g.swaks("127.0.0.5", "pia@example.test", "white while full"); r.Code != 0 {
		t.Fatalf("white client while the tarpit is full:\n%s", r)
	}
	r := g.swaks("127.0.0.90", "quinn@example.test", "grey while full")
	if got := replyTo(r, "RCPT TO"); !strings.HasPrefix(got, "451 4.7.1") {
		t.Errorf("grey client while the tarpit is full: %q", got)
	}
	// A dripped reply would take a second per byte; the white and grey
	// sessions together exchange hundreds of bytes.
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("white and grey sessions took %v while the tarpit was full", d)
	}
	pf.WaitMessages(t, 1, 20*time.Second)
	for _, c := range held {
		c.Close()
	}
	if n := len(g.WaitVerdicts(7)); n != 7 {
		t.Errorf("verdicts: %d", n)
	}
	out := strings.Join(g.Verdicts(), "\n")
	if strings.Count(out, "outcome=tarpit-full") != 2 {
		t.Errorf("want 2 tarpit-full verdicts:\n%s", out)
	}
}

// promptRefusal connects from src and expects a whole 421 line at once.
func promptRefusal(t *testing.T, addr, src string) {
	t.Helper()
	c := testenv.DialSMTP(t, src, addr)
	c.Conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	r := c.ReadReply()
	if r.Code != 421 {
		t.Fatalf("black client %s with the tarpit full: %s, want a prompt 421", src, r)
	}
	c.Close()
}

// Grey sessions are stuttered only for their first grey_stutter_for
// (spamd's -S), then answered at full speed.
func TestGreyStutter(t *testing.T) {
	pf := backend(t, testenv.ModeProxy)
	g := startGreypit(t, greypitOpts{backend: pf.Addr(),
		sets: []string{"smtp.greet_wait=0s", "tarpit.stutter=100ms", "tarpit.grey_stutter_for=2s"}})
	c := testenv.Dial(t, "127.0.0.40:0", g.Addr)
	start := time.Now()
	buf := make([]byte, 256)
	var got []byte
	singles := 0
	for !strings.HasSuffix(string(got), "\r\n") {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("banner: %v after %q", err, got)
		}
		if n == 1 {
			singles++
		}
		got = append(got, buf[:n]...)
	}
	elapsed := time.Since(start)
	// About 20 bytes dripped in the first two seconds, then the rest at
	// once. The window counts from connect, so a busy machine that starts
	// the session late drips fewer of them, never none.
	if singles < 5 || elapsed < 1900*time.Millisecond {
		t.Errorf("banner %q: %d single-byte reads in %v; want stuttering for the first two seconds", got, singles, elapsed)
	}
	if full := time.Duration(len(got)) * 100 * time.Millisecond; elapsed > full-500*time.Millisecond {
		t.Errorf("banner of %d bytes took %v: stuttered past grey_stutter_for", len(got), elapsed)
	}
	c.Close()
}
