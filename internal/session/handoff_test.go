package session_test

import (
	"crypto/tls"
	"encoding/binary"
	"github.com/greypit/greypit/internal/testenv"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// greylistOnce runs EHLO, MAIL and a first RCPT that is greylisted, then
// moves the clock past the pass delay: the next RCPT of the tuple passes.
func greylistOnce(t *testing.T, h *harness, c *client, mail, rcpt string) {
	t.Helper()
	c.cmd("EHLO client.example", 250, "", "")
	c.cmd(mail, 250, "2.1.0", "")
	c.cmd(rcpt, 451, "4.7.1", "Greylisted")
	h.clock.Advance(h.grey.Params.PassDelay)
}

func proxyAddrs(t *testing.T, hdr []byte) (src, dst netip.AddrPort) {
	t.Helper()
	if len(hdr) != 28 || hdr[12] != 0x21 || hdr[13] != 0x11 || binary.BigEndian.Uint16(hdr[14:]) != 12 {
		t.Fatalf("PROXY header % x is not v2 PROXY TCP4", hdr)
	}
	src = netip.AddrPortFrom(netip.AddrFrom4([4]byte(hdr[16:20])), binary.BigEndian.Uint16(hdr[24:26]))
	dst = netip.AddrPortFrom(netip.AddrFrom4([4]byte(hdr[20:24])), binary.BigEndian.Uint16(hdr[26:28]))
	return src, dst
}

// The full hand-off in proxy-v2 mode with a client that pipelines its RCPT,
// DATA, the message and QUIT in one write: the backend gets the client's
// address, the client's EHLO name, the replayed envelope and every byte
// greypit had buffered; the client gets the backend's replies verbatim.
func TestHandoffProxyV2Pipelined(t *testing.T) {
	const rcptReply = "250-2.1.5 backend says hello\r\n250 2.1.5 <bob@rcpt.example> recipient ok\r\n"
	h := newHarness(t, withMTA(true, func(m *testenv.FakeMTA) {
		m.Reply = func(verb, _ string) string {
			if verb == "RCPT" {
				return rcptReply
			}
			return ""
		}
	}))
	c, r := h.start()
	c.expect(220, "", banner)
	greylistOnce(t, h, c, "MAIL FROM:<alice@sender.example> SIZE=100 BODY=8BITMIME", "RCPT TO:<bob@rcpt.example>")

	const rest = "DATA\r\nSubject: hi\r\n\r\nbody line\r\n..dot line\r\n.\r\nQUIT\r\n"
	c.write("RCPT TO:<bob@rcpt.example>\r\n" + rest)
	if _, raw := c.reply(); raw != rcptReply {
		t.Fatalf("RCPT reply %q, want the backend's verbatim %q", raw, rcptReply)
	}
	c.expect(354, "", "End data")
	c.expect(250, "2.0.0", "queued as FAKE1")
	c.expect(221, "2.0.0", "Bye")
	c.expectEOF()
	c.close()

	res := r.result(t)
	if res.Outcome != "handoff" || res.Err != nil {
		t.Errorf("result = %+v, want handoff without error", res)
	}
	if !slices.Equal(res.Rcpts, []string{"bob@rcpt.example"}) || res.From != "alice@sender.example" {
		t.Errorf("Rcpts %q From %q", res.Rcpts, res.From)
	}
	toClient := len("354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 Ok: queued as FAKE1\r\n221 2.0.0 Bye\r\n")
	if res.Splice.ToBackend != int64(len(rest)) || res.Splice.ToClient != int64(toClient) {
		t.Errorf("Splice = %+v, want ToBackend %d ToClient %d", res.Splice, len(rest), toClient)
	}
	if a := h.whitelisted(t); a != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("whitelisted %s", a)
	}

	mc := h.mta.Next(t)
	if mc.Err != nil {
		t.Errorf("backend: %v", mc.Err)
	}
	src, dst := proxyAddrs(t, mc.Proxy)
	if want := c.c.LocalAddr().(*net.TCPAddr).AddrPort(); src != want {
		t.Errorf("PROXY source %s, want the client's %s", src, want)
	}
	if want := h.ln.Addr().(*net.TCPAddr).AddrPort(); dst != want {
		t.Errorf("PROXY destination %s, want greypit's %s", dst, want)
	}
	want := []string{
		"EHLO client.example",
		"MAIL FROM:<alice@sender.example> SIZE=100 BODY=8BITMIME",
		"RCPT TO:<bob@rcpt.example>",
		"DATA",
		"QUIT",
	}
	if !slices.Equal(mc.Lines, want) {
		t.Errorf("backend got\n%q\nwant\n%q", mc.Lines, want)
	}
	if len(mc.Data) != 1 || mc.Data[0] != "Subject: hi\r\n\r\nbody line\r\n..dot line\r\n" {
		t.Errorf("backend message = %q", mc.Data)
	}
}

