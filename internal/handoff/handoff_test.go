package handoff

import (
	"bufio"
	"context"
	"errors"
	"github.com/greypit/greypit/internal/metrics"
	"github.com/greypit/greypit/internal/testenv"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/greypit/greypit/internal/smtp"
)

var (
	clientV4 = Client{
		Addr:  netip.MustParseAddrPort("192.0.2.1:40000"),
		Local: netip.MustParseAddrPort("198.51.100.2:25"),
		Helo:  "client.example",
		ESMTP: true,
	}
	clientV6 = Client{
		Addr:  netip.MustParseAddrPort("[2001:db8::1]:40001"),
		Local: netip.MustParseAddrPort("[2001:db8::25]:25"),
		Helo:  "client6.example",
		ESMTP: true,
	}
)

func TestXClientCommand(t *testing.T) {
	tests := []struct {
		name string
		cl   Client
		want string
	}{
		{"v4 EHLO", clientV4, "XCLIENT ADDR=192.0.2.1 PORT=40000 HELO=client.example PROTO=ESMTP"},
		{"v6 EHLO", clientV6, "XCLIENT ADDR=IPV6:2001:db8::1 PORT=40001 HELO=client6.example PROTO=ESMTP"},
		{"v4 HELO", Client{Addr: netip.MustParseAddrPort("192.0.2.1:25000"), Helo: "old.example"},
			"XCLIENT ADDR=192.0.2.1 PORT=25000 HELO=old.example PROTO=SMTP"},
		{"mapped v4 is v4", Client{Addr: netip.MustParseAddrPort("[::ffff:192.0.2.9]:1234"), Helo: "x.example", ESMTP: true},
			"XCLIENT ADDR=192.0.2.9 PORT=1234 HELO=x.example PROTO=ESMTP"},
		{"no greeting yet: no HELO, no PROTO", Client{Addr: netip.MustParseAddrPort("192.0.2.1:40000"), ESMTP: true},
			"XCLIENT ADDR=192.0.2.1 PORT=40000"},
		{"v6 without greeting", Client{Addr: netip.MustParseAddrPort("[2001:db8::1]:5")},
			"XCLIENT ADDR=IPV6:2001:db8::1 PORT=5"},
		{"xtext in HELO", Client{Addr: netip.MustParseAddrPort("192.0.2.1:1"), Helo: "a+b=c", ESMTP: true},
			"XCLIENT ADDR=192.0.2.1 PORT=1 HELO=a+2Bb+3Dc PROTO=ESMTP"},
		{"address literal HELO", Client{Addr: netip.MustParseAddrPort("192.0.2.1:1"), Helo: "[192.0.2.1]", ESMTP: true},
			"XCLIENT ADDR=192.0.2.1 PORT=1 HELO=[192.0.2.1] PROTO=ESMTP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := XClientCommand(tt.cl); got != tt.want {
				t.Errorf("XClientCommand = %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestXtext(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"mx.example", "mx.example"},
		{"a+b", "a+2Bb"},
		{"a=b", "a+3Db"},
		{"a b", "a+20b"},
		{"tab\there", "tab+09here"},
		{"!~", "!~"},
		{"\x7f", "+7F"},
		{"é", "+C3+A9"},
		{"\r\n", "+0D+0A"},
	}
	for _, tt := range tests {
		if got := xtext(tt.in); got != tt.want {
			t.Errorf("xtext(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	// Every printable character except '+' and '=' passes unchanged, so
	// the encoding never yields a space or control character.
	for c := byte('!'); c <= '~'; c++ {
		got := xtext(string(c))
		if c == '+' || c == '=' {
			if len(got) != 3 || got[0] != '+' {
				t.Errorf("xtext(%q) = %q, want +XX", c, got)
			}
		} else if got != string(c) {
			t.Errorf("xtext(%q) = %q, want unchanged", c, got)
		}
	}
}

func dialer(addr string, mode Mode) *Dialer {
	return &Dialer{Address: addr, Mode: mode, ConnectTimeout: 5 * time.Second, ReplyTimeout: 5 * time.Second, Hostname: "greypit.test"}
}

func TestOpenProxyV2(t *testing.T) {
	m := testenv.NewFakeMTA(t, true, func(m *testenv.FakeMTA) {
		m.Ext = []string{"PIPELINING", "size 1000000", "8bitmime", "AUTH PLAIN LOGIN"}
	})
	bc, err := dialer(m.Addr, ProxyV2).Open(context.Background(), clientV4)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	wantExt := map[string]string{"PIPELINING": "", "SIZE": "1000000", "8BITMIME": "", "AUTH": "PLAIN LOGIN"}
	if len(bc.Ext) != len(wantExt) {
		t.Errorf("Ext = %v, want %v", bc.Ext, wantExt)
	}
	for k, v := range wantExt {
		if got, ok := bc.Ext[k]; !ok || got != v {
			t.Errorf("Ext[%q] = %q, %v; want %q", k, got, ok, v)
		}
	}
	r, raw, err := bc.Cmd("MAIL FROM:<alice@example.com>")
	if err != nil || r.Code != 250 || r.Enhanced != "2.1.0" || string(raw) != "250 2.1.0 Ok\r\n" {
		t.Errorf("Cmd(MAIL) = %+v %q %v", r, raw, err)
	}
	bc.Quit()

	mc := m.Next(t)
	if mc.Err != nil {
		t.Errorf("backend: %v", mc.Err)
	}
	h := decodeProxyV2(t, mc.Proxy)
	if h.src != clientV4.Addr || h.dst != clientV4.Local {
		t.Errorf("PROXY src, dst = %s, %s; want %s, %s", h.src, h.dst, clientV4.Addr, clientV4.Local)
	}
	want := []string{"EHLO client.example", "MAIL FROM:<alice@example.com>", "QUIT"}
	if !slices.Equal(mc.Lines, want) {
		t.Errorf("backend got %q, want %q", mc.Lines, want)
	}
}

func TestOpenXClient(t *testing.T) {
	for _, cl := range []Client{clientV4, clientV6} {
		t.Run(cl.Addr.String(), func(t *testing.T) {
			m := testenv.NewFakeMTA(t, false)
			bc, err := dialer(m.Addr, XClient).Open(context.Background(), cl)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			bc.Quit()
			mc := m.Next(t)
			want := []string{"EHLO greypit.test", XClientCommand(cl), "EHLO " + cl.Helo, "QUIT"}
			if !slices.Equal(mc.Lines, want) {
				t.Errorf("backend got\n%q\nwant\n%q", mc.Lines, want)
			}
			if mc.Err != nil {
				t.Errorf("backend: %v", mc.Err)
			}
		})
	}
}

func TestOpenPlainHELO(t *testing.T) {
	m := testenv.NewFakeMTA(t, false)
	cl := Client{Addr: clientV4.Addr, Local: clientV4.Local, Helo: "old.example"}
	bc, err := dialer(m.Addr, Plain).Open(context.Background(), cl)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if len(bc.Ext) != 0 {
		t.Errorf("Ext after HELO = %v, want empty", bc.Ext)
	}
	bc.Quit()
	// No PROXY header: the very first bytes are the HELO command.
	mc := m.Next(t)
	if want := []string{"HELO old.example", "QUIT"}; !slices.Equal(mc.Lines, want) {
		t.Errorf("backend got %q, want %q", mc.Lines, want)
	}
}

func asError(t *testing.T, err error) *Error {
	t.Helper()
	var he *Error
	if !errors.As(err, &he) {
		t.Fatalf("error %v (%T) is not a *handoff.Error", err, err)
	}
	return he
}

func TestOpenRefused(t *testing.T) {
	errs, ok := metrics.BackendErrors.With("connect").Value(), handoffs.Value()
	_, err := dialer(testenv.ClosedPort(t), ProxyV2).Open(context.Background(), clientV4)
	he := asError(t, err)
	if he.Step != "connect" || he.Reply.Code != 0 || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("error = %#v (%v), want step connect wrapping ECONNREFUSED", he, err)
	}
	if d := metrics.BackendErrors.With("connect").Value() - errs; d != 1 || handoffs.Value() != ok {
		t.Errorf("backend connect errors moved by %d, hand-offs by %d; want 1, 0", d, handoffs.Value()-ok)
	}
}

func TestOpenReplyErrors(t *testing.T) {
	tests := []struct {
		name     string
		mode     Mode
		greeting string
		reply    func(verb, line string) string
		step     string
		code     int
	}{
		{"greeting 554", Plain, "554 5.3.2 go away", nil, "greeting", 554},
		{"greeting 421", ProxyV2, "421 4.3.2 busy", nil, "greeting", 421},
		{"EHLO refused", Plain, "", func(v, _ string) string {
			if v == "EHLO" {
				return "550 5.7.1 no\r\n"
			}
			return ""
		}, "EHLO", 550},
		{"EHLO before XCLIENT refused", XClient, "", func(v, l string) string {
			if l == "EHLO greypit.test" {
				return "421 4.3.0 not now\r\n"
			}
			return ""
		}, "EHLO before XCLIENT", 421},
		{"XCLIENT refused", XClient, "", func(v, _ string) string {
			if v == "XCLIENT" {
				return "550 5.7.0 Insufficient authorization\r\n"
			}
			return ""
		}, "XCLIENT", 550},
		// XCLIENT must be answered by a new greeting, not a 250.
		{"XCLIENT answered 250", XClient, "", func(v, _ string) string {
			if v == "XCLIENT" {
				return "250 2.0.0 Ok\r\n"
			}
			return ""
		}, "XCLIENT", 250},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := testenv.NewFakeMTA(t, tt.mode == ProxyV2, func(m *testenv.FakeMTA) {
				if tt.greeting != "" {
					m.Greeting = tt.greeting
				}
				m.Reply = tt.reply
			})
			bc, err := dialer(m.Addr, tt.mode).Open(context.Background(), clientV4)
			if err == nil {
				bc.Close()
				t.Fatal("Open succeeded")
			}
			he := asError(t, err)
			if he.Step != tt.step || he.Reply.Code != tt.code {
				t.Errorf("error step %q code %d (%v); want %q %d", he.Step, he.Reply.Code, err, tt.step, tt.code)
			}
			if !strings.Contains(err.Error(), "backend "+tt.step) {
				t.Errorf("message %q does not name the step", err)
			}
			// Open closed the connection: the backend sees a clean EOF
			// well before its own 10 s deadline.
			if mc := m.Next(t); mc.Err != nil {
				t.Errorf("backend: %v", mc.Err)
			}
		})
	}
}

func TestOpenGreetingEOF(t *testing.T) {
	m := testenv.NewFakeMTA(t, false)
	m.Drop.Store(1)
	_, err := dialer(m.Addr, Plain).Open(context.Background(), clientV4)
	he := asError(t, err)
	if he.Step != "greeting" || he.Reply.Code != 0 || he.Err == nil {
		t.Errorf("error = %#v, want step greeting with a transport error", he)
	}
}

// A backend that accepts but never answers costs ReplyTimeout, not more.
func TestOpenGreetingTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	held := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			held <- c
		}
	}()
	d := dialer(ln.Addr().String(), Plain)
	d.ReplyTimeout = 100 * time.Millisecond
	start := time.Now()
	_, err = d.Open(context.Background(), clientV4)
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("Open took %v", el)
	}
	he := asError(t, err)
	if he.Step != "greeting" || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("error = %v, want greeting step with deadline exceeded", err)
	}
	(<-held).Close()
}

