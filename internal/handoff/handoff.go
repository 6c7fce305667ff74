// Package handoff connects clients to the backend MTA.
//
// White hosts are spliced from their first byte; grey hosts whose retry
// passed are handed over mid-session: greypit opens a backend session that
// carries the client's true address (PROXY v2 header or Postfix XCLIENT),
// replays the greeting and envelope, relays the backend's answer and then
// splices both directions. Owning this in one package keeps the one rule
// that matters in one place: the client only ever sees a success reply that
// came from the backend itself.
package handoff

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/greypit/greypit/internal/smtp"
)

// Mode is how the backend learns the client's address.
type Mode string

// The handoff modes (config key backend.handoff).
const (
	ProxyV2 Mode = "proxy-v2" // PROXY protocol v2 header before the first byte
	XClient Mode = "xclient"  // Postfix XCLIENT command after the backend's EHLO
	Plain   Mode = "plain"    // nothing: the backend sees greypit's address
)

// Dialer opens backend sessions.
type Dialer struct {
	Address        string
	Mode           Mode
	ConnectTimeout time.Duration
	ReplyTimeout   time.Duration // per backend reply during setup and replay
	Hostname       string        // greypit's own name, for its EHLO before XCLIENT
}

// Client is what the backend must learn about the real client.
type Client struct {
	Addr  netip.AddrPort // the client's address
	Local netip.AddrPort // the address the client connected to
	Helo  string         // HELO/EHLO argument ("" before the client greeted)
	ESMTP bool           // the client greeted with EHLO
}

// Error is a backend failure. Reply, when its Code is non-zero, is what
// the backend answered; otherwise the backend could not be reached or did
// not answer.
type Error struct {
	Step  string
	Reply smtp.Reply
	Err   error
}

