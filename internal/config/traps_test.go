package config

import (
	"strings"
	"testing"
	"time"
)

func TestValidateTraps(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"files empty name", func(c *Config) { c.Traps.Files = StringList{""} }, "traps.files: empty file name"},
		{"domain with @", func(c *Config) { c.Traps.Domains = StringList{"@example.org"} }, `traps.domains: "@example.org" is not a domain name`},
		{"domain dots", func(c *Config) { c.Traps.Domains = StringList{"example..org"} }, "traps.domains: "},
		{"black_ttl", func(c *Config) { c.Traps.BlackTTL = Duration{} }, "traps.black_ttl: must be > 0"},
		{"max_black_ttl", func(c *Config) { c.Traps.MaxBlackTTL = Duration{time.Hour} }, "traps.max_black_ttl: must be >= traps.black_ttl (1d)"},
		{"keep", func(c *Config) { c.Traps.Keep = Duration{} }, "traps.keep: must be > 0"},
		{"web_listen", func(c *Config) { c.Traps.WebListen = "127.0.0.1"; c.Traps.WebDomain = "t.example" }, "traps.web_listen: address 127.0.0.1: missing port"},
		{"web_domain missing", func(c *Config) { c.Traps.WebListen = "127.0.0.1:8080" }, "traps.web_domain: must be set when traps.web_listen is"},
		{"web_domain ours", func(c *Config) {
			c.Traps.Domains = StringList{"example.org"}
			c.Traps.WebDomain = "Example.org."
		}, `traps.web_domain: "example.org" is also in traps.domains`},
		{"web_burst", func(c *Config) { c.Traps.WebBurst = 0 }, "traps.web_burst: must be > 0"},
		{"web_every", func(c *Config) { c.Traps.WebEvery = Duration{} }, "traps.web_every: must be > 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.mutate(c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v does not contain %q", err, tc.want)
			}
		})
	}
	c := Default()
	c.Traps.Domains = StringList{"example.org", "mail.example.net."}
	c.Traps.WebListen, c.Traps.WebDomain = "127.0.0.1:8080", "lists.example.org"
	if err := c.Validate(); err != nil {
		t.Errorf("a good [traps]: %v", err)
	}
	// -set takes the list and duration keys like any other.
	c, err := Load("", []string{"traps.domains=example.org,example.net", "traps.black_ttl=2d"})
	if err != nil || len(c.Traps.Domains) != 2 || c.Traps.BlackTTL.Duration != 48*time.Hour {
		t.Errorf("-set traps: %+v %v", c.Traps, err)
	}
}
