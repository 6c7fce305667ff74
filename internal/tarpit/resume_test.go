package tarpit

import (
	"strings"
	"testing"
)

// A resumed session sends no banner, knows the sender already, and answers
// the pipelined input it was handed first.
func TestAddResumed(t *testing.T) {
	h := startHarness(t, testConfig())
	c, s := h.pair("")
	defer c.Close()
	if err := h.tp.AddResumed(s, info(s, t.Name()), []byte("RCPT TO:<b@example.org>\r\n"),
		Resume{Helo: "bot.example", HaveMail: true, From: "spam@bot.example"}); err != nil {
		t.Fatal(err)
	}
	cl := newClient(t, c)
	if r := cl.expect(250, "2.1.5"); r.Code != 250 {
		t.Fatalf("first reply %v, want the RCPT's 250 (no banner)", r)
	}
	cl.cmd("DATA", 354, "")
	cl.send("Subject: x\r\n\r\nbody\r\n.\r\n")
	if r := cl.expect(451, "4.7.1"); !strings.Contains(r.Lines[0], testReason) {
		t.Errorf("final reply %v", r)
	}
	cl.cmd("QUIT", 221, "2.0.0")
	v := h.verdict()
	if v.Helo != "bot.example" || v.From != "spam@bot.example" || v.Rcpts != 1 || v.Messages != 1 || v.Outcome != "quit" {
		t.Errorf("verdict %+v", v)
	}
}
