package testenv

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// FakeMTA is a scripted backend SMTP server on 127.0.0.1. Each connection
// is served in its own goroutine; its transcript is sent on done when the
// connection ends. Cleanup closes the listener and waits for every
// connection goroutine.
type FakeMTA struct {
	t     testing.TB
	ln    net.Listener
	Addr  string // host:port it listens on
	proxy bool   // expect a PROXY v2 header before anything else
	// Greeting is the first reply; default "220 backend.test ESMTP fake".
	Greeting string
	// Ext are the EHLO keyword lines after the host name line.
	Ext []string
	// Reply, if set, may override the reply to a command line: return the
	// raw reply bytes (with CRLF), "-" to send nothing, or "" for the
	// default. verb is upper-cased; "." is the end of message data.
	Reply func(verb, line string) string
	// Drop closes this many of the next connections right after accept.
	Drop atomic.Int32
	done chan *MTAConn
	wg   sync.WaitGroup
}

// MTAConn is the transcript of one backend connection.
type MTAConn struct {
	Proxy []byte   // the PROXY v2 header as received
	Lines []string // command lines in order, without CRLF
	Data  []string // message texts (without the final dot line)
	Err   error    // what ended the connection other than EOF or QUIT
}

// NewFakeMTA starts a fake backend; opts configure it before it accepts.
func NewFakeMTA(t testing.TB, proxy bool, opts ...func(*FakeMTA)) *FakeMTA {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	m := &FakeMTA{
		t: t, ln: ln, Addr: ln.Addr().String(), proxy: proxy,
		Greeting: "220 backend.test ESMTP fake",
		Ext:      []string{"PIPELINING", "SIZE 1000000", "8BITMIME", "ENHANCEDSTATUSCODES"},
		done:     make(chan *MTAConn, 32),
	}
	for _, o := range opts {
		o(m)
	}
	m.wg.Add(1)
	go m.accept()
	t.Cleanup(func() {
		ln.Close()
		m.wg.Wait()
	})
	return m
}

func (m *FakeMTA) accept() {
	defer m.wg.Done()
	for {
		c, err := m.ln.Accept()
		if err != nil {
			return
		}
		if m.Drop.Load() > 0 {
			m.Drop.Add(-1)
			c.Close()
			continue
		}
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			defer c.Close()
			mc := m.serve(c)
			m.done <- mc
		}()
	}
}

// next waits for the next finished connection.
func (m *FakeMTA) Next(t testing.TB) *MTAConn {
	t.Helper()
	select {
	case mc := <-m.done:
		return mc
	case <-time.After(10 * time.Second):
		t.Fatal("timed out waiting for the backend connection to end")
		return nil
	}
}

func (m *FakeMTA) defaultReply(verb string) string {
	switch verb {
	case "EHLO":
		lines := append([]string{"backend.test"}, m.Ext...)
		var b strings.Builder
		for i, l := range lines {
			sep := "-"
			if i == len(lines)-1 {
				sep = " "
			}
			b.WriteString("250" + sep + l + "\r\n")
		}
		return b.String()
	case "HELO":
		return "250 backend.test\r\n"
	case "XCLIENT":
		return "220 backend.test ESMTP after xclient\r\n"
	case "MAIL":
		return "250 2.1.0 Ok\r\n"
	case "RCPT":
		return "250 2.1.5 Ok\r\n"
	case "DATA":
		return "354 End data with <CR><LF>.<CR><LF>\r\n"
	case ".":
		return "250 2.0.0 Ok: queued as FAKE1\r\n"
	case "QUIT":
		return "221 2.0.0 Bye\r\n"
	case "RSET", "NOOP":
		return "250 2.0.0 Ok\r\n"
	}
	return "502 5.5.2 Error: command not recognized\r\n"
}

func (m *FakeMTA) answer(c net.Conn, verb, line string) (string, error) {
	r := ""
	if m.Reply != nil {
		r = m.Reply(verb, line)
	}
	if r == "" {
		r = m.defaultReply(verb)
	}
	if r == "-" {
		return r, nil
	}
	_, err := io.WriteString(c, r)
	return r, err
}

func (m *FakeMTA) serve(c net.Conn) *MTAConn {
	mc := &MTAConn{}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	if m.proxy {
		h, err := readProxyV2(br)
		mc.Proxy = h
		if err != nil {
			mc.Err = err
			return mc
		}
	}
	if _, err := io.WriteString(c, m.Greeting+"\r\n"); err != nil {
		mc.Err = err
		return mc
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			if !errors.Is(err, io.EOF) || line != "" {
				mc.Err = err
			}
			return mc
		}
		line = strings.TrimSuffix(line, "\r\n")
		mc.Lines = append(mc.Lines, line)
		verb, _, _ := strings.Cut(line, " ")
		verb = strings.ToUpper(verb)
		r, err := m.answer(c, verb, line)
		if err != nil {
			mc.Err = err
			return mc
		}
		switch {
		case verb == "QUIT":
			return mc
		case verb == "DATA" && strings.HasPrefix(r, "354"):
			var msg strings.Builder
			for {
				l, err := br.ReadString('\n')
				if err != nil {
					mc.Err = fmt.Errorf("in DATA: %w", err)
					return mc
				}
				if l == ".\r\n" {
					break
				}
				msg.WriteString(l)
			}
			mc.Data = append(mc.Data, msg.String())
			if _, err := m.answer(c, ".", "."); err != nil {
				mc.Err = err
				return mc
			}
		}
	}
}

// readProxyV2 reads one PROXY v2 header: the 16 fixed bytes and the
// address block whose length they announce.
func readProxyV2(br *bufio.Reader) ([]byte, error) {
	h := make([]byte, 16)
	if _, err := io.ReadFull(br, h); err != nil {
		return h, fmt.Errorf("PROXY header: %w", err)
	}
	if !bytes.Equal(h[:12], []byte("\r\n\r\n\x00\r\nQUIT\n")) {
		return h, fmt.Errorf("PROXY header: bad signature %q", h[:12])
	}
	rest := make([]byte, binary.BigEndian.Uint16(h[14:16]))
	if _, err := io.ReadFull(br, rest); err != nil {
		return h, fmt.Errorf("PROXY header addresses: %w", err)
	}
	return append(h, rest...), nil
}

// ClosedPort returns a loopback address nothing listens on.
func ClosedPort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