func (e *Error) Error() string {
	if e.Reply.Code != 0 {
		return fmt.Sprintf("backend %s: %d %s", e.Step, e.Reply.Code, strings.Join(e.Reply.Lines, " / "))
	}
	return fmt.Sprintf("backend %s: %v", e.Step, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Conn is a backend session under greypit's control, before the splice.
type Conn struct {
	c       *net.TCPConn
	br      *bufio.Reader
	timeout time.Duration
	// Ext holds the backend's EHLO keywords (upper-case) and parameters.
	Ext map[string]string
}

func (d *Dialer) dial(ctx context.Context, cl Client) (*net.TCPConn, error) {
	nd := net.Dialer{Timeout: d.ConnectTimeout}
	c, err := nd.DialContext(ctx, "tcp", d.Address)
	if err != nil {
		return nil, &Error{Step: "connect", Err: err}
	}
	tc := c.(*net.TCPConn)
	if d.Mode == ProxyV2 {
		tc.SetWriteDeadline(time.Now().Add(d.ReplyTimeout))
		if _, err := tc.Write(ProxyV2Header(cl.Addr, cl.Local)); err != nil {
			tc.Close()
			return nil, &Error{Step: "proxy header", Err: err}
		}
	}
	return tc, nil
}

// Open starts a backend session for a client that greeted greypit: it
// connects, identifies the client, reads the greeting and repeats the
// client's HELO/EHLO. Any failure closes the connection.
func (d *Dialer) Open(ctx context.Context, cl Client) (_ *Conn, err error) {
	defer func() { count(handoffs, err) }()
	tc, err := d.dial(ctx, cl)
	if err != nil {
		return nil, err
	}
	bc := &Conn{c: tc, br: bufio.NewReader(tc), timeout: d.ReplyTimeout}
	if err := bc.setup(d, cl); err != nil {
		bc.Close()
		return nil, err
	}
	return bc, nil
}

func (bc *Conn) setup(d *Dialer, cl Client) error {
	if r, _, err := bc.read(); err != nil || r.Code != 220 {
		return stepErr("greeting", r, err)
	}
	if d.Mode == XClient {
		if r, _, err := bc.xclient(d, cl); err != nil || r.Code != 220 {
			return stepErr("XCLIENT", r, err)
		}
	}
	verb := "HELO"
	if cl.ESMTP {
		verb = "EHLO"
	}
	r, _, err := bc.Cmd(verb + " " + cl.Helo)
	if err != nil || r.Code != 250 {
		return stepErr(verb, r, err)
	}
	bc.Ext = parseEHLO(r)
	return nil
}

// xclient sends greypit's EHLO and the XCLIENT command. On success the
// backend answers with a fresh 220 greeting (Postfix XCLIENT_README).
func (bc *Conn) xclient(d *Dialer, cl Client) (smtp.Reply, []byte, error) {
	if r, _, err := bc.Cmd("EHLO " + d.Hostname); err != nil || r.Code != 250 {
		return r, nil, stepErr("EHLO before XCLIENT", r, err)
	}
	return bc.Cmd(XClientCommand(cl))
}

// XClientCommand renders the XCLIENT command for cl. IPv6 addresses take
// the "IPV6:" prefix; the client's host name is left for the backend to
// look up.
func XClientCommand(cl Client) string {
	a := cl.Addr.Addr().Unmap()
	addr := a.String()
	if a.Is6() {
		addr = "IPV6:" + addr
	}
	var b strings.Builder
	fmt.Fprintf(&b, "XCLIENT ADDR=%s PORT=%d", addr, cl.Addr.Port())
	if cl.Helo != "" {
		fmt.Fprintf(&b, " HELO=%s", xtext(cl.Helo))
		proto := "SMTP"
		if cl.ESMTP {
			proto = "ESMTP"
		}
		b.WriteString(" PROTO=" + proto)
	}
	return b.String()
}

// xtext encodes a value per RFC 3461 §4 as XCLIENT requires.
func xtext(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '!' || c > '~' || c == '+' || c == '=' {
			fmt.Fprintf(&b, "+%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func stepErr(step string, r smtp.Reply, err error) error {
	var he *Error
	if errors.As(err, &he) {
		return he
	}
	if err != nil {
		return &Error{Step: step, Err: err}
	}
	return &Error{Step: step, Reply: r, Err: errors.New("unexpected reply")}
}

func parseEHLO(r smtp.Reply) map[string]string {
	ext := map[string]string{}
	for i, l := range r.Lines {
		if i == 0 {
			continue // the greeting line names the host
		}
		k, v, _ := strings.Cut(strings.TrimSpace(l), " ")
		ext[strings.ToUpper(k)] = v
	}
	return ext
}

// Cmd sends one command line and reads the reply; raw holds the reply
// bytes as the backend sent them, for relaying to the client verbatim.
func (bc *Conn) Cmd(line string) (r smtp.Reply, raw []byte, err error) {
	bc.c.SetWriteDeadline(time.Now().Add(bc.timeout))
	if _, err := io.WriteString(bc.c, line+"\r\n"); err != nil {
		return smtp.Reply{}, nil, err
	}
	return bc.read()
}

func (bc *Conn) read() (smtp.Reply, []byte, error) {
	bc.c.SetReadDeadline(time.Now().Add(bc.timeout))
	r, raw, err := smtp.ParseReply(bc.br)
	bc.c.SetReadDeadline(time.Time{})
	return r, raw, err
}

// Close sends nothing and closes the connection.
func (bc *Conn) Close() error { return bc.c.Close() }

// Quit ends the backend session politely and closes it.
func (bc *Conn) Quit() {
	bc.Cmd("QUIT")
	bc.c.Close()
}

// Stats counts the bytes a splice moved.
type Stats struct {
	ToBackend, ToClient int64
}

// Splice hands the client to the backend for the rest of the session.
// pending is what greypit already read from the client but did not act on
// (pipelined commands, message text); it goes to the backend first so
// nothing is lost or reordered. The splice ends when both sides have
// finished or deadline passes; both connections are closed on return.
func (bc *Conn) Splice(client net.Conn, pending []byte, deadline time.Time) (Stats, error) {
	// Anything the backend sent beyond its last reply belongs to the client.
	var early int64
	if n := bc.br.Buffered(); n > 0 {
		b, _ := bc.br.Peek(n)
		if _, err := client.Write(b); err != nil {
			bc.c.Close()
			client.Close()
			return Stats{}, err
		}
		early = int64(n)
	}
	st, err := splice(client, bc.c, pending, deadline)
	st.ToClient += early
	return st, err
}

// Splice connects a white client to the backend from its first byte.
func (d *Dialer) Splice(ctx context.Context, client net.Conn, cl Client, deadline time.Time) (_ Stats, err error) {
	defer func() { count(splices, err) }()
	tc, err := d.dial(ctx, cl)
	if err != nil {
		return Stats{}, err
	}
	if d.Mode == XClient {
		// The backend's answer to XCLIENT is a new 220 greeting: it becomes
		// the client's greeting.
		bc := &Conn{c: tc, br: bufio.NewReader(tc), timeout: d.ReplyTimeout}
		if r, _, err := bc.read(); err != nil || r.Code != 220 {
			tc.Close()
			return Stats{}, stepErr("greeting", r, err)
		}
		r, raw, err := bc.xclient(d, cl)
		if err != nil || r.Code != 220 {
			tc.Close()
			return Stats{}, stepErr("XCLIENT", r, err)
		}
		client.SetWriteDeadline(time.Now().Add(d.ReplyTimeout))
		if _, err := client.Write(raw); err != nil {
			tc.Close()
			return Stats{}, err
		}
		return bc.Splice(client, nil, deadline)
	}
	return splice(client, tc, nil, deadline)
}

// splice copies both directions until both are done. Between two plain
// TCP connections io.Copy uses splice(2), so the payload never enters user
// space. A side that ends its sending half gets its peer's write half
// closed, so SMTP's QUIT/221/close sequence runs as if directly connected.
func splice(client net.Conn, backend *net.TCPConn, pending []byte, deadline time.Time) (Stats, error) {
	var st Stats
	// Always set, so a zero deadline also clears the per-reply deadlines
	// left from the setup.
	client.SetDeadline(deadline)
	backend.SetDeadline(deadline)
	if len(pending) > 0 {
		n, err := backend.Write(pending)
		st.ToBackend += int64(n)
		if err != nil {
			client.Close()
			backend.Close()
			return st, fmt.Errorf("splice: pending bytes: %w", err)
		}
	}
	var wg sync.WaitGroup
	var errUp, errDown error
	var up, down int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		up, errUp = io.Copy(backend, client)
		backend.CloseWrite()
		if errUp != nil {
			backend.Close()
			client.Close()
		}
	}()
	down, errDown = io.Copy(client, backend)
	closeWrite(client)
	if errDown != nil {
		client.Close()
		backend.Close()
	}
	wg.Wait()
	client.Close()
	backend.Close()
	st.ToBackend += up
	st.ToClient += down
	return st, errors.Join(ignoreClosed(errUp), ignoreClosed(errDown))
}

func closeWrite(c net.Conn) {
	type closeWriter interface{ CloseWrite() error }
	if cw, ok := c.(closeWriter); ok {
		cw.CloseWrite()
	}
}

func ignoreClosed(err error) error {
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