// XCLIENT mode after STARTTLS, with a client that waits for each reply:
// the backend sees greypit's EHLO, the XCLIENT with the client's address
// and EHLO name, then the client's EHLO and the envelope.
func TestHandoffXClientAfterSTARTTLS(t *testing.T) {
	srvTLS, cliTLS := selfSigned(t)
	h := newHarness(t, withMTA(false), func(h *harness) { h.cfg.TLS = func() *tls.Config { return srvTLS } })
	c, r := h.start()
	c.expect(220, "", banner)
	c.cmd("EHLO client.example", 250, "", "STARTTLS")
	c.starttls(cliTLS)
	greylistOnce(t, h, c, "MAIL FROM:<>", "RCPT TO:<bob@rcpt.example>")
	c.cmd("RCPT TO:<bob@rcpt.example>", 250, "2.1.5", "Ok")
	c.cmd("DATA", 354, "", "")
	c.write("Subject: tls\r\n\r\nsecret\r\n.\r\n")
	c.expect(250, "2.0.0", "queued")
	c.cmd("QUIT", 221, "", "Bye")
	c.expectEOF()
	c.close()

	res := r.result(t)
	if res.Outcome != "handoff" || !res.TLS || res.From != "" {
		t.Errorf("result = %+v", res)
	}
	h.whitelisted(t)
	mc := h.mta.Next(t)
	port := strconv.Itoa(int(c.c.LocalAddr().(*net.TCPAddr).Port))
	want := []string{
		"EHLO greypit.test",
		"XCLIENT ADDR=127.0.0.1 PORT=" + port + " HELO=client.example PROTO=ESMTP",
		"EHLO client.example",
		"MAIL FROM:<>",
		"RCPT TO:<bob@rcpt.example>",
		"DATA",
		"QUIT",
	}
	if !slices.Equal(mc.Lines, want) {
		t.Errorf("backend got\n%q\nwant\n%q", mc.Lines, want)
	}
	if len(mc.Data) != 1 || mc.Data[0] != "Subject: tls\r\n\r\nsecret\r\n" {
		t.Errorf("backend message = %q", mc.Data)
	}
}

// A HELO client is replayed with HELO.
func TestHandoffHELO(t *testing.T) {
	h := newHarness(t, withMTA(true))
	c, r := h.start()
	c.expect(220, "", banner)
	c.cmd("HELO old.example", 250, "", "")
	c.cmd("MAIL FROM:<a@example.com>", 250, "", "")
	c.cmd("RCPT TO:<b@example.com>", 451, "", "")
	h.clock.Advance(h.grey.Params.PassDelay)
	c.cmd("RCPT TO:<b@example.com>", 250, "", "")
	c.cmd("QUIT", 221, "", "Bye")
	c.close()
	r.result(t)
	if mc := h.mta.Next(t); len(mc.Lines) == 0 || mc.Lines[0] != "HELO old.example" {
		t.Errorf("backend got %q", mc.Lines)
	}
}

