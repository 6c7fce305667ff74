package testenv

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

const wait = 20 * time.Second

func hostPort(t *testing.T, addr string) (string, string) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return h, p
}

// sendMail runs one complete SMTP transaction with swaks and requires
// success.
func sendMail(t *testing.T, addr, from, to, subject string, extra ...string) SwaksResult {
	t.Helper()
	h, p := hostPort(t, addr)
	args := append([]string{
		"--server", h, "--port", p,
		"--from", from, "--to", to,
		"--h-Subject", subject,
		"--timeout", "15s",
	}, extra...)
	r := Swaks(t, args...)
	if r.Code != 0 {
		t.Fatalf("swaks failed:\n%s", r)
	}
	return r
}

func findSubject(t *testing.T, msgs []Message, subject string) Message {
	t.Helper()
	for _, m := range msgs {
		if m.Subject == subject {
			return m
		}
	}
	t.Fatalf("no delivered message with Subject %q among %d", subject, len(msgs))
	return Message{}
}

func TestPlainBackend(t *testing.T) {
	t.Parallel()
	Require(t, "swaks")
	pf := StartPostfix(t, PostfixOptions{Mode: ModePlain, Domains: []string{"example.test", "example.org"}})

	r := sendMail(t, pf.Addr(), "alice@sender.test", "bob@example.org", "plain hello",
		"--local-interface", "127.0.0.5", "--pipeline")
	replies := r.Replies()
	if len(replies) == 0 || !strings.HasPrefix(replies[0], "220 ") || !strings.HasPrefix(replies[len(replies)-1], "221 ") {
		t.Fatalf("unexpected replies %q", replies)
	}
	pf.WaitLog(t, regexp.MustCompile(`connect from unknown\[127\.0\.0\.5\]`), wait)
	pf.WaitLog(t, regexp.MustCompile(`client=unknown\[127\.0\.0\.5\]`), wait)
	m := findSubject(t, pf.WaitMessages(t, 1, wait), "plain hello")
	if m.DeliveredTo != "bob@example.org" || m.ReturnPath != "<alice@sender.test>" {
		t.Errorf("Delivered-To %q Return-Path %q", m.DeliveredTo, m.ReturnPath)
	}
	if m.MessageID == "" || !bytes.Contains(m.Raw, []byte("Received: from ")) {
		t.Errorf("message lacks Message-ID or Received:\n%s", m.Raw)
	}

	pf.WaitQueueEmpty(t, wait)
}

func TestProxyBackend(t *testing.T) {
	t.Parallel()
	pf := StartPostfix(t, PostfixOptions{Mode: ModeProxy})
	_, p := hostPort(t, pf.Addr())
	dport, _ := strconv.Atoi(p)

	// PROXY protocol v2, written out by hand: signature, version 2 +
	// PROXY command, TCP over IPv4, 12 address bytes, src 192.0.2.7:40000,
	// dst 127.0.0.1:dport.
	hdr := []byte("\r\n\r\n\x00\r\nQUIT\n")
	hdr = append(hdr, 0x21, 0x11, 0x00, 12)
	hdr = append(hdr, 192, 0, 2, 7)
	hdr = append(hdr, 127, 0, 0, 1)
	hdr = binary.BigEndian.AppendUint16(hdr, 40000)
	hdr = binary.BigEndian.AppendUint16(hdr, uint16(dport))
	helper := ProxyV2Header(&net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 40000},
		&net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: dport})
	if !bytes.Equal(hdr, helper) {
		t.Fatalf("ProxyV2Header = %x, want %x", helper, hdr)
	}

	c := DialSMTP(t, "127.0.0.3", pf.Addr())
	c.Write(hdr)
	c.Expect(220, "")
	c.Expect(250, "EHLO proxied.test")
	c.Expect(250, "MAIL FROM:<carol@sender.test>")
	// 192.0.2.7 is outside mynetworks, so relaying is denied: proof that
	// policy applies to the proxied client, not to the loopback peer.
	if r := c.Cmd("RCPT TO:<x@elsewhere.test>"); r.Code != 554 {
		t.Errorf("relay from proxied 192.0.2.7: %v, want 554", r)
	}
	c.Expect(250, "RCPT TO:<bob@example.test>")
	c.Expect(354, "DATA")
	c.Expect(250, "Subject: via proxy\r\nFrom: carol@sender.test\r\nTo: bob@example.test\r\n\r\nbody\r\n.")
	c.Expect(221, "QUIT")

	pf.WaitLog(t, regexp.MustCompile(`connect from unknown\[192\.0\.2\.7\]`), wait)
	pf.WaitLog(t, regexp.MustCompile(`client=unknown\[192\.0\.2\.7\]`), wait)
	findSubject(t, pf.WaitMessages(t, 1, wait), "via proxy")
	if l := pf.Grep(regexp.MustCompile(`127\.0\.0\.3`)); len(l) != 0 {
		t.Errorf("the proxy's own address leaked into the log: %q", l)
	}
}

