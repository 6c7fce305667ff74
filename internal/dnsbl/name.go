package dnsbl

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"
)

// QueryName is the DNS name under which zone lists addr (RFC 5782 §2.1,
// §2.4): the IPv4 octets reversed, or the 32 nibbles of an IPv6 address
// reversed as in ip6.arpa. The name is fully qualified (trailing dot).
func QueryName(addr netip.Addr, zone string) string {
	a := addr.Unmap()
	if !a.Is4() {
		return queryName6(a, zone)
	}
	var b strings.Builder
	o := a.As4()
	for i := 3; i >= 0; i-- {
		b.WriteString(strconv.Itoa(int(o[i])))
		b.WriteByte('.')
	}
	b.WriteString(strings.TrimSuffix(zone, "."))
	b.WriteByte('.')
	return b.String()
}

// queryName6 writes the 32 nibbles of a (even an IPv4-mapped one),
// lowest first.
func queryName6(a netip.Addr, zone string) string {
	const hex = "0123456789abcdef"
	var b strings.Builder
	o := a.As16()
	for i := 15; i >= 0; i-- {
		b.WriteByte(hex[o[i]&0xf])
		b.WriteByte('.')
		b.WriteByte(hex[o[i]>>4])
		b.WriteByte('.')
	}
	b.WriteString(strings.TrimSuffix(zone, "."))
	b.WriteByte('.')
	return b.String()
}

// ErrNotInZone is returned by ParseQueryName for a name outside the zone.
var ErrNotInZone = errors.New("name is not in the zone")

// ParseQueryName is the inverse of QueryName: it returns the address a
// query for name (case-insensitive, trailing dot optional) asks about.
// The zone apex itself gives ok=false and no error; a name in the zone
// that is not 4 decimal octets or 32 nibbles is an error.
func ParseQueryName(name, zone string) (addr netip.Addr, ok bool, err error) {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	zone = strings.ToLower(strings.TrimSuffix(zone, "."))
	if name == zone {
		return netip.Addr{}, false, nil
	}
	if !strings.HasSuffix(name, "."+zone) {
		return netip.Addr{}, false, ErrNotInZone
	}
	labels := strings.Split(strings.TrimSuffix(name, "."+zone), ".")
	switch len(labels) {
	case 4:
		var o [4]byte
		for i, l := range labels {
			n, err := strconv.ParseUint(l, 10, 8)
			if err != nil || l == "" || len(l) > 1 && l[0] == '0' {
				return netip.Addr{}, false, errors.New("not an IPv4 query name")
			}
			o[3-i] = byte(n)
		}
		return netip.AddrFrom4(o), true, nil
	case 32:
		var o [16]byte
		for i, l := range labels {
			if len(l) != 1 {
				return netip.Addr{}, false, errors.New("not an IPv6 query name")
			}
			n, err := strconv.ParseUint(l, 16, 8)
			if err != nil {
				return netip.Addr{}, false, errors.New("not an IPv6 query name")
			}
			// Label 0 is the lowest nibble of the last byte.
			pos := 31 - i
			if pos%2 == 0 {
				o[pos/2] |= byte(n) << 4
			} else {
				o[pos/2] |= byte(n)
			}
		}
		return netip.AddrFrom16(o), true, nil
	}
	return netip.Addr{}, false, errors.New("not an address query name")
}
