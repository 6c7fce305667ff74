package tarpit

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"
)

// checkUsable shows that a connection Add refused is untouched: both
// directions still work.
func checkUsable(t *testing.T, c *client, server net.Conn) {
	t.Helper()
	server.SetDeadline(time.Now().Add(waitLong))
	if _, err := server.Write([]byte("421 busy\r\n")); err != nil {
		t.Fatalf("refused connection not writable: %v", err)
	}
	c.expect(421, "")
	c.send("QUIT\r\n")
	buf := make([]byte, 6)
	if _, err := io.ReadFull(server, buf); err != nil || string(buf) != "QUIT\r\n" {
		t.Fatalf("refused connection not readable: %q %v", buf, err)
	}
}

func TestMaxSessions(t *testing.T) {
	cfg := testConfig()
	cfg.MaxSessions = 2
	h := startHarness(t, cfg)
	a := h.mustAdd(nil)
	b := h.mustAdd(nil)
	c, server, err := h.add("", nil)
	if !errors.Is(err, ErrFull) {
		t.Fatalf("third Add: %v, want ErrFull", err)
	}
	checkUsable(t, c, server)
	if n := h.tp.Active(); n != 2 {
		t.Fatalf("Active() = %d, want 2", n)
	}
	a.c.Close()
	if v := h.verdict(); v.Outcome != "closed" {
		t.Fatalf("verdict %+v", v)
	}
	// The slot is free again.
	d := h.mustAdd(nil)
	d.expect(220, "")
	b.c.Close()
	d.c.Close()
	h.verdict()
	h.verdict()
	checkEmpty(t, h.tp)
}

func TestMaxPerPrefix(t *testing.T) {
	cfg := testConfig()
	cfg.MaxPerPrefix = 2
	h := startHarness(t, cfg)
	var clients []*client
	for _, from := range []string{"127.0.0.1", "127.0.0.2"} {
		c, _, err := h.add(from, nil)
		if err != nil {
			t.Fatalf("Add from %s: %v", from, err)
		}
		clients = append(clients, c)
	}
	c, server, err := h.add("127.0.0.3", nil)
	if !errors.Is(err, ErrPrefixFull) {
		t.Fatalf("third Add from 127.0.0.0/24: %v, want ErrPrefixFull", err)
	}
	checkUsable(t, c, server)
	for _, from := range []string{"127.0.1.1", "::1"} {
		c, _, err := h.add(from, nil)
		if err != nil {
			t.Fatalf("Add from %s (another prefix): %v", from, err)
		}
		clients = append(clients, c)
	}
	want := map[netip.Prefix]int{
		netip.MustParsePrefix("127.0.0.0/24"): 2,
		netip.MustParsePrefix("127.0.1.0/24"): 1,
		netip.MustParsePrefix("::/64"):        1,
	}
	got := h.tp.prefixCounts()
	if len(got) != len(want) {
		t.Fatalf("perPrefix %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("perPrefix %v, want %v", got, want)
		}
	}
	for _, c := range clients {
		c.expect(220, "")
		c.send("QUIT\r\n")
	}
	for _, c := range clients {
		c.expect(221, "2.0.0")
		c.expectEOF()
	}
	for range clients {
		if v := h.verdict(); v.Outcome != "quit" {
			t.Errorf("verdict %+v", v)
		}
	}
	checkEmpty(t, h.tp)
}

func TestPrefix(t *testing.T) {
	tp := New(Config{PrefixV4: 24, PrefixV6: 48}, nil)
	for _, tc := range []struct{ addr, want string }{
		{"192.0.2.77", "192.0.2.0/24"},
		{"::ffff:192.0.2.77", "192.0.2.0/24"}, // a mapped address counts as IPv4
		{"2001:db8:1:2::3", "2001:db8:1::/48"},
		{"fe80::1%eth0", "fe80::/48"},
	} {
		if got := tp.prefix(netip.MustParseAddr(tc.addr)); got.String() != tc.want {
			t.Errorf("prefix(%s) = %s, want %s", tc.addr, got, tc.want)
		}
	}
	// A bad prefix length falls back to the host itself.
	tp = New(Config{PrefixV4: 40, PrefixV6: 200}, nil)
	if got := tp.prefix(netip.MustParseAddr("192.0.2.77")); got.String() != "192.0.2.77/32" {
		t.Errorf("prefix with a bad length = %s", got)
	}
}

// TestAddStopped checks Add after Run returned.
func TestAddStopped(t *testing.T) {
	h := startHarness(t, testConfig())
	h.stop()
	c, server, err := h.add("", nil)
	if !errors.Is(err, ErrStopped) {
		t.Fatalf("Add after stop: %v, want ErrStopped", err)
	}
	checkUsable(t, c, server)
	checkEmpty(t, h.tp)
}
