package config

import (
	"strings"
	"testing"
)

func TestDNSBLKeys(t *testing.T) {
	c, err := Load("", []string{
		`dnsbl.sites=["zen.spamhaus.org=127.0.0.[2..11]*3","list.dnswl.org=127.0.[0..255].[1..3]*-2"]`,
		"dnsbl.threshold=3", "dnsbl.allow_threshold=-2", "dnsbl.resolver=127.0.0.1:5300",
		"dnsbl.serve_listen=127.0.0.1:5353", "dnsbl.serve_zone=bl.example.org",
		"greylist.mode=selective", "greylist.spf=false", "bigsenders.disable=gmail.com",
		"bigsenders.add=example.net=_spf.example.net,example.com",
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.DNSBL.Sites) != 2 || c.DNSBL.AllowThreshold != -2 || c.Greylist.Mode != "selective" || c.Greylist.SPF || len(c.Big.Add) != 2 {
		t.Errorf("loaded %+v %+v %+v", c.DNSBL, c.Greylist, c.Big)
	}
	for _, tc := range []struct{ set, key string }{
		{"dnsbl.sites=zen.spamhaus.org=127.0.0", "dnsbl.sites: "},
		{"dnsbl.threshold=0", "dnsbl.threshold: "},
		{"dnsbl.allow_threshold=2", "dnsbl.allow_threshold: "},
		{"dnsbl.timeout=0s", "dnsbl.timeout: "},
		{"dnsbl.resolver=not a host", "dnsbl.resolver: "},
		{"dnsbl.serve_listen=127.0.0.1:53", "dnsbl.serve_zone: "},
		{"dnsbl.serve_zone=bad zone", "dnsbl.serve_zone: "},
		{"dnsbl.serve_rate=-1", "dnsbl.serve_rate: "},
		{"greylist.mode=some", "greylist.mode: "},
		{"greylist.spf_timeout=0s", "greylist.spf_timeout: "},
		{"bigsenders.refresh=1s", "bigsenders.refresh: "},
		{"bigsenders.add=a b", "bigsenders.add: "},
	} {
		_, err := Load("", []string{tc.set})
		if err == nil || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("-set %s: error %v, want one naming %s", tc.set, err, tc.key)
		}
	}
}
