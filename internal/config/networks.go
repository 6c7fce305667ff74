package config

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// validateNetworks checks the networks section.
func (c *Config) validateNetworks(bad func(key, format string, args ...any)) {
	n := &c.Networks
	if n.PrefixV4 < 8 || n.PrefixV4 > 32 {
		bad("networks.prefix_v4", "must be from 8 to 32")
	}
	if n.PrefixV6 < 16 || n.PrefixV6 > 128 {
		bad("networks.prefix_v6", "must be from 16 to 128")
	}
	if n.EscalateHosts < 0 || n.EscalateHosts == 1 {
		bad("networks.escalate_hosts", "must be 0 (never escalate) or at least 2")
	}
	for _, d := range []struct {
		key string
		d   Duration
	}{{"networks.escalate_ttl", n.EscalateTTL}, {"networks.half_life", n.HalfLife}, {"networks.evaluate_every", n.EvaluateEvery}} {
		if d.d.Duration <= 0 {
			bad(d.key, "must be > 0")
		}
	}
	if n.HistoryRetention.Duration < 0 {
		bad("networks.history_retention", "must be >= 0 (0 records no history)")
	}
	for _, s := range n.NeverEscalate {
		if _, _, err := ParseNetOrASN(s); err != nil {
			bad("networks.never_escalate", "%v", err)
		}
	}
}

// ParseNetOrASN parses an entry of networks.never_escalate: a CIDR prefix
// or address (returned masked, IPv4-mapped unmapped) or an AS number as
// "AS15169" or "15169".
func ParseNetOrASN(s string) (netip.Prefix, uint32, error) {
	s = strings.TrimSpace(s)
	num := strings.TrimPrefix(strings.TrimPrefix(s, "AS"), "as")
	if n, err := strconv.ParseUint(num, 10, 32); err == nil && num != "" && n > 0 {
		return netip.Prefix{}, uint32(n), nil
	}
	ps, err := ParsePrefixes([]string{s})
	if err != nil {
		return netip.Prefix{}, 0, fmt.Errorf("%q is neither a CIDR prefix nor an AS number (AS15169)", s)
	}
	return ps[0], 0, nil
}
