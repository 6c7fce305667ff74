package config

import (
	"net/netip"
	"strings"
	"testing"
)

func TestValidateNetworksAndLists(t *testing.T) {
	for _, c := range []struct {
		set, want string
	}{
		{"networks.prefix_v4=7", "networks.prefix_v4: must be from 8 to 32"},
		{"networks.prefix_v6=129", "networks.prefix_v6: must be from 16 to 128"},
		{"networks.escalate_hosts=1", "networks.escalate_hosts: must be 0 (never escalate) or at least 2"},
		{"networks.escalate_hosts=-3", "networks.escalate_hosts:"},
		{"networks.escalate_ttl=0s", "networks.escalate_ttl: must be > 0"},
		{"networks.half_life=0s", "networks.half_life: must be > 0"},
		{"networks.evaluate_every=-1s", "networks.evaluate_every: must be > 0"},
		{"networks.history_retention=-1s", "networks.history_retention: must be >= 0"},
		{"networks.never_escalate=192.0.2.0/33", `networks.never_escalate: "192.0.2.0/33" is neither a CIDR prefix nor an AS number`},
		{"networks.never_escalate=ASfoo", "networks.never_escalate:"},
		{`lists.drop=[""]`, "lists.drop: empty file name"},
		{`lists.spamd_conf=[" "]`, "lists.spamd_conf: empty file name"},
		{"lists.poll_every=-1s", "lists.poll_every: must be >= 0"},
	} {
		_, err := Load("", []string{c.set})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("-set %s: %v, want %q", c.set, err, c.want)
		}
	}
	cfg, err := Load("", []string{"networks.never_escalate=AS15169,2001:db8::/32,::ffff:192.0.2.0/120,198.51.100.7", "networks.escalate_hosts=0", "lists.poll_every=0s"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range cfg.Networks.NeverEscalate {
		p, as, err := ParseNetOrASN(s)
		if err != nil {
			t.Fatal(err)
		}
		if as != 0 {
			got = append(got, "AS"+strings.TrimSpace(s[2:]))
		} else {
			got = append(got, p.String())
		}
	}
	if strings.Join(got, " ") != "AS15169 2001:db8::/32 192.0.2.0/24 198.51.100.7/32" {
		t.Errorf("parsed %v", got)
	}
	if p, _, _ := ParseNetOrASN("10.1.2.3/8"); p != netip.MustParsePrefix("10.0.0.0/8") {
		t.Errorf("not masked: %v", p)
	}
}
