package config

import (
	"fmt"
	"net/netip"
)

// Metrics configures the Prometheus endpoint (internal/metrics).
type Metrics struct {
	Listen string `toml:"listen"` // address of GET /metrics; "" = off
}

// validateProxy checks the PROXY protocol keys of the smtp section.
func (c *Config) validateProxy(bad func(key, format string, args ...any)) {
	s := &c.SMTP
	if _, err := ParsePrefixes(s.ProxyTrusted); err != nil {
		bad("smtp.proxy_trusted", "%v", err)
	}
	if s.ProxyProtocol && len(s.ProxyTrusted) == 0 {
		// Nobody could connect at all.
		bad("smtp.proxy_trusted", "must not be empty with smtp.proxy_protocol = true")
	}
	if s.ProxyTimeout.Duration <= 0 {
		bad("smtp.proxy_timeout", "must be > 0")
	}
}

// ParsePrefixes parses CIDR prefixes or bare addresses (a host prefix),
// masked, IPv4-mapped ones unmapped.
func ParsePrefixes(l []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, e := range l {
		p, err := netip.ParsePrefix(e)
		if err != nil {
			a, aerr := netip.ParseAddr(e)
			if aerr != nil || a.Zone() != "" {
				return nil, fmt.Errorf("%q is not a CIDR prefix or address", e)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