// The backend refusing the sender: the client gets that refusal as the
// answer to its RCPT, greypit keeps the session, and the host is not
// whitelisted.
func TestHandoffBackendRefusesMail(t *testing.T) {
	const refusal = "550 5.7.1 <alice@sender.example>: Sender address rejected: Access denied\r\n"
	h := newHarness(t, withMTA(true, func(m *testenv.FakeMTA) {
		m.Reply = func(verb, _ string) string {
			if verb == "MAIL" {
				return refusal
			}
			return ""
		}
	}))
	c, r := h.start()
	c.expect(220, "", banner)
	greylistOnce(t, h, c, "MAIL FROM:<alice@sender.example>", "RCPT TO:<bob@rcpt.example>")
	c.write("RCPT TO:<bob@rcpt.example>\r\n")
	if _, raw := c.reply(); raw != refusal {
		t.Fatalf("RCPT reply %q, want the backend's %q", raw, refusal)
	}
	// Still greypit, and the transaction is gone.
	c.cmd("RCPT TO:<bob@rcpt.example>", 503, "5.5.1", "Need MAIL command")
	c.cmd("MAIL FROM:<alice@sender.example>", 250, "2.1.0", "")
	c.cmd("QUIT", 221, "2.0.0", hostname+" closing connection")
	c.expectEOF()
	res := r.result(t)
	if res.Outcome == "handoff" || res.Err == nil || !strings.Contains(res.Err.Error(), "550") {
		t.Errorf("result = %+v, want no hand-off and the backend's 550 as error", res)
	}
	h.notWhitelisted(t)
	mc := h.mta.Next(t)
	if want := []string{"EHLO client.example", "MAIL FROM:<alice@sender.example>", "QUIT"}; !slices.Equal(mc.Lines, want) {
		t.Errorf("backend got %q, want %q", mc.Lines, want)
	}
}

// The backend refusing the recipient: that reply is relayed and the client
// now talks to the backend (it may try other recipients there).
func TestHandoffBackendRefusesRcpt(t *testing.T) {
	const refusal = "550 5.1.1 <bob@rcpt.example>: Recipient address rejected: User unknown\r\n"
	h := newHarness(t, withMTA(true, func(m *testenv.FakeMTA) {
		m.Reply = func(verb, line string) string {
			if verb == "RCPT" && strings.Contains(line, "bob@") {
				return refusal
			}
			return ""
		}
	}))
	c, r := h.start()
	c.expect(220, "", banner)
	greylistOnce(t, h, c, "MAIL FROM:<alice@sender.example>", "RCPT TO:<bob@rcpt.example>")
	c.write("RCPT TO:<bob@rcpt.example>\r\n")
	if _, raw := c.reply(); raw != refusal {
		t.Fatalf("RCPT reply %q, want %q", raw, refusal)
	}
	c.cmd("RCPT TO:<carol@rcpt.example>", 250, "2.1.5", "")
	c.cmd("QUIT", 221, "", "Bye")
	c.expectEOF()
	c.close()
	res := r.result(t)
	if res.Outcome != "handoff" || len(res.Rcpts) != 0 {
		t.Errorf("result = %+v, want handoff with no accepted recipient recorded", res)
	}
	h.whitelisted(t)
	mc := h.mta.Next(t)
	if want := []string{"EHLO client.example", "MAIL FROM:<alice@sender.example>", "RCPT TO:<bob@rcpt.example>", "RCPT TO:<carol@rcpt.example>", "QUIT"}; !slices.Equal(mc.Lines, want) {
		t.Errorf("backend got %q, want %q", mc.Lines, want)
	}
}

// The backend is down: 451 4.4.1, never a success, and the session goes on.
func TestHandoffBackendDown(t *testing.T) {
	h := newHarness(t) // the dialer points at a closed port
	c, r := h.start()
	c.expect(220, "", banner)
	greylistOnce(t, h, c, "MAIL FROM:<alice@sender.example>", "RCPT TO:<bob@rcpt.example>")
	c.cmd("RCPT TO:<bob@rcpt.example>", 451, "4.4.1", "mail server unavailable")
	c.cmd("RCPT TO:<bob@rcpt.example>", 451, "4.4.1", "mail server unavailable")
	c.cmd("NOOP", 250, "", "")
	c.cmd("QUIT", 221, "", hostname)
	c.expectEOF()
	res := r.result(t)
	if res.Outcome == "handoff" || !isHandoffError(res.Err) {
		t.Errorf("result = %+v, want no hand-off and a handoff.Error", res)
	}
	h.notWhitelisted(t)
}

