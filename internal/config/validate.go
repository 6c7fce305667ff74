package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/greypit/greypit/internal/dnsbl"
)

// Validate checks every setting and returns all problems found, one per
// line, each starting with the key as "section.key: ".
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	positive := func(key string, d Duration) {
		if d.Duration <= 0 {
			bad(key, "must be > 0")
		}
	}
	hostPort := func(key, addr string) {
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			bad(key, "%v", err)
			return
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			bad(key, "%q: port must be a number from 1 to 65535", addr)
		}
	}
	name := func(key, s string) {
		if strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
			bad(key, "%q contains spaces or control characters", s)
		}
	}

	tp := &c.Tarpit
	positive("tarpit.stutter", tp.Stutter)
	if tp.GreyStutterFor.Duration < 0 {
		bad("tarpit.grey_stutter_for", "must be >= 0 (0 turns grey stuttering off)")
	}
	if tp.ReplyCode < 400 || tp.ReplyCode > 599 {
		bad("tarpit.reply_code", "must be a 4xx (the sender retries) or 5xx (the sender bounces) code")
	}
	for _, m := range []struct {
		key string
		n   int64
	}{
		{"tarpit.max_sessions", int64(tp.MaxSessions)},
		{"tarpit.max_per_prefix", int64(tp.MaxPerPrefix)},
		{"tarpit.max_data_size", tp.MaxDataSize},
		{"tarpit.sample_max_size", tp.SampleMaxSize},
	} {
		if m.n <= 0 {
			bad(m.key, "must be > 0")
		}
	}
	if tp.MaxDataSize > 1<<30 {
		bad("tarpit.max_data_size", "must be at most 1073741824 (1 GiB)")
	}
	if tp.Pressure <= 0 || tp.Pressure > 1 {
		bad("tarpit.pressure", "must be > 0 and <= 1")
	}
	positive("tarpit.idle_timeout", tp.IdleTimeout)
	positive("tarpit.session_timeout", tp.SessionTimeout)
	positive("tarpit.pregreet_ttl", tp.PregreetTTL)

	s := &c.SMTP
	if len(s.Listen) == 0 {
		bad("smtp.listen", "must not be empty")
	}
	for _, a := range s.Listen {
		hostPort("smtp.listen", a)
	}
	if s.Hostname == "" {
		bad("smtp.hostname", "must not be empty")
	}
	name("smtp.hostname", s.Hostname)
	if s.GreetWait.Duration < 0 {
		bad("smtp.greet_wait", "must be >= 0 (0 turns the pause off)")
	}
	positive("smtp.drain_timeout", s.DrainTimeout)
	c.validateProxy(bad)
	if c.Metrics.Listen != "" {
		hostPort("metrics.listen", c.Metrics.Listen)
	}
	positive("smtp.command_timeout", s.CommandTimeout)
	positive("smtp.session_timeout", s.SessionTimeout)
	positive("smtp.data_timeout", s.DataTimeout)
	for _, m := range []struct {
		key string
		n   int64
	}{
		{"smtp.max_sessions", int64(s.MaxSessions)},
		{"smtp.max_errors", int64(s.MaxErrors)},
		{"smtp.max_recipients", int64(s.MaxRecipients)},
		{"smtp.max_message_size", s.MaxMessageSize},
	} {
		if m.n <= 0 {
			bad(m.key, "must be > 0")
		}
	}
	switch {
	case s.TLSCert != "" && s.TLSKey == "":
		bad("smtp.tls_key", "must be set when smtp.tls_cert is")
	case s.TLSCert == "" && s.TLSKey != "":
		bad("smtp.tls_cert", "must be set when smtp.tls_key is")
	case s.TLSCert != "":
		for _, f := range []struct{ key, path string }{{"smtp.tls_cert", s.TLSCert}, {"smtp.tls_key", s.TLSKey}} {
			if fh, err := os.Open(f.path); err != nil {
				bad(f.key, "%v", err)
			} else {
				fh.Close()
			}
		}
	}

	b := &c.Backend
	hostPort("backend.address", b.Address)
	switch b.Handoff {
	case HandoffProxyV2, HandoffXClient, HandoffPlain:
	default:
		bad("backend.handoff", "%q: must be %s, %s or %s", b.Handoff, HandoffProxyV2, HandoffXClient, HandoffPlain)
	}
	positive("backend.connect_timeout", b.ConnectTimeout)
	positive("backend.reply_timeout", b.ReplyTimeout)
	name("backend.helo_name", b.HelloName)

	g := &c.Greylist
	positive("greylist.pass_delay", g.PassDelay)
	positive("greylist.retry_window", g.RetryWindow)
	positive("greylist.white_ttl", g.WhiteTTL)
	if g.PassDelay.Duration > 0 && g.RetryWindow.Duration <= g.PassDelay.Duration {
		bad("greylist.retry_window", "must be longer than greylist.pass_delay (%s)", g.PassDelay)
	}
	if g.PrefixV4 < 8 || g.PrefixV4 > 32 {
		bad("greylist.prefix_v4", "must be from 8 to 32")
	}
	if g.PrefixV6 < 16 || g.PrefixV6 > 128 {
		bad("greylist.prefix_v6", "must be from 16 to 128")
	}

	switch g.Mode {
	case GreylistAll, GreylistSelective:
	default:
		bad("greylist.mode", "%q: must be %s or %s", g.Mode, GreylistAll, GreylistSelective)
	}
	positive("greylist.spf_timeout", g.SPFTimeout)

	c.validateDNSBL(bad)

	if c.Store.Path == "" {
		bad("store.path", "must not be empty")
	}
	positive("store.expire_every", c.Store.ExpireEvery)
	c.validateStore(bad)
	if c.Store.GreyFlushEvery.Duration < 0 {
		bad("store.grey_flush_every", "must be >= 0 (0 writes every sighting at once)")
	}
	c.validatePolicy(bad)

	for _, f := range c.Lists.Allow {
		if strings.TrimSpace(f) == "" {
			bad("lists.allow", "empty file name")
		}
	}
	for _, f := range c.Lists.Block {
		if strings.TrimSpace(f) == "" {
			bad("lists.block", "empty file name")
		}
	}
	for key, files := range map[string]StringList{"lists.drop": c.Lists.DROP, "lists.spamd_conf": c.Lists.SpamdConf} {
		for _, f := range files {
			if strings.TrimSpace(f) == "" {
				bad(key, "empty file name")
			}
		}
	}
	if c.Lists.PollEvery.Duration < 0 {
		bad("lists.poll_every", "must be >= 0 (0 checks files only on SIGHUP)")
	}
	c.validateNetworks(bad)

	// sun_path holds 108 bytes on Linux, including the terminating NUL.
	if sock := c.ControlSocket(); len(sock) > 107 {
		bad("control.socket", "%q is longer than 107 bytes (when empty it is store.path + \".sock\")", sock)
	}

	errs = append(errs, c.Traps.validate()...)

	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "%q: must be debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format", "%q: must be text or json", c.Log.Format)
	}
	errs = append(errs, c.validateFollow()...)
	return errors.Join(errs...)
}