func TestCmdTimeout(t *testing.T) {
	m := testenv.NewFakeMTA(t, false, func(m *testenv.FakeMTA) {
		m.Reply = func(v, _ string) string {
			if v == "MAIL" {
				return "-" // never answer
			}
			return ""
		}
	})
	bc, err := dialer(m.Addr, Plain).Open(context.Background(), clientV4)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer bc.Close()
	bc.timeout = 100 * time.Millisecond // as if Open had ReplyTimeout 100ms
	start := time.Now()
	_, _, err = bc.Cmd("MAIL FROM:<a@example.com>")
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("Cmd took %v", el)
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Cmd error = %v, want deadline exceeded", err)
	}
}

// backendScript runs fn as the backend of one connection and reports its
// error on the returned channel.
func backendScript(t *testing.T, fn func(c net.Conn, br *bufio.Reader) error) (addr string, done <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan error, 1)
	go func() {
		defer ln.Close()
		c, err := ln.Accept()
		if err != nil {
			ch <- err
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		ch <- fn(c, bufio.NewReader(c))
	}()
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String(), ch
}

func expectLine(br *bufio.Reader, want string) error {
	l, err := br.ReadString('\n')
	if err != nil {
		return err
	}
	if l != want+"\r\n" {
		return errors.New("backend got " + strings.TrimSpace(l) + ", want " + want)
	}
	return nil
}

