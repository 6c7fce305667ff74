package config

import (
	"strings"
	"testing"
	"time"
)

// Every [policy] and store.grey_flush_every problem names its key.
func TestValidatePolicy(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"listen relative path", func(c *Config) { c.Policy.Listen = "policy.sock" }, "policy.listen: \"policy.sock\": want host:port"},
		{"greylist_action empty", func(c *Config) { c.Policy.GreylistAction = "" }, "policy.greylist_action: "},
		{"greylist_action two words", func(c *Config) { c.Policy.GreylistAction = "DEFER now" }, "policy.greylist_action: "},
		{"greylist_text newline", func(c *Config) { c.Policy.GreylistText = "a\naction=OK" }, "policy.greylist_text: must be one line"},
		{"header without colon", func(c *Config) { c.Policy.XGreylistHeader = "X-Greylist delayed" }, "policy.x_greylist_header: "},
		{"black_action", func(c *Config) { c.Policy.BlackAction = "DISCARD" }, "policy.black_action: \"DISCARD\": want REJECT or DEFER"},
		{"auto_whitelist_clients", func(c *Config) { c.Policy.AutoWhitelistClient = -1 }, "policy.auto_whitelist_clients: must be >= 0"},
		{"grey_flush_every", func(c *Config) { c.Store.GreyFlushEvery = Duration{-time.Second} }, "store.grey_flush_every: must be >= 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.mutate(c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
	c := Default()
	c.Policy.Listen, c.Policy.XGreylistHeader, c.Store.GreyFlushEvery = "/run/greypit/policy.sock", "", Duration{}
	if err := c.Validate(); err != nil {
		t.Errorf("socket path, no header, write-through: %v", err)
	}
}
