// Package proxyproto reads the PROXY protocol header (HAProxy's
// proxy-protocol.txt, versions 1 and 2) that a load balancer puts in
// front of each connection, so greypit judges the true client rather than
// the balancer.
//
// It reads exactly the header's bytes and no more: what follows belongs to
// the SMTP session (an early talker's bytes must still be seen by the
// pregreet test) or to the white-path splice, which must forward only the
// client's own bytes. The wrapped connection keeps the *net.TCPConn
// methods that splice(2) and the tarpit's descriptor hand-over need.
package proxyproto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Header is a parsed PROXY header.
type Header struct {
	Version int
	// Local is a v2 LOCAL command or a v1 UNKNOWN (or v2 PROXY with an
	// unspecified or non-TCP family): the balancer speaks for itself, e.g.
	// a health check. Src and Dst are then unset.
	Local    bool
	Src, Dst netip.AddrPort // IPv4-mapped addresses unmapped
}

// V2Sig is the 12-byte signature of a v2 header (proxy-protocol.txt §2.2).
var V2Sig = []byte("\r\n\r\n\x00\r\nQUIT\n")

const (
	v1Max = 107 // longest v1 line including CRLF (§2.1)
	// v2Max bounds a v2 header with its TLVs. The format allows 64 KiB;
	// balancers send well under 1 KiB (AWS adds a VPC endpoint TLV).
	v2Max = 16 + 2048
)

// ErrIncomplete means b ends before the header does.
var ErrIncomplete = errors.New("proxy header incomplete")

// Parse parses the header at the start of b and returns it with its
// length in bytes.
func Parse(b []byte) (Header, int, error) {
	switch {
	case len(b) >= 1 && b[0] == 'P':
		return parseV1(b)
	case len(b) >= 1 && b[0] == '\r':
		return parseV2(b)
	case len(b) == 0:
		return Header{}, 0, ErrIncomplete
	}
	return Header{}, 0, errors.New("no PROXY header")
}

func parseV1(b []byte) (Header, int, error) {
	const pfx = "PROXY "
	if n := min(len(b), len(pfx)); string(b[:n]) != pfx[:n] {
		return Header{}, 0, errors.New("no PROXY header")
	}
	i := bytes.IndexByte(b[:min(len(b), v1Max)], '\n')
	if i < 0 {
		if len(b) >= v1Max {
			return Header{}, 0, fmt.Errorf("proxy v1: no line end within %d bytes", v1Max)
		}
		return Header{}, 0, ErrIncomplete
	}
	if i == 0 || b[i-1] != '\r' {
		return Header{}, 0, errors.New("proxy v1: line does not end in CRLF")
	}
	line := string(b[len(pfx) : i-1])
	h := Header{Version: 1}
	f := strings.Split(line, " ")
	switch f[0] {
	case "UNKNOWN":
		// §2.1: the rest of the line is to be ignored.
		h.Local = true
		return h, i + 1, nil
	case "TCP4", "TCP6":
	default:
		return Header{}, 0, fmt.Errorf("proxy v1: unknown protocol %q", f[0])
	}
	if len(f) != 5 {
		return Header{}, 0, errors.New("proxy v1: want TCP4|TCP6 src dst sport dport")
	}
	var ap [2]netip.AddrPort
	for k := range 2 {
		a, err := netip.ParseAddr(f[1+k])
		if err != nil || a.Zone() != "" || a.Is4() != (f[0] == "TCP4") {
			return Header{}, 0, fmt.Errorf("proxy v1: bad %s address %q", f[0], f[1+k])
		}
		p, err := parsePort(f[3+k])
		if err != nil {
			return Header{}, 0, err
		}
		ap[k] = netip.AddrPortFrom(a.Unmap(), p)
	}
	h.Src, h.Dst = ap[0], ap[1]
	return h, i + 1, nil
}

// parsePort takes a decimal port without sign or leading zeros (§2.1).
func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || s[0] == '+' || (len(s) > 1 && s[0] == '0') {
		return 0, fmt.Errorf("proxy v1: bad port %q", s)
	}
	return uint16(n), nil
}

