package testenv

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// DialTimeout bounds connection setup in Dial; DialDeadline bounds the
// whole life of a connection Dial returns, so a stuck peer cannot hang a
// test.
const (
	DialTimeout  = 5 * time.Second
	DialDeadline = 60 * time.Second
)

// Dial opens a TCP connection to raddr ("host:port") from the local address
// laddr, which is an IP ("127.0.0.5", "::1") or "ip:port"; "" lets the
// kernel choose. Any 127.0.0.0/8 address works as a source on Linux without
// configuration, which is how tests impersonate distinct SMTP clients. The
// connection has a DialDeadline deadline and is closed when the test ends.
func Dial(t testing.TB, laddr, raddr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: DialTimeout}
	if laddr != "" {
		host, port := laddr, 0
		if h, p, err := net.SplitHostPort(laddr); err == nil {
			host = h
			if port, err = strconv.Atoi(p); err != nil {
				t.Fatalf("testenv: Dial: bad local port in %q", laddr)
			}
		}
		ip := net.ParseIP(strings.Trim(host, "[]"))
		if ip == nil {
			t.Fatalf("testenv: Dial: bad local address %q", laddr)
		}
		d.LocalAddr = &net.TCPAddr{IP: ip, Port: port}
	}
	c, err := d.Dial("tcp", raddr)
	if err != nil {
		t.Fatalf("testenv: Dial %s -> %s: %v", laddr, raddr, err)
	}
	c.SetDeadline(time.Now().Add(DialDeadline))
	t.Cleanup(func() { c.Close() })
	return c
}

// Reply is one (possibly multi-line) SMTP reply.
type Reply struct {
	Code  int      // 3-digit code; 0 if the connection ended first
	Lines []string // the text of each line, without code and separator
}

// Text joins the reply's lines with newlines.
func (r Reply) Text() string { return strings.Join(r.Lines, "\n") }

func (r Reply) String() string {
	if len(r.Lines) == 0 {
		return strconv.Itoa(r.Code)
	}
	var b strings.Builder
	for i, l := range r.Lines {
		sep := "-"
		if i == len(r.Lines)-1 {
			sep = " "
		}
		fmt.Fprintf(&b, "%d%s%s", r.Code, sep, l)
		if i < len(r.Lines)-1 {
			b.WriteString("\n")
		}
	}
	return b.String()
}

// SMTPConn is a minimal raw SMTP client for dialogues that swaks cannot
// express: pre-banner bytes (PROXY headers), early talkers, exact command
// sequences. It is deliberately dumb: it writes what it is told and parses
// replies, nothing more. Methods fail the test on I/O errors.
type SMTPConn struct {
	Conn net.Conn
	R    *bufio.Reader
	t    testing.TB
}

// DialSMTP is Dial followed by NewSMTPConn. It does not read the banner, so
// the caller can send a PROXY header or talk early first.
func DialSMTP(t testing.TB, laddr, raddr string) *SMTPConn {
	t.Helper()
	return NewSMTPConn(t, Dial(t, laddr, raddr))
}

// NewSMTPConn wraps an established connection.
func NewSMTPConn(t testing.TB, c net.Conn) *SMTPConn {
	return &SMTPConn{Conn: c, R: bufio.NewReader(c), t: t}
}

// Write sends raw bytes (e.g. a PROXY header), no CRLF added.
func (c *SMTPConn) Write(b []byte) {
	c.t.Helper()
	if _, err := c.Conn.Write(b); err != nil {
		c.t.Fatalf("testenv: SMTP write: %v", err)
	}
}

// Send writes one command line, adding CRLF.
func (c *SMTPConn) Send(line string) {
	c.t.Helper()
	c.Write([]byte(line + "\r\n"))
}

// ReadReply reads one complete reply. At EOF it returns what it has, with
// Code 0 if nothing was read; other read errors fail the test.
func (c *SMTPConn) ReadReply() Reply {
	c.t.Helper()
	var r Reply
	for {
		line, err := c.R.ReadString('\n')
		if err != nil {
			if line == "" {
				if r.Code == 0 && isEOF(err) {
					return r
				}
				c.t.Fatalf("testenv: SMTP read after %v: %v", r, err)
			}
		}
		line = strings.TrimRight(line, "\r\n")
		if len(line) < 3 {
			c.t.Fatalf("testenv: SMTP malformed reply line %q", line)
		}
		code, cerr := strconv.Atoi(line[:3])
		if cerr != nil {
			c.t.Fatalf("testenv: SMTP malformed reply line %q", line)
		}
		r.Code = code
		text, more := "", false
		if len(line) > 3 {
			more = line[3] == '-'
			text = line[4:]
		}
		r.Lines = append(r.Lines, text)
		if !more || err != nil {
			return r
		}
	}
}

// Cmd sends line and returns the reply.
func (c *SMTPConn) Cmd(line string) Reply {
	c.t.Helper()
	c.Send(line)
	return c.ReadReply()
}

// Expect sends line (unless it is empty, which just reads a reply, e.g. the
// banner) and fails the test unless the reply has the given code.
func (c *SMTPConn) Expect(code int, line string) Reply {
	c.t.Helper()
	if line != "" {
		c.Send(line)
	}
	r := c.ReadReply()
	if r.Code != code {
		c.t.Fatalf("testenv: SMTP %q: got %q, want %d", line, r.String(), code)
	}
	return r
}

// Close closes the connection.
func (c *SMTPConn) Close() error { return c.Conn.Close() }

func isEOF(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
}
