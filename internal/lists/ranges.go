package lists

import (
	"math/bits"
	"net/netip"
)

// RangePrefixes returns the fewest CIDR prefixes that cover exactly the
// inclusive range from..to, or nil if the addresses are of different
// families, zoned, or from > to. IPv4-mapped addresses are unmapped.
//
// spamd list files and iptoasn's TSV give ranges, the prefix table wants
// CIDRs.
func RangePrefixes(from, to netip.Addr) []netip.Prefix {
	from, to = from.Unmap(), to.Unmap()
	if !from.IsValid() || !to.IsValid() || from.Is4() != to.Is4() || from.Zone() != "" || to.Zone() != "" || to.Less(from) {
		return nil
	}
	var out []netip.Prefix
	width := from.BitLen()
	lo, hi := toU128(from), toU128(to)
	for {
		// The largest block that starts at lo (its alignment) and does
		// not run past hi.
		size := min(lo.trailingZeros(), width)
		for size > 0 && lo.add(u128{}.setLowOnes(size)).greater(hi) {
			size--
		}
		out = append(out, netip.PrefixFrom(fromU128(lo, from.Is4()), width-size))
		end := lo.add(u128{}.setLowOnes(size))
		if !end.less(hi) {
			return out
		}
		lo = end.add(u128{lo: 1})
	}
}

// u128 is an address as a 128-bit number; IPv4 uses the low 32 bits.
type u128 struct{ hi, lo uint64 }

func toU128(a netip.Addr) u128 {
	if a.Is4() {
		b := a.As4()
		return u128{lo: uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])}
	}
	b := a.As16()
	var u u128
	for i := range 8 {
		u.hi = u.hi<<8 | uint64(b[i])
		u.lo = u.lo<<8 | uint64(b[8+i])
	}
	return u
}

func fromU128(u u128, v4 bool) netip.Addr {
	if v4 {
		return netip.AddrFrom4([4]byte{byte(u.lo >> 24), byte(u.lo >> 16), byte(u.lo >> 8), byte(u.lo)})
	}
	var b [16]byte
	for i := range 8 {
		b[7-i] = byte(u.hi >> (8 * i))
		b[15-i] = byte(u.lo >> (8 * i))
	}
	return netip.AddrFrom16(b)
}

func (u u128) trailingZeros() int {
	if u.lo != 0 {
		return bits.TrailingZeros64(u.lo)
	}
	if u.hi != 0 {
		return 64 + bits.TrailingZeros64(u.hi)
	}
	return 128
}

// setLowOnes returns the number with the low n bits set.
func (u128) setLowOnes(n int) u128 {
	switch {
	case n <= 0:
		return u128{}
	case n < 64:
		return u128{lo: 1<<n - 1}
	case n < 128:
		return u128{hi: 1<<(n-64) - 1, lo: ^uint64(0)}
	}
	return u128{^uint64(0), ^uint64(0)}
}

// add wraps around at 2^128; callers never let it.
func (u u128) add(v u128) u128 {
	lo, c := bits.Add64(u.lo, v.lo, 0)
	hi, _ := bits.Add64(u.hi, v.hi, c)
	return u128{hi, lo}
}

func (u u128) less(v u128) bool    { return u.hi < v.hi || u.hi == v.hi && u.lo < v.lo }
func (u u128) greater(v u128) bool { return v.less(u) }