func parseV2(b []byte) (Header, int, error) {
	if n := min(len(b), len(V2Sig)); !bytes.Equal(b[:n], V2Sig[:n]) {
		return Header{}, 0, errors.New("no PROXY header")
	}
	if len(b) < 16 {
		return Header{}, 0, ErrIncomplete
	}
	if b[12]>>4 != 2 {
		return Header{}, 0, fmt.Errorf("proxy v2: version %d", b[12]>>4)
	}
	total := 16 + int(binary.BigEndian.Uint16(b[14:16]))
	if total > v2Max {
		return Header{}, 0, fmt.Errorf("proxy v2: header of %d bytes is longer than %d", total, v2Max)
	}
	if len(b) < total {
		return Header{}, 0, ErrIncomplete
	}
	body := b[16:total]
	h := Header{Version: 2}
	switch b[12] & 0xf {
	case 0: // LOCAL (§2.2): the connection is the balancer's own.
		h.Local = true
		return h, total, nil
	case 1: // PROXY
	default:
		return Header{}, 0, fmt.Errorf("proxy v2: unknown command %#x", b[12]&0xf)
	}
	var alen int
	switch b[13] {
	case 0x11: // TCP over IPv4
		alen = 12
	case 0x21: // TCP over IPv6
		alen = 36
	case 0x00: // UNSPEC: the receiver is to use the real endpoints
		h.Local = true
		return h, total, nil
	default:
		// UDP or unix sockets have no place in front of an SMTP listener.
		return Header{}, 0, fmt.Errorf("proxy v2: unsupported family/transport %#x", b[13])
	}
	if len(body) < alen {
		return Header{}, 0, fmt.Errorf("proxy v2: address block of %d bytes, want %d", len(body), alen)
	}
	var src, dst netip.Addr
	if alen == 12 {
		src = netip.AddrFrom4([4]byte(body[0:4]))
		dst = netip.AddrFrom4([4]byte(body[4:8]))
	} else {
		src = netip.AddrFrom16([16]byte(body[0:16])).Unmap()
		dst = netip.AddrFrom16([16]byte(body[16:32])).Unmap()
	}
	ports := body[alen-4 : alen]
	h.Src = netip.AddrPortFrom(src, binary.BigEndian.Uint16(ports[0:2]))
	h.Dst = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(ports[2:4]))
	// TLVs (§2.2.7) are not used, but they must fill the rest exactly.
	for t := body[alen:]; len(t) > 0; {
		if len(t) < 3 {
			return Header{}, 0, errors.New("proxy v2: truncated TLV")
		}
		n := 3 + int(binary.BigEndian.Uint16(t[1:3]))
		if n > len(t) {
			return Header{}, 0, errors.New("proxy v2: TLV longer than the header")
		}
		t = t[n:]
	}
	return h, total, nil
}

// Read reads one header from r, never past its end, with as few reads as
// the format allows: 16 bytes, then the rest of a v2 header; a v1 line byte
// by byte (at most 107). The caller bounds it with a deadline.
func Read(r io.Reader) (Header, error) {
	buf := make([]byte, 16, v1Max)
	// The shortest v1 header, "PROXY UNKNOWN\r\n", is 15 bytes.
	if _, err := io.ReadFull(r, buf[:15]); err != nil {
		return Header{}, fmt.Errorf("reading proxy header: %w", err)
	}
	buf = buf[:15]
	for {
		h, _, err := Parse(buf)
		if !errors.Is(err, ErrIncomplete) {
			return h, err
		}
		want := 1
		if buf[0] == '\r' && len(buf) >= 16 {
			want = 16 + int(binary.BigEndian.Uint16(buf[14:16])) - len(buf)
		}
		n := len(buf)
		buf = append(buf, make([]byte, want)...)
		if _, err := io.ReadFull(r, buf[n:]); err != nil {
			return Header{}, fmt.Errorf("reading proxy header: %w", err)
		}
	}
}

// Wrap returns c reporting h's source and destination as its remote and
// local addresses. A *net.TCPConn stays one underneath, with CloseWrite,
// the descriptor (syscall.Conn) and splice(2) through ReadFrom/WriteTo.
func Wrap(c net.Conn, h Header) net.Conn {
	ra, la := net.TCPAddrFromAddrPort(h.Src), net.TCPAddrFromAddrPort(h.Dst)
	if tc, ok := c.(*net.TCPConn); ok {
		return &tcpConn{TCPConn: tc, remote: ra, local: la}
	}
	return &conn{Conn: c, remote: ra, local: la}
}

type tcpConn struct {
	*net.TCPConn
	remote, local net.Addr
}

func (c *tcpConn) RemoteAddr() net.Addr { return c.remote }
func (c *tcpConn) LocalAddr() net.Addr  { return c.local }

type conn struct {
	net.Conn
	remote, local net.Addr
}

func (c *conn) RemoteAddr() net.Addr { return c.remote }
func (c *conn) LocalAddr() net.Addr  { return c.local }