func TestXClientBackend(t *testing.T) {
	t.Parallel()
	Require(t, "swaks")
	pf := StartPostfix(t, PostfixOptions{Mode: ModeXClient})

	// swaks speaks XCLIENT itself.
	r := sendMail(t, pf.Addr(), "dave@sender.test", "bob@example.test", "via xclient",
		"--local-interface", "127.0.0.5", "--xclient-addr", "127.0.0.77")
	if !strings.Contains(r.Out, "XCLIENT ADDR=127.0.0.77") {
		t.Fatalf("swaks did not send XCLIENT:\n%s", r)
	}
	pf.WaitLog(t, regexp.MustCompile(`client=unknown\[127\.0\.0\.77\]`), wait)
	findSubject(t, pf.WaitMessages(t, 1, wait), "via xclient")

	// And by hand: XCLIENT answers with a fresh 220 banner.
	c := DialSMTP(t, "127.0.0.5", pf.Addr())
	c.Expect(220, "")
	ehlo := c.Expect(250, "EHLO raw.test")
	if !strings.Contains(ehlo.Text(), "XCLIENT") {
		t.Fatalf("XCLIENT not offered: %v", ehlo)
	}
	c.Expect(220, "XCLIENT ADDR=127.0.0.78 NAME=[UNAVAILABLE]")
	c.Expect(250, "EHLO raw.test")
	c.Expect(250, "MAIL FROM:<erin@sender.test>")
	c.Expect(250, "RCPT TO:<bob@example.test>")
	c.Expect(221, "QUIT")
	pf.WaitLog(t, regexp.MustCompile(`disconnect from unknown\[127\.0\.0\.78\]`), wait)

	// A plain-mode instance refuses XCLIENT.
	plain := StartPostfix(t, PostfixOptions{})
	c = DialSMTP(t, "127.0.0.5", plain.Addr())
	c.Expect(220, "")
	c.Expect(250, "EHLO raw.test")
	if r := c.Cmd("XCLIENT ADDR=127.0.0.78"); r.Code != 550 && r.Code != 502 {
		t.Errorf("plain instance accepted XCLIENT: %v", r)
	}
}

func TestTLSBackend(t *testing.T) {
	t.Parallel()
	Require(t, "swaks")
	pf := StartPostfix(t, PostfixOptions{TLS: true})
	if pf.CertFile() == "" || !bytes.Contains(pf.CertPEM(), []byte("BEGIN CERTIFICATE")) {
		t.Fatal("no certificate")
	}
	r := sendMail(t, pf.Addr(), "a@sender.test", "bob@example.test", "over tls",
		"--local-interface", "127.0.0.6", "--tls")
	var tlsReplies int
	for _, l := range strings.Split(r.Out, "\n") {
		if strings.HasPrefix(l, "<~ ") {
			tlsReplies++
		}
	}
	if tlsReplies == 0 {
		t.Fatalf("no replies inside TLS:\n%s", r)
	}
	pf.WaitLog(t, regexp.MustCompile(`TLS connection established from unknown\[127\.0\.0\.6\]`), wait)
	findSubject(t, pf.WaitMessages(t, 1, wait), "over tls")
}

