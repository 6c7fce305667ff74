package proxyproto_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"

	"github.com/greypit/greypit/internal/handoff"
	"github.com/greypit/greypit/internal/proxyproto"
)

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func TestParse(t *testing.T) {
	v2 := func(src, dst string) []byte { return handoff.ProxyV2Header(ap(src), ap(dst)) }
	withTLV := func(b []byte, tlv ...byte) []byte {
		b = append(bytes.Clone(b), tlv...)
		n := int(b[14])<<8 | int(b[15]) + len(tlv)
		b[14], b[15] = byte(n>>8), byte(n)
		return b
	}
	local := append(bytes.Clone(proxyproto.V2Sig), 0x20, 0x00, 0, 0)
	for _, tc := range []struct {
		name     string
		in       []byte
		src, dst string // "" with local
		local    bool
		err      string
	}{
		{name: "v1 tcp4", in: []byte("PROXY TCP4 192.0.2.7 198.51.100.1 40000 25\r\nEHLO"), src: "192.0.2.7:40000", dst: "198.51.100.1:25"},
		{name: "v1 tcp6", in: []byte("PROXY TCP6 2001:db8::7 2001:db8::1 1 65535\r\n"), src: "[2001:db8::7]:1", dst: "[2001:db8::1]:65535"},
		{name: "v1 mapped v4 via v6", in: []byte("PROXY TCP6 ::ffff:192.0.2.7 2001:db8::1 5 25\r\n"), src: "192.0.2.7:5", dst: "[2001:db8::1]:25"},
		{name: "v1 unknown", in: []byte("PROXY UNKNOWN\r\n"), local: true},
		{name: "v1 unknown with junk", in: []byte("PROXY UNKNOWN ffff::1 x y z\r\n"), local: true},
		{name: "v1 v6 address in tcp4", in: []byte("PROXY TCP4 2001:db8::7 192.0.2.1 1 2\r\n"), err: "bad TCP4 address"},
		{name: "v1 bare LF", in: []byte("PROXY TCP4 192.0.2.7 192.0.2.1 1 2\n"), err: "CRLF"},
		{name: "v1 leading zero port", in: []byte("PROXY TCP4 192.0.2.7 192.0.2.1 01 2\r\n"), err: "bad port"},
		{name: "v1 port too big", in: []byte("PROXY TCP4 192.0.2.7 192.0.2.1 65536 2\r\n"), err: "bad port"},
		{name: "v1 double space", in: []byte("PROXY TCP4  192.0.2.7 192.0.2.1 1 2\r\n"), err: "want TCP4"},
		{name: "v1 zone", in: []byte("PROXY TCP6 fe80::1%eth0 fe80::2 1 2\r\n"), err: "bad TCP6 address"},
		{name: "v1 udp", in: []byte("PROXY UDP4 192.0.2.7 192.0.2.1 1 2\r\n"), err: "unknown protocol"},
		{name: "v1 too long", in: []byte("PROXY TCP4 " + strings.Repeat("1", 200) + "\r\n"), err: "no line end"},
		{name: "v1 incomplete", in: []byte("PROXY TCP4 192.0.2.7"), err: "incomplete"},
		{name: "smtp instead", in: []byte("EHLO example.org\r\n"), err: "no PROXY header"},
		{name: "v2 tcp4", in: v2("192.0.2.7:40000", "198.51.100.1:25"), src: "192.0.2.7:40000", dst: "198.51.100.1:25"},
		{name: "v2 tcp6", in: v2("[2001:db8::7]:1", "[2001:db8::1]:25"), src: "[2001:db8::7]:1", dst: "[2001:db8::1]:25"},
		{name: "v2 v4 client via v6 balancer", in: v2("192.0.2.7:9", "[2001:db8::1]:25"), src: "192.0.2.7:9", dst: "[2001:db8::1]:25"},
		{name: "v2 with TLVs", in: withTLV(v2("192.0.2.7:9", "192.0.2.1:25"), 0x04, 0, 0, 0xEA, 0, 3, 'v', 'p', 'c'), src: "192.0.2.7:9", dst: "192.0.2.1:25"},
		{name: "v2 truncated TLV", in: withTLV(v2("192.0.2.7:9", "192.0.2.1:25"), 0xEA, 0, 9, 'v'), err: "TLV longer"},
		{name: "v2 TLV stub", in: withTLV(v2("192.0.2.7:9", "192.0.2.1:25"), 0xEA, 0), err: "truncated TLV"},
		{name: "v2 local", in: local, local: true},
		{name: "v2 version 1", in: append(bytes.Clone(proxyproto.V2Sig), 0x11, 0x11, 0, 0), err: "version"},
		{name: "v2 unknown command", in: append(bytes.Clone(proxyproto.V2Sig), 0x22, 0x11, 0, 0), err: "unknown command"},
		{name: "v2 udp", in: append(bytes.Clone(proxyproto.V2Sig), 0x21, 0x12, 0, 12, 1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2), err: "unsupported"},
		{name: "v2 short address", in: append(bytes.Clone(proxyproto.V2Sig), 0x21, 0x11, 0, 4, 1, 2, 3, 4), err: "address block"},
		{name: "v2 huge", in: append(bytes.Clone(proxyproto.V2Sig), 0x21, 0x11, 0xff, 0xff), err: "longer than"},
		{name: "v2 bad signature", in: []byte("\r\n\r\n\x00\r\nQUIX\n\x21\x11\x00\x00"), err: "no PROXY header"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, n, err := proxyproto.Parse(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Parse = %+v, %v; want error containing %q", h, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if h.Local != tc.local {
				t.Errorf("Local = %v, want %v", h.Local, tc.local)
			}
			if !tc.local && (h.Src != ap(tc.src) || h.Dst != ap(tc.dst)) {
				t.Errorf("src, dst = %v, %v; want %s, %s", h.Src, h.Dst, tc.src, tc.dst)
			}
			// Read consumes exactly the header, leaving the rest.
			r := bytes.NewReader(tc.in)
			rh, err := proxyproto.Read(r)
			if err != nil || rh != h {
				t.Fatalf("Read = %+v, %v; want %+v", rh, err, h)
			}
			if rest, _ := io.ReadAll(r); !bytes.Equal(rest, tc.in[n:]) {
				t.Errorf("Read left %q, want %q", rest, tc.in[n:])
			}
		})
	}
}

