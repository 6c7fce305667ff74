package handoff

import (
	"encoding/binary"
	"net/netip"

	"github.com/greypit/greypit/internal/proxyproto"
)

// ProxyV2Header encodes a PROXY v2 header for a TCP connection from src to
// dst. Version 2, command PROXY (0x21); family and transport TCP over IPv4
// (0x11) or IPv6 (0x21). Mixed families are sent as IPv6 with the IPv4
// address mapped, which Postfix accepts.
func ProxyV2Header(src, dst netip.AddrPort) []byte {
	sa, da := src.Addr().Unmap(), dst.Addr().Unmap()
	b := make([]byte, 0, 16+36)
	b = append(b, proxyproto.V2Sig...)
	b = append(b, 0x21)
	if sa.Is4() && da.Is4() {
		b = append(b, 0x11)
		b = binary.BigEndian.AppendUint16(b, 12)
		s4, d4 := sa.As4(), da.As4()
		b = append(b, s4[:]...)
		b = append(b, d4[:]...)
	} else {
		b = append(b, 0x21)
		b = binary.BigEndian.AppendUint16(b, 36)
		s16, d16 := sa.As16(), da.As16()
		b = append(b, s16[:]...)
		b = append(b, d16[:]...)
	}
	b = binary.BigEndian.AppendUint16(b, src.Port())
	b = binary.BigEndian.AppendUint16(b, dst.Port())
	return b
}
