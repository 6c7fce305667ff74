package dnsbl

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Site is one entry of dnsbl.sites in Postfix postscreen's syntax
// (postscreen_dnsbl_sites): "zone[=filter][*weight]".
type Site struct {
	Zone   string  // e.g. "zen.spamhaus.org", lower case, no trailing dot
	Filter *Filter // nil: any listing answer matches
	Weight int     // added once when the filter matches; negative for allow lists
	Text   string  // the entry as written
}

// Filter matches an A answer octet by octet: each octet is a set of
// numbers and ranges, as in postscreen's "127.0.[2..11;20].[1..3]".
type Filter [4][]octetRange

type octetRange struct{ lo, hi uint8 }

// Match reports whether the IPv4 answer a is in the filter.
func (f *Filter) Match(a netip.Addr) bool {
	if f == nil {
		return true
	}
	if !a.Is4() {
		return false
	}
	b := a.As4()
	for i, rs := range f {
		ok := false
		for _, r := range rs {
			if b[i] >= r.lo && b[i] <= r.hi {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// ParseSites parses every entry of dnsbl.sites.
func ParseSites(entries []string) ([]Site, error) {
	var out []Site
	for _, e := range entries {
		s, err := ParseSite(e)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// ParseSite parses one "zone[=filter][*weight]" entry.
func ParseSite(entry string) (Site, error) {
	s := Site{Weight: 1, Text: entry}
	rest := strings.TrimSpace(entry)
	if i := strings.LastIndexByte(rest, '*'); i >= 0 {
		w, err := strconv.Atoi(rest[i+1:])
		if err != nil || w < -1000 || w > 1000 {
			return Site{}, fmt.Errorf("%q: weight %q is not a whole number from -1000 to 1000", entry, rest[i+1:])
		}
		s.Weight, rest = w, rest[:i]
	}
	zone := rest
	if i := strings.IndexByte(rest, '='); i >= 0 {
		zone = rest[:i]
		f, err := parseFilter(rest[i+1:])
		if err != nil {
			return Site{}, fmt.Errorf("%q: %w", entry, err)
		}
		s.Filter = f
	}
	zone = strings.ToLower(strings.TrimSuffix(zone, "."))
	if err := checkZone(zone); err != nil {
		return Site{}, fmt.Errorf("%q: %w", entry, err)
	}
	s.Zone = zone
	return s, nil
}

// checkZone accepts a DNS name of letters, digits, '-' and '_' labels.
func checkZone(z string) error {
	if z == "" {
		return fmt.Errorf("empty zone")
	}
	if len(z) > 200 { // leaves room for 32 nibbles of an IPv6 name in 253
		return fmt.Errorf("zone %q is too long", z)
	}
	for _, l := range strings.Split(z, ".") {
		if l == "" || len(l) > 63 {
			return fmt.Errorf("zone %q has an empty or too long label", z)
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("zone %q: bad character %q", z, c)
			}
		}
	}
	return nil
}

func parseFilter(s string) (*Filter, error) {
	// Split at dots outside brackets.
	var parts []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '[':
			depth++
		case ']':
			depth--
		case '.':
			if depth == 0 {
				parts = append(parts, s[start:i])
				start = i + 1
			}
		}
		if depth < 0 || depth > 1 {
			return nil, fmt.Errorf("filter %q: unbalanced brackets", s)
		}
	}
	parts = append(parts, s[start:])
	if depth != 0 || len(parts) != 4 {
		return nil, fmt.Errorf("filter %q: want four dot-separated octets like 127.0.0.[2..11]", s)
	}
	var f Filter
	for i, p := range parts {
		rs, err := parseOctet(p)
		if err != nil {
			return nil, fmt.Errorf("filter %q: %w", s, err)
		}
		f[i] = rs
	}
	return &f, nil
}

func parseOctet(p string) ([]octetRange, error) {
	if !strings.HasPrefix(p, "[") {
		n, err := octet(p)
		return []octetRange{{n, n}}, err
	}
	if !strings.HasSuffix(p, "]") || len(p) < 3 {
		return nil, fmt.Errorf("octet %q: want [n;n..m]", p)
	}
	var out []octetRange
	for _, el := range strings.Split(p[1:len(p)-1], ";") {
		lo, hi, isRange := strings.Cut(el, "..")
		a, err := octet(lo)
		if err != nil {
			return nil, err
		}
		b := a
		if isRange {
			if b, err = octet(hi); err != nil {
				return nil, err
			}
			if b < a {
				return nil, fmt.Errorf("range %q is empty", el)
			}
		}
		out = append(out, octetRange{a, b})
	}
	return out, nil
}

func octet(s string) (uint8, error) {
	n, err := strconv.ParseUint(s, 10, 8)
	if err != nil || s == "" || s[0] == '+' {
		return 0, fmt.Errorf("octet %q is not a number from 0 to 255", s)
	}
	return uint8(n), nil
}