func TestReadShort(t *testing.T) {
	for _, in := range []string{"", "PROXY", "PROXY TCP4 192.0.2.7 192.0.2.1 1 2", string(proxyproto.V2Sig) + "\x21\x11\x00\x0c\x01"} {
		if _, err := proxyproto.Read(strings.NewReader(in)); !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
			t.Errorf("Read(%q) = %v, want EOF", in, err)
		}
	}
}

// Wrap keeps a *net.TCPConn's extra methods (splice(2), the tarpit's
// descriptor hand-over, half-close) while reporting the header's addresses.
func TestWrapKeepsTCPMethods(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err == nil {
			defer c.Close()
			io.Copy(io.Discard, c)
		}
	}()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	w := proxyproto.Wrap(c, proxyproto.Header{Src: ap("192.0.2.7:4000"), Dst: ap("[2001:db8::1]:25")})
	if got := w.RemoteAddr().String(); got != "192.0.2.7:4000" {
		t.Errorf("RemoteAddr = %s", got)
	}
	if got := w.LocalAddr().String(); got != "[2001:db8::1]:25" {
		t.Errorf("LocalAddr = %s", got)
	}
	for name, ok := range map[string]bool{
		"CloseWrite":   func() bool { _, ok := w.(interface{ CloseWrite() error }); return ok }(),
		"syscall.Conn": func() bool { _, ok := w.(syscall.Conn); return ok }(),
		"ReadFrom":     func() bool { _, ok := w.(io.ReaderFrom); return ok }(),
		"WriteTo":      func() bool { _, ok := w.(io.WriterTo); return ok }(),
	} {
		if !ok {
			t.Errorf("wrapped conn lacks %s", name)
		}
	}
}