func wait(t *testing.T, ch <-chan error, what string) {
	t.Helper()
	select {
	case err := <-ch:
		if err != nil {
			t.Errorf("%s: %v", what, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: timed out", what)
	}
}

// The core hand-off splice: bytes greypit buffered from the client go to
// the backend before anything the client sends later; bytes the backend
// sent beyond its last reply reach the client first; the client's
// half-close reaches the backend, whose final words still reach the client.
func TestConnSplice(t *testing.T) {
	const extra = "250 early bytes\r\n"
	gotUp := make(chan string, 1)
	addr, done := backendScript(t, func(c net.Conn, br *bufio.Reader) error {
		io.WriteString(c, "220 backend.test ESMTP\r\n")
		if err := expectLine(br, "EHLO client.example"); err != nil {
			return err
		}
		io.WriteString(c, "250 backend.test\r\n")
		if err := expectLine(br, "RCPT TO:<bob@example.com>"); err != nil {
			return err
		}
		// The reply and more in one write, so greypit's reader buffers both.
		io.WriteString(c, "250 2.1.5 Ok\r\n"+extra)
		// Everything up to the client's half-close.
		up, err := io.ReadAll(br)
		gotUp <- string(up)
		if err != nil {
			return err
		}
		_, err = io.WriteString(c, "221 final words\r\n")
		return err
	})
	bc, err := dialer(addr, Plain).Open(context.Background(), clientV4)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	r, raw, err := bc.Cmd("RCPT TO:<bob@example.com>")
	if err != nil || r.Code != 250 || string(raw) != "250 2.1.5 Ok\r\n" {
		t.Fatalf("Cmd(RCPT) = %+v %q %v", r, raw, err)
	}
	if n := bc.br.Buffered(); n != len(extra) {
		t.Fatalf("greypit buffered %d backend bytes, want %d (the test needs them buffered)", n, len(extra))
	}

	client, server := tcpPair(t)
	// The client's next bytes are already on the wire before the splice.
	if _, err := io.WriteString(client, "hello\r\n"); err != nil {
		t.Fatal(err)
	}
	if err := client.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	type res struct {
		st  Stats
		err error
	}
	sp := make(chan res, 1)
	go func() {
		st, err := bc.Splice(server, []byte("DATA\r\n"), time.Now().Add(10*time.Second))
		sp <- res{st, err}
	}()

	select {
	case up := <-gotUp:
		if up != "DATA\r\nhello\r\n" {
			t.Errorf("backend received %q after RCPT, want pending bytes first: %q", up, "DATA\r\nhello\r\n")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("backend never saw the client's half-close")
	}
	client.SetReadDeadline(time.Now().Add(10 * time.Second))
	down, err := io.ReadAll(client)
	if err != nil {
		t.Errorf("client read: %v", err)
	}
	if want := extra + "221 final words\r\n"; string(down) != want {
		t.Errorf("client received %q, want %q", down, want)
	}
	wait(t, done, "backend")
	r2 := <-sp
	if r2.err != nil {
		t.Errorf("Splice: %v", r2.err)
	}
	want := Stats{ToBackend: int64(len("DATA\r\nhello\r\n")), ToClient: int64(len(extra + "221 final words\r\n"))}
	if r2.st != want {
		t.Errorf("Stats = %+v, want %+v", r2.st, want)
	}
}

// The backend ends first (after 221): the client sees the bytes and EOF,
// and the splice ends when the client closes too.
func TestSpliceBackendClosesFirst(t *testing.T) {
	addr, done := backendScript(t, func(c net.Conn, br *bufio.Reader) error {
		io.WriteString(c, "220 backend.test ESMTP\r\n")
		if err := expectLine(br, "EHLO client.example"); err != nil {
			return err
		}
		io.WriteString(c, "250 backend.test\r\n")
		if err := expectLine(br, "QUIT"); err != nil {
			return err
		}
		_, err := io.WriteString(c, "221 2.0.0 Bye\r\n")
		return err
	})
	bc, err := dialer(addr, Plain).Open(context.Background(), clientV4)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	client, server := tcpPair(t)
	sp := make(chan error, 1)
	go func() {
		_, err := bc.Splice(server, nil, time.Now().Add(10*time.Second))
		sp <- err
	}()
	io.WriteString(client, "QUIT\r\n")
	client.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(client)
	if err != nil || string(got) != "221 2.0.0 Bye\r\n" {
		t.Errorf("client got %q, %v", got, err)
	}
	wait(t, done, "backend")
	client.Close()
	wait(t, sp, "Splice")
}

func TestSpliceDeadline(t *testing.T) {
	hold := make(chan struct{})
	addr, done := backendScript(t, func(c net.Conn, br *bufio.Reader) error {
		io.WriteString(c, "220 backend.test ESMTP\r\n")
		if err := expectLine(br, "EHLO client.example"); err != nil {
			return err
		}
		io.WriteString(c, "250 backend.test\r\n")
		// Silent until greypit gives up, which closes the connection.
		_, err := io.ReadAll(br)
		close(hold)
		return err
	})
	bc, err := dialer(addr, Plain).Open(context.Background(), clientV4)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	client, server := tcpPair(t)
	start := time.Now()
	_, err = bc.Splice(server, nil, time.Now().Add(100*time.Millisecond))
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("Splice took %v with a 100ms deadline", el)
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Splice error = %v, want deadline exceeded", err)
	}
	select {
	case <-hold:
	case <-time.After(10 * time.Second):
		t.Fatal("backend connection not closed after the deadline")
	}
	wait(t, done, "backend")
	client.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := client.Read(make([]byte, 1)); err == nil {
		t.Error("client connection still open after the deadline")
	}
}

// With no splice deadline the session must not inherit the per-reply
// write deadline of the setup: a pause longer than ReplyTimeout before
// the client's next command must not break the splice.
func TestSpliceZeroDeadlineOutlivesReplyTimeout(t *testing.T) {
	addr, done := backendScript(t, func(c net.Conn, br *bufio.Reader) error {
		io.WriteString(c, "220 backend.test ESMTP\r\n")
		if err := expectLine(br, "EHLO client.example"); err != nil {
			return err
		}
		io.WriteString(c, "250 backend.test\r\n")
		if err := expectLine(br, "RSET"); err != nil {
			return err
		}
		io.WriteString(c, "250 2.0.0 Ok\r\n")
		if err := expectLine(br, "NOOP"); err != nil {
			return err
		}
		_, err := io.WriteString(c, "250 2.0.0 Ok\r\n")
		return err
	})
	const replyTimeout = 50 * time.Millisecond
	bc, err := dialer(addr, Plain).Open(context.Background(), clientV4)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	// The last command before the splice leaves a per-reply deadline of
	// replyTimeout on the backend connection.
	bc.timeout = replyTimeout
	if r, _, err := bc.Cmd("RSET"); err != nil || r.Code != 250 {
		t.Fatalf("RSET = %+v, %v", r, err)
	}
	client, server := tcpPair(t)
	sp := make(chan error, 1)
	go func() {
		_, err := bc.Splice(server, nil, time.Time{})
		sp <- err
	}()
	// Not synchronisation: the condition under test is that time passes
	// beyond the setup's ReplyTimeout.
	<-time.After(4 * replyTimeout)
	io.WriteString(client, "NOOP\r\n")
	client.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(client)
	if err != nil || string(got) != "250 2.0.0 Ok\r\n" {
		t.Errorf("client got %q, %v; want the backend's reply", got, err)
	}
	wait(t, done, "backend")
	client.Close()
	wait(t, sp, "Splice")
}

// A white host in proxy-v2 mode: the backend learns the address first and
// its greeting is the client's greeting.
func TestDialerSpliceProxyV2(t *testing.T) {
	m := testenv.NewFakeMTA(t, true)
	client, server := tcpPair(t)
	cl := Client{Addr: netip.MustParseAddrPort("192.0.2.7:5555"), Local: netip.MustParseAddrPort("198.51.100.2:25")}
	sp := make(chan error, 1)
	go func() {
		_, err := dialer(m.Addr, ProxyV2).Splice(context.Background(), server, cl, time.Now().Add(10*time.Second))
		sp <- err
	}()
	br := bufio.NewReader(client)
	client.SetReadDeadline(time.Now().Add(10 * time.Second))
	r, _, err := smtp.ParseReply(br)
	if err != nil || r.Code != 220 || r.Lines[0] != "backend.test ESMTP fake" {
		t.Fatalf("greeting = %+v, %v", r, err)
	}
	io.WriteString(client, "QUIT\r\n")
	if r, _, err := smtp.ParseReply(br); err != nil || r.Code != 221 {
		t.Errorf("QUIT reply = %+v, %v", r, err)
	}
	client.Close()
	wait(t, sp, "Splice")
	mc := m.Next(t)
	if h := decodeProxyV2(t, mc.Proxy); h.src != cl.Addr || h.dst != cl.Local {
		t.Errorf("PROXY src, dst = %s, %s", h.src, h.dst)
	}
	if !slices.Equal(mc.Lines, []string{"QUIT"}) {
		t.Errorf("backend got %q", mc.Lines)
	}
}

// A white host in XCLIENT mode: greypit consumes the first greeting, sends
// XCLIENT, and the backend's fresh 220 becomes the client's greeting.
func TestDialerSpliceXClient(t *testing.T) {
	m := testenv.NewFakeMTA(t, false)
	client, server := tcpPair(t)
	cl := Client{Addr: netip.MustParseAddrPort("192.0.2.7:5555"), Local: netip.MustParseAddrPort("198.51.100.2:25")}
	sp := make(chan error, 1)
	go func() {
		_, err := dialer(m.Addr, XClient).Splice(context.Background(), server, cl, time.Now().Add(10*time.Second))
		sp <- err
	}()
	io.WriteString(client, "QUIT\r\n")
	client.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(client)
	if err != nil {
		t.Errorf("client read: %v", err)
	}
	if want := "220 backend.test ESMTP after xclient\r\n221 2.0.0 Bye\r\n"; string(got) != want {
		t.Errorf("client got %q, want %q", got, want)
	}
	client.Close()
	wait(t, sp, "Splice")
	mc := m.Next(t)
	want := []string{"EHLO greypit.test", "XCLIENT ADDR=192.0.2.7 PORT=5555", "QUIT"}
	if !slices.Equal(mc.Lines, want) {
		t.Errorf("backend got %q, want %q", mc.Lines, want)
	}
}

func TestDialerSpliceXClientRefused(t *testing.T) {
	m := testenv.NewFakeMTA(t, false, func(m *testenv.FakeMTA) {
		m.Reply = func(v, _ string) string {
			if v == "XCLIENT" {
				return "550 5.7.0 Insufficient authorization\r\n"
			}
			return ""
		}
	})
	_, server := tcpPair(t)
	_, err := dialer(m.Addr, XClient).Splice(context.Background(), server, clientV4, time.Now().Add(10*time.Second))
	if he := asError(t, err); he.Step != "XCLIENT" || he.Reply.Code != 550 {
		t.Errorf("error = %v", err)
	}
}

func TestDialerSpliceRefused(t *testing.T) {
	_, server := tcpPair(t)
	_, err := dialer(testenv.ClosedPort(t), ProxyV2).Splice(context.Background(), server, clientV4, time.Now().Add(10*time.Second))
	if he := asError(t, err); he.Step != "connect" {
		t.Errorf("error = %v, want step connect", err)
	}
}

func TestErrorMessages(t *testing.T) {
	e := &Error{Step: "RCPT", Reply: smtp.Reply{Code: 550, Lines: []string{"no such user", "really"}}, Err: errors.New("unexpected reply")}
	if got := e.Error(); got != "backend RCPT: 550 no such user / really" {
		t.Errorf("Error() = %q", got)
	}
	inner := errors.New("boom")
	e = &Error{Step: "connect", Err: inner}
	if got := e.Error(); got != "backend connect: boom" || !errors.Is(e, inner) {
		t.Errorf("Error() = %q, Is(inner) = %v", got, errors.Is(e, inner))
	}
}
