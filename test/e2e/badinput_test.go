package e2e

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/greypit/greypit/internal/testenv"
)

// Bad input gets a clear reply and, where the session cannot go on, a
// closed connection: never a crash or a hang. After all of it the daemon
// still serves.
func TestBadInput(t *testing.T) {
	pf := backend(t, testenv.ModeProxy)
	g := startGreypit(t, greypitOpts{backend: pf.Addr(), sets: []string{"smtp.max_errors=5", "smtp.command_timeout=2s"}})

	dial := func() *testenv.SMTPConn {
		c := testenv.DialSMTP(t, "127.0.0.30:0", g.Addr)
		c.Expect(220, "")
		return c
	}
	// expectClosed reads until EOF, bounded by the connection's deadline.
	expectClosed := func(c *testenv.SMTPConn, what string) {
		t.Helper()
		c.Conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadAll(c.Conn); err != nil {
			t.Errorf("%s: connection not closed: %v", what, err)
		}
		c.Close()
	}

	t.Run("long line", func(t *testing.T) {
		c := dial()
		// RFC 5321 §4.5.3.1.4: a command line is at most 512 octets.
		c.Write([]byte("HELO " + strings.Repeat("a", 600) + "\r\n"))
		if r := c.ReadReply(); r.Code != 500 || !strings.Contains(r.Text(), "too long") {
			t.Fatalf("long line: %s", r)
		}
		if r := c.Cmd("NOOP"); r.Code != 250 {
			t.Fatalf("session unusable after a long line: %s", r)
		}
		// A never-ending line: rejected, then the session is closed.
		c.Write([]byte(strings.Repeat("x", 200_000)))
		if r := c.ReadReply(); r.Code != 500 && r.Code != 421 {
			t.Fatalf("endless line: %s", r)
		}
		expectClosed(c, "endless line")
	})
	t.Run("NUL and binary", func(t *testing.T) {
		c := dial()
		c.Write([]byte("HELO a\x00b\r\n"))
		if r := c.ReadReply(); r.Code != 500 {
			t.Fatalf("NUL: %s", r)
		}
		c.Write([]byte("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n"))
		if r := c.ReadReply(); r.Code != 500 {
			t.Fatalf("binary: %s", r)
		}
		c.Write([]byte("MAIL FROM:<a@b.example>\nRCPT TO:<x@example.test>\n"))
		if r := c.ReadReply(); r.Code != 500 {
			t.Fatalf("bare LF: %s", r)
		}
		c.Close()
	})
	t.Run("HTTP", func(t *testing.T) {
		c := dial()
		c.Write([]byte("GET / HTTP/1.1\r\nHost: example.test\r\n\r\n"))
		if r := c.ReadReply(); r.Code != 500 || !strings.Contains(r.Text(), "not HTTP") {
			t.Fatalf("HTTP: %s", r)
		}
		expectClosed(c, "HTTP")
	})
	t.Run("unknown commands", func(t *testing.T) {
		c := dial()
		for i := range 4 {
			if r := c.Cmd("FROB " + strings.Repeat("z", i)); r.Code != 500 {
				t.Fatalf("unknown command %d: %s", i, r)
			}
		}
		if r := c.Cmd("FROB"); r.Code != 421 {
			t.Fatalf("fifth error: %s, want 421", r)
		}
		expectClosed(c, "too many errors")
	})
	t.Run("DATA without end", func(t *testing.T) {
		c := dial()
		c.Cmd("EHLO client.example.org")
		c.Cmd("MAIL FROM:<a@example.org>")
		if r := c.Cmd("RCPT TO:<b@example.test>"); r.Code != 451 {
			t.Fatalf("RCPT: %s", r)
		}
		if r := c.Cmd("DATA"); r.Code != 554 {
			t.Fatalf("DATA with no accepted recipient: %s", r)
		}
		// The client sends a body nobody asked for, and never the dot:
		// each line is a bad command until the session is closed.
		c.Write([]byte(strings.Repeat("this is body text, not a command\r\n", 10)))
		expectClosed(c, "DATA without end")
	})
	t.Run("silent client", func(t *testing.T) {
		c := dial()
		// command_timeout is 2s here: greypit gives up with 421.
		c.Conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		if r := c.ReadReply(); r.Code != 421 {
			t.Fatalf("silent client: %s", r)
		}
		expectClosed(c, "timeout")
	})
	t.Run("commands out of order", func(t *testing.T) {
		c := dial()
		if r := c.Cmd("MAIL FROM:<a@example.org>"); r.Code != 503 {
			t.Fatalf("MAIL before HELO: %s", r)
		}
		c.Cmd("EHLO client.example.org")
		if r := c.Cmd("RCPT TO:<b@example.test>"); r.Code != 503 {
			t.Fatalf("RCPT before MAIL: %s", r)
		}
		if r := c.Cmd("MAIL FROM:<not an address>"); r.Code/100 != 5 {
			t.Fatalf("bad sender: %s", r)
		}
		if r := c.Cmd("QUIT"); r.Code != 221 {
			t.Fatalf("QUIT: %s", r)
		}
		expectClosed(c, "quit")
	})

	// Still alive and serving.
	c := dial()
	if r := c.Cmd("EHLO client.example.org"); r.Code != 250 {
		t.Fatalf("after bad input: %s", r)
	}
	c.Close()
	if pf.Grep(regexpMust(`127\.0\.0\.30`)) != nil {
		t.Errorf("the backend heard from a client that never passed greylisting")
	}
}