// A backend that fails once (connection dropped before the greeting): the
// client's next RCPT is handed off.
func TestHandoffBackendRecovers(t *testing.T) {
	h := newHarness(t, withMTA(true, func(m *testenv.FakeMTA) { m.Drop.Store(1) }))
	c, r := h.start()
	c.expect(220, "", banner)
	greylistOnce(t, h, c, "MAIL FROM:<alice@sender.example>", "RCPT TO:<bob@rcpt.example>")
	c.cmd("RCPT TO:<bob@rcpt.example>", 451, "4.4.1", "")
	c.cmd("RCPT TO:<bob@rcpt.example>", 250, "2.1.5", "")
	c.cmd("QUIT", 221, "", "Bye")
	c.expectEOF()
	c.close()
	if res := r.result(t); res.Outcome != "handoff" {
		t.Errorf("result = %+v, want handoff", res)
	}
	h.whitelisted(t)
	mc := h.mta.Next(t)
	if want := []string{"EHLO client.example", "MAIL FROM:<alice@sender.example>", "RCPT TO:<bob@rcpt.example>", "QUIT"}; !slices.Equal(mc.Lines, want) {
		t.Errorf("backend got %q, want %q", mc.Lines, want)
	}
}

// A hand-off in a new connection, as a real retry comes: the tuple passes
// because the first connection recorded it.
func TestHandoffOnRetryConnection(t *testing.T) {
	h := newHarness(t, withMTA(true))
	c, r := h.start()
	c.expect(220, "", banner)
	greylistOnce(t, h, c, "MAIL FROM:<list-bounces-123@lists.example>", "RCPT TO:<bob@rcpt.example>")
	c.cmd("QUIT", 221, "", "")
	if res := r.result(t); res.Outcome != "greylisted" {
		t.Errorf("first session outcome %q", res.Outcome)
	}

	c, r = h.start()
	c.expect(220, "", banner)
	c.cmd("EHLO client.example", 250, "", "")
	// A VERP sender differing only in digits is the same tuple.
	c.cmd("MAIL FROM:<list-bounces-456@lists.example>", 250, "", "")
	c.cmd("RCPT TO:<bob@rcpt.example>", 250, "2.1.5", "")
	c.cmd("QUIT", 221, "", "Bye")
	c.close()
	if res := r.result(t); res.Outcome != "handoff" || len(res.Deferred) != 0 {
		t.Errorf("retry result = %+v", res)
	}
}

// SIGTERM (Shutdown) after the hand-off leaves the spliced mail alone.
func TestShutdownAfterHandoffLetsMailFinish(t *testing.T) {
	h := newHarness(t, withMTA(true))
	c, r := h.start()
	c.expect(220, "", banner)
	greylistOnce(t, h, c, "MAIL FROM:<a@example.com>", "RCPT TO:<b@example.com>")
	c.cmd("RCPT TO:<b@example.com>", 250, "2.1.5", "")
	r.sess.Shutdown()
	c.cmd("DATA", 354, "", "")
	c.write("Subject: x\r\n\r\nhi\r\n.\r\n")
	c.expect(250, "2.0.0", "queued")
	c.cmd("QUIT", 221, "", "Bye")
	c.expectEOF()
	c.close()
	if res := r.result(t); res.Outcome != "handoff" {
		t.Errorf("outcome %q, want handoff", res.Outcome)
	}
	if mc := h.mta.Next(t); len(mc.Data) != 1 {
		t.Errorf("backend got messages %q", mc.Data)
	}
}

// Until the backend answers, the client hears nothing that looks like
// success: a backend that never answers RCPT costs a 451, not a 250.
func TestHandoffBackendSilent(t *testing.T) {
	h := newHarness(t, withMTA(true, func(m *testenv.FakeMTA) {
		m.Reply = func(verb, _ string) string {
			if verb == "RCPT" {
				return "-"
			}
			return ""
		}
	}), func(h *harness) { h.dialer.ReplyTimeout = 500 * time.Millisecond })
	c, _ := h.start()
	c.expect(220, "", banner)
	greylistOnce(t, h, c, "MAIL FROM:<a@example.com>", "RCPT TO:<b@example.com>")
	c.cmd("RCPT TO:<b@example.com>", 451, "4.4.1", "")
	c.cmd("QUIT", 221, "", hostname)
	if mc := h.mta.Next(t); !slices.Contains(mc.Lines, "RCPT TO:<b@example.com>") {
		t.Errorf("backend got %q", mc.Lines)
	}
}
