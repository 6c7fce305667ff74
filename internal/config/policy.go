package config

import (
	"net"
	"path/filepath"
	"strings"
)

// validatePolicy checks the [policy] section.
func (c *Config) validatePolicy(bad func(key, format string, args ...any)) {
	p := &c.Policy
	if l := p.Listen; l != "" && !filepath.IsAbs(l) {
		if _, _, err := net.SplitHostPort(l); err != nil {
			bad("policy.listen", "%q: want host:port or an absolute unix socket path", l)
		}
	}
	oneLine := func(key, v string) {
		if strings.ContainsAny(v, "\r\n\x00") {
			bad(key, "must be one line")
		}
	}
	if p.GreylistAction == "" || strings.ContainsAny(p.GreylistAction, " \t") {
		bad("policy.greylist_action", "%q: want one Postfix action word such as DEFER_IF_PERMIT", p.GreylistAction)
	}
	oneLine("policy.greylist_action", p.GreylistAction)
	oneLine("policy.greylist_text", p.GreylistText)
	oneLine("policy.x_greylist_header", p.XGreylistHeader)
	if h := p.XGreylistHeader; h != "" {
		if name, _, ok := strings.Cut(h, ":"); !ok || name == "" || strings.ContainsAny(name, " \t") {
			bad("policy.x_greylist_header", "%q: want \"Name: value\"", h)
		}
	}
	if p.BlackAction != "REJECT" && p.BlackAction != "DEFER" {
		bad("policy.black_action", "%q: want REJECT or DEFER", p.BlackAction)
	}
	if p.AutoWhitelistClient < 0 {
		bad("policy.auto_whitelist_clients", "must be >= 0 (0 turns auto-whitelisting off)")
	}
}
