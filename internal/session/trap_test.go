package session_test

import (
	"context"
	"crypto/tls"
	"net/netip"
	"strings"
	"testing"

	"github.com/greypit/greypit/internal/store"
)

// withTrap makes every address starting with "trap" a trap and records
// the calls.
func withTrap(calls *[]string) option {
	return func(h *harness) {
		h.trap = func(_ context.Context, _ netip.Addr, helo, from, rcpt string) (string, bool) {
			*calls = append(*calls, helo+" "+from+" "+rcpt)
			if strings.HasPrefix(from, "trap") && rcpt == "" || strings.HasPrefix(rcpt, "trap") {
				return "test trap", true
			}
			return "", false
		}
	}
}

func greyTuples(t *testing.T, h *harness) int {
	t.Helper()
	n := 0
	h.store.List(context.Background(), store.Grey, func(store.Entry) error { n++; return nil })
	return n
}

// A trapped recipient gets the deferral a new recipient gets (the full
// pass delay), and the session ends "trapped" with the pipelined rest
// left for the tarpit.
func TestTrapRcpt(t *testing.T) {
	var calls []string
	h := newHarness(t, withTrap(&calls))
	c, r := h.start()
	c.expect(220, "", banner)
	c.cmd("EHLO bot.example", 250, "", "")
	c.cmd("MAIL FROM:<a@example.com>", 250, "2.1.0", "")
	normal := c.cmd("RCPT TO:<bob@example.org>", 451, "4.7.1", "")
	c.write("RCPT TO:<trap@example.org>\r\nRCPT TO:<carol@example.org>\r\nDATA\r\n")
	trapped := c.expect(451, "4.7.1", "")
	if strings.Join(trapped.Lines, "") != strings.Join(normal.Lines, "") {
		t.Errorf("trapped reply %q, normal %q", trapped.Lines, normal.Lines)
	}
	res := r.result(t)
	if res.Outcome != "trapped" || res.Trap != "test trap" || res.From != "a@example.com" || res.Helo != "bot.example" {
		t.Errorf("result %+v", res)
	}
	if p := string(r.sess.Pending()); p != "RCPT TO:<carol@example.org>\r\nDATA\r\n" {
		t.Errorf("pending %q", p)
	}
	if n := greyTuples(t, h); n != 1 {
		t.Errorf("%d grey tuples, want only the normal recipient's", n)
	}
	if want := []string{"bot.example a@example.com ", "bot.example a@example.com bob@example.org", "bot.example a@example.com trap@example.org"}; strings.Join(calls, "|") != strings.Join(want, "|") {
		t.Errorf("trap calls %q, want %q", calls, want)
	}
}

// A trapped sender gets the usual 250 and the session ends trapped.
func TestTrapSender(t *testing.T) {
	var calls []string
	h := newHarness(t, withTrap(&calls))
	c, r := h.start()
	c.expect(220, "", banner)
	c.cmd("HELO bot.example", 250, "", "")
	c.cmd("MAIL FROM:<trap@example.org>", 250, "2.1.0", "Ok")
	if res := r.result(t); res.Outcome != "trapped" || res.From != "trap@example.org" {
		t.Errorf("result %+v", res)
	}
}

// Inside TLS the socket cannot go to the tarpit: the session defers every
// later recipient itself and never asks the greylister again.
func TestTrapInsideTLS(t *testing.T) {
	srvTLS, cliTLS := selfSigned(t)
	var calls []string
	h := newHarness(t, withTrap(&calls), func(h *harness) { h.cfg.TLS = func() *tls.Config { return srvTLS } })
	c, r := h.start()
	c.expect(220, "", banner)
	c.cmd("EHLO bot.example", 250, "", "")
	c.starttls(cliTLS)
	c.cmd("EHLO bot.example", 250, "", "")
	c.cmd("MAIL FROM:<a@example.com>", 250, "", "")
	c.cmd("RCPT TO:<trap@example.org>", 451, "4.7.1", "Greylisted")
	c.cmd("RCPT TO:<dave@example.org>", 451, "4.7.1", "Greylisted")
	c.cmd("DATA", 554, "5.5.1", "")
	c.cmd("QUIT", 221, "", "")
	res := r.result(t)
	if res.Outcome != "quit" || res.Trap != "test trap" || !res.TLS {
		t.Errorf("result %+v", res)
	}
	if n := greyTuples(t, h); n != 0 {
		t.Errorf("%d grey tuples after the trap", n)
	}
}