// validateDNSBL checks the dnsbl and bigsenders sections.
func (c *Config) validateDNSBL(bad func(key, format string, args ...any)) {
	d := &c.DNSBL
	for _, e := range d.Sites {
		if err := siteSyntax(e); err != nil {
			bad("dnsbl.sites", "%v", err)
		}
	}
	if d.Threshold < 1 {
		bad("dnsbl.threshold", "must be >= 1")
	}
	if d.AllowThreshold > 0 {
		bad("dnsbl.allow_threshold", "must be <= 0 (0 turns it off)")
	}
	if d.Timeout.Duration <= 0 || d.Timeout.Duration > 30*time.Second {
		bad("dnsbl.timeout", "must be > 0 and at most 30s")
	}
	if d.Resolver != "" {
		if _, _, err := net.SplitHostPort(d.Resolver); err != nil && net.ParseIP(d.Resolver) == nil {
			bad("dnsbl.resolver", "%q: want an IP address or address:port", d.Resolver)
		}
	}
	if d.CacheSize <= 0 {
		bad("dnsbl.cache_size", "must be > 0")
	}
	if d.HealthEvery.Duration <= 0 {
		bad("dnsbl.health_every", "must be > 0")
	}
	if d.ServeListen != "" {
		if _, _, err := net.SplitHostPort(d.ServeListen); err != nil {
			bad("dnsbl.serve_listen", "%v", err)
		}
		if d.ServeZone == "" {
			bad("dnsbl.serve_zone", "must be set when dnsbl.serve_listen is")
		}
	}
	if d.ServeZone != "" {
		if err := siteSyntax(d.ServeZone); err != nil || strings.ContainsAny(d.ServeZone, "=*") {
			bad("dnsbl.serve_zone", "%q is not a DNS zone name", d.ServeZone)
		}
	}
	if d.ServeTTL.Duration < time.Second {
		bad("dnsbl.serve_ttl", "must be at least 1s")
	}
	if d.ServeRate < 0 {
		bad("dnsbl.serve_rate", "must be >= 0 (0: unlimited)")
	}
	if c.Big.Refresh.Duration < time.Minute {
		bad("bigsenders.refresh", "must be at least 1m")
	}
	for _, e := range c.Big.Add {
		dom, spf, _ := strings.Cut(e, "=")
		if siteSyntax(dom) != nil || strings.ContainsAny(dom, "*") || spf != "" && (siteSyntax(spf) != nil || strings.ContainsAny(spf, "=*")) {
			bad("bigsenders.add", "%q: want domain or domain=spf-name", e)
		}
	}
}

// siteSyntax checks one dnsbl.sites entry (or a bare zone name).
func siteSyntax(s string) error {
	_, err := dnsbl.ParseSite(s)
	return err
}
