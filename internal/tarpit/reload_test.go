package tarpit

import (
	"testing"
	"time"
)

// TestDataTimeout: a bot that stops in the middle of its message text
// gets 421 after DataTimeout (RFC 5321 §4.5.3.2.6) and is closed.
func TestDataTimeout(t *testing.T) {
	cfg := testConfig()
	cfg.DataTimeout = 300 * time.Millisecond
	h := startHarness(t, cfg)
	c := h.mustAdd(nil)
	c.expect(220, "")
	c.cmd("HELO bot", 250, "")
	c.toData()
	c.send("Subject: half\r\n\r\nand then nothing")
	start := time.Now()
	c.expect(421, "4.4.2")
	if d := time.Since(start); d < cfg.DataTimeout {
		t.Errorf("421 after %v, before data_timeout %v", d, cfg.DataTimeout)
	}
	c.expectEOF()
	if v := h.verdict(); v.Outcome != "data-timeout" {
		t.Errorf("outcome %q, want data-timeout", v.Outcome)
	}
}

// TestSetConfig: a new reply code applies to a held session's next
// message, and the prefix lengths the tarpit counts by stay.
func TestSetConfig(t *testing.T) {
	h := startHarness(t, testConfig())
	c := h.mustAdd(nil)
	c.expect(220, "")
	c.cmd("HELO bot", 250, "")
	c.toData()
	c.send("x\r\n.\r\n")
	c.expect(451, "4.7.1")
	nc := testConfig()
	nc.ReplyCode = 554
	nc.PrefixV4 = 8
	h.tp.SetConfig(nc)
	c.toData()
	c.send("x\r\n.\r\n")
	c.expect(554, "5.7.1")
	if got := h.tp.conf().PrefixV4; got != 24 {
		t.Errorf("prefix_v4 %d after SetConfig, want 24 kept", got)
	}
	c.cmd("QUIT", 221, "2.0.0")
}

// toData sends a one-recipient envelope and DATA.
func (c *client) toData() {
	c.cmd("MAIL FROM:<a@b.test>", 250, "2.1.0")
	c.cmd("RCPT TO:<c@d.test>", 250, "2.1.5")
	c.cmd("DATA", 354, "")
}