// TestRelay: a sending MTA relays through (here: directly to) a backend,
// from a chosen source address; with the backend stopped, mail is deferred
// and retried quickly once it is back.
func TestRelay(t *testing.T) {
	t.Parallel()
	Require(t, "swaks")
	backend := StartPostfix(t, PostfixOptions{})
	sender := StartPostfix(t, PostfixOptions{Relay: backend.Addr(), BindAddress: "127.0.0.9"})

	sendMail(t, sender.Addr(), "frank@sender.test", "bob@example.test", "relayed 1",
		"--local-interface", "127.0.0.5")
	sender.WaitLog(t, regexp.MustCompile(`relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+, .*status=sent`), wait)
	backend.WaitLog(t, regexp.MustCompile(`client=unknown\[127\.0\.0\.9\]`), wait)
	findSubject(t, backend.WaitMessages(t, 1, wait), "relayed 1")

	// Backend down: the sender defers, then delivers soon after the
	// backend is back, without a manual flush.
	backend.Stop()
	if backend.Running() {
		t.Fatal("still running after Stop")
	}
	sendMail(t, sender.Addr(), "frank@sender.test", "bob@example.test", "relayed 2",
		"--local-interface", "127.0.0.5")
	sender.WaitLog(t, regexp.MustCompile(`status=deferred \(connect to 127\.0\.0\.1\[127\.0\.0\.1\]:\d+: Connection refused\)`), wait)
	if q := sender.Queue(); !strings.Contains(q, "bob@example.test") {
		t.Fatalf("deferred message not in queue:\n%s", q)
	}
	backend.Start()
	start := time.Now()
	findSubject(t, backend.WaitMessages(t, 2, wait), "relayed 2")
	t.Logf("redelivered %v after backend restart", time.Since(start).Round(time.Millisecond))
	sender.WaitQueueEmpty(t, wait)
	sender.Flush() // harmless on an empty queue
}

func TestSwaksReplies(t *testing.T) {
	r := SwaksResult{Out: "=== Trying 127.0.0.1:25...\n" +
		"<-  220 mx ESMTP\n -> EHLO x\n<-  250-mx\n<-  250 PIPELINING\n" +
		" -> STARTTLS\n<-  220 go ahead\n<~  250 ok\n <~ RCPT TO:<a@b>\n" +
		"<~* 450 4.7.1 later\n<** 554 no\n*** Remote host closed connection unexpectedly.\n"}
	got := r.Replies()
	want := []string{"220 mx ESMTP", "250-mx", "250 PIPELINING", "220 go ahead", "250 ok", "450 4.7.1 later", "554 no"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("Replies = %q, want %q", got, want)
	}
	if e := r.ErrorReplies(); len(e) != 2 || e[0] != "450 4.7.1 later" {
		t.Errorf("ErrorReplies = %q", e)
	}
}

func TestFreePortDistinct(t *testing.T) {
	seen := map[int]bool{}
	for range 20 {
		p := FreePort(t)
		if seen[p] {
			t.Fatalf("port %d twice", p)
		}
		seen[p] = true
	}
}

// fatalRecorder is a testing.TB whose Fatalf records the failure and ends
// the goroutine instead of failing the real test.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// TestStartDetectsFatalConfig: a daemon dying on a bad setting fails
// StartPostfix even though `postfix start` and smtpd look fine.
func TestStartDetectsFatalConfig(t *testing.T) {
	t.Parallel()
	rec := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		StartPostfix(rec, PostfixOptions{ExtraMain: map[string]string{"minimal_backoff_time": "0s"}})
	}()
	<-done
	if !strings.Contains(rec.msg, "invalid minimal_backoff_time") {
		t.Fatalf("StartPostfix with minimal_backoff_time=0s: got %q", rec.msg)
	}
}
