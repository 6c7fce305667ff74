package handoff

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
)

// proxyV2 is a PROXY v2 header decoded per haproxy's proxy-protocol.txt
// §2.2, independently of ProxyV2Header.
type proxyV2 struct {
	version, command byte // high and low nibble of byte 13
	family, proto    byte // high and low nibble of byte 14
	length           int  // bytes 15-16, big-endian
	src, dst         netip.AddrPort
}

func decodeProxyV2(t *testing.T, b []byte) proxyV2 {
	t.Helper()
	if len(b) < 16 {
		t.Fatalf("header is %d bytes, want at least 16", len(b))
	}
	sig := []byte{0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A}
	if !bytes.Equal(b[:12], sig) {
		t.Fatalf("signature = % x, want % x", b[:12], sig)
	}
	h := proxyV2{
		version: b[12] >> 4, command: b[12] & 0x0F,
		family: b[13] >> 4, proto: b[13] & 0x0F,
		length: int(binary.BigEndian.Uint16(b[14:16])),
	}
	body := b[16:]
	if len(body) != h.length {
		t.Fatalf("address block is %d bytes, length field says %d", len(body), h.length)
	}
	switch h.family {
	case 1: // AF_INET: src_addr[4] dst_addr[4] src_port[2] dst_port[2]
		if h.length != 12 {
			t.Fatalf("AF_INET length %d, want 12", h.length)
		}
		s, d := netip.AddrFrom4([4]byte(body[0:4])), netip.AddrFrom4([4]byte(body[4:8]))
		h.src = netip.AddrPortFrom(s, binary.BigEndian.Uint16(body[8:10]))
		h.dst = netip.AddrPortFrom(d, binary.BigEndian.Uint16(body[10:12]))
	case 2: // AF_INET6: src_addr[16] dst_addr[16] src_port[2] dst_port[2]
		if h.length != 36 {
			t.Fatalf("AF_INET6 length %d, want 36", h.length)
		}
		s, d := netip.AddrFrom16([16]byte(body[0:16])), netip.AddrFrom16([16]byte(body[16:32]))
		h.src = netip.AddrPortFrom(s, binary.BigEndian.Uint16(body[32:34]))
		h.dst = netip.AddrPortFrom(d, binary.BigEndian.Uint16(body[34:36]))
	default:
		t.Fatalf("family nibble %d, want 1 (INET) or 2 (INET6)", h.family)
	}
	return h
}

func TestProxyV2Header(t *testing.T) {
	tests := []struct {
		name       string
		src, dst   string
		wantLen    int
		wantFamily byte
		wantSrc    string
		wantDst    string
	}{
		{"ipv4", "192.0.2.1:40000", "198.51.100.2:25", 28, 1, "192.0.2.1:40000", "198.51.100.2:25"},
		{"ipv6", "[2001:db8::1]:65535", "[2001:db8:ffff::25]:2525", 52, 2, "[2001:db8::1]:65535", "[2001:db8:ffff::25]:2525"},
		// IPv4-mapped on both sides is plain IPv4.
		{"both mapped", "[::ffff:192.0.2.1]:1", "[::ffff:198.51.100.2]:25", 28, 1, "192.0.2.1:1", "198.51.100.2:25"},
		// Mixed families go as IPv6 with the IPv4 side mapped.
		{"v4 to v6", "192.0.2.1:40000", "[2001:db8::25]:25", 52, 2, "[::ffff:192.0.2.1]:40000", "[2001:db8::25]:25"},
		{"v6 to v4", "[2001:db8::1]:40000", "198.51.100.2:25", 52, 2, "[2001:db8::1]:40000", "[::ffff:198.51.100.2]:25"},
		{"port zero", "[::1]:0", "[::1]:0", 52, 2, "[::1]:0", "[::1]:0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := ProxyV2Header(netip.MustParseAddrPort(tt.src), netip.MustParseAddrPort(tt.dst))
			if len(b) != tt.wantLen {
				t.Errorf("len = %d, want %d", len(b), tt.wantLen)
			}
			h := decodeProxyV2(t, b)
			if h.version != 2 || h.command != 1 {
				t.Errorf("version/command = %d/%d, want 2/1 (PROXY)", h.version, h.command)
			}
			if h.family != tt.wantFamily || h.proto != 1 {
				t.Errorf("family/transport = %d/%d, want %d/1 (STREAM)", h.family, h.proto, tt.wantFamily)
			}
			if h.src.String() != tt.wantSrc || h.dst.String() != tt.wantDst {
				t.Errorf("src, dst = %s, %s; want %s, %s", h.src, h.dst, tt.wantSrc, tt.wantDst)
			}
		})
	}
}

// The exact bytes of one IPv4 header, written out by hand from the spec.
func TestProxyV2HeaderIPv4Bytes(t *testing.T) {
	got := ProxyV2Header(netip.MustParseAddrPort("192.0.2.1:258"), netip.MustParseAddrPort("10.0.0.2:25"))
	want := []byte{
		0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, // signature
		0x21,       // v2, PROXY
		0x11,       // AF_INET, STREAM
		0x00, 0x0C, // 12 address bytes
		192, 0, 2, 1, // src
		10, 0, 0, 2, // dst
		0x01, 0x02, // src port 258
		0x00, 0x19, // dst port 25
	}
	if !bytes.Equal(got, want) {
		t.Errorf("header\n got % x\nwant % x", got, want)
	}
}
