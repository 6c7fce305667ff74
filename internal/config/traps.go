package config

import (
	"fmt"
	"net"
	"strings"
	"time"
)

// Traps configures spamtraps: trap addresses, the domains greypit receives
// for (every other recipient is a trap), how long a trapped host stays
// black, and the harvester page.
type Traps struct {
	Files       StringList `toml:"files"`         // files of trap addresses, one per line; hot-reloaded
	Domains     StringList `toml:"domains"`       // domains we receive for; with it set, other recipients are traps
	BlackTTL    Duration   `toml:"black_ttl"`     // a trapped host's first listing
	MaxBlackTTL Duration   `toml:"max_black_ttl"` // cap of the doubling for repeat offenders
	Keep        Duration   `toml:"keep"`          // trap hits and harvester visits are kept this long
	WebListen   string     `toml:"web_listen"`    // harvester page listener; "" = off
	WebDomain   string     `toml:"web_domain"`    // harvester addresses are minted under it; all of it is a trap
	WebBurst    int        `toml:"web_burst"`     // page visits per visitor before the rate limit
	WebEvery    Duration   `toml:"web_every"`     // one more visit allowed per this interval
}

func defaultTraps() Traps {
	return Traps{
		BlackTTL:    Duration{24 * time.Hour},
		MaxBlackTTL: Duration{30 * day},
		Keep:        Duration{90 * day},
		WebBurst:    5,
		WebEvery:    Duration{time.Minute},
	}
}

// validate reports the [traps] problems as "traps.key: ..." errors.
func (t *Traps) validate() []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	for _, f := range t.Files {
		if strings.TrimSpace(f) == "" {
			bad("traps.files", "empty file name")
		}
	}
	for _, d := range t.Domains {
		if err := checkDomain(d); err != nil {
			bad("traps.domains", "%v", err)
		}
	}
	if t.BlackTTL.Duration <= 0 {
		bad("traps.black_ttl", "must be > 0")
	}
	if t.MaxBlackTTL.Duration < t.BlackTTL.Duration {
		bad("traps.max_black_ttl", "must be >= traps.black_ttl (%s)", t.BlackTTL)
	}
	if t.Keep.Duration <= 0 {
		bad("traps.keep", "must be > 0")
	}
	if t.WebListen != "" {
		if _, _, err := net.SplitHostPort(t.WebListen); err != nil {
			bad("traps.web_listen", "%v", err)
		}
		if t.WebDomain == "" {
			bad("traps.web_domain", "must be set when traps.web_listen is")
		}
	}
	if t.WebDomain != "" {
		if err := checkDomain(t.WebDomain); err != nil {
			bad("traps.web_domain", "%v", err)
		}
		for _, d := range t.Domains {
			if strings.EqualFold(strings.TrimSuffix(d, "."), strings.TrimSuffix(t.WebDomain, ".")) {
				bad("traps.web_domain", "%q is also in traps.domains: every address under it is a trap, so no user may live there", d)
			}
		}
	}
	if t.WebBurst <= 0 {
		bad("traps.web_burst", "must be > 0")
	}
	if t.WebEvery.Duration <= 0 {
		bad("traps.web_every", "must be > 0")
	}
	return errs
}

// checkDomain accepts a plain DNS name (RFC 1035 letters, digits, hyphens
// and dots), as a recipient's domain is compared with it.
func checkDomain(d string) error {
	s := strings.TrimSuffix(d, ".")
	if s == "" || len(s) > 253 || strings.HasPrefix(s, ".") || strings.Contains(s, "..") {
		return fmt.Errorf("%q is not a domain name", d)
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return fmt.Errorf("%q is not a domain name (letters, digits, '-' and '.')", d)
		}
	}
	return nil
}
