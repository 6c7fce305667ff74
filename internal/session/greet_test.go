package session_test

import (
	"testing"
	"time"
)

// The greet pause counts from the connection, so time the server spent
// classifying the client (DNSBL lookups) is not added to it.
func TestGreetPauseCountsFromConnect(t *testing.T) {
	h := newHarness(t, func(h *harness) {
		h.cfg.GreetWait = 10 * time.Second
		h.connected = time.Now().Add(-10 * time.Second)
	})
	c, r := h.start()
	start := time.Now()
	c.expect(220, "", banner)
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("banner after %v; the 10s pause had already passed during classification", el)
	}
	c.cmd("QUIT", 221, "", "")
	if res := r.result(t); res.Pregreet {
		t.Errorf("result = %+v, want no pregreet", res)
	}
}

// A client that talked while it was being classified is an early talker,
// even when the pause has run out by the time the session starts.
func TestPregreetDuringClassification(t *testing.T) {
	h := newHarness(t, func(h *harness) {
		h.cfg.GreetWait = 10 * time.Second
		h.connected = time.Now().Add(-20 * time.Second)
	})
	c, r := h.start("EHLO early.example\r\n")
	c.expect(220, "", banner)
	c.expect(250, "", hostname)
	c.cmd("QUIT", 221, "", "")
	if res := r.result(t); !res.Pregreet {
		t.Errorf("result = %+v, want pregreet", res)
	}
}
