package config

import (
	"fmt"
	"net"
	"strings"
	"time"
)

// Follow configures the log follower inside `greypit serve`.
type Follow struct {
	Files  StringList `toml:"files"`   // logs to follow; empty: no follower
	State  string     `toml:"state"`   // read positions; empty: store.path + ".follow"
	DryRun bool       `toml:"dry_run"` // log what would change, change nothing
}

// Feedback configures what verdicts do.
type Feedback struct {
	BlackTTL Duration `toml:"black_ttl"` // a spam verdict blacklists the host this long
}

// API configures the HTTP endpoint for verdicts, the admin API and the
// dashboard.
type API struct {
	Listen string `toml:"listen"` // host:port; empty: off
	Token  string `toml:"token"`  // bearer token every request must carry
	// The dashboard's charts: the counters are sampled this often and
	// this many samples are kept in memory (default a day of minutes).
	SampleEvery Duration `toml:"sample_every"`
	Samples     int      `toml:"samples"`
}

// maxSamples bounds api.samples: a sample is a few hundred bytes.
const maxSamples = 100000

// Candidates configures trap candidates from unknown-recipient rejects.
type Candidates struct {
	Protected       StringList `toml:"protected"`        // files of addresses never proposed (real and former users)
	PromoteNetworks int        `toml:"promote_networks"` // promote automatically after this many networks; 0: never
	PromoteDays     int        `toml:"promote_days"`     // ... seen on at least this many days
}

func defaultFollow() Follow { return Follow{} }

func defaultFeedback() Feedback { return Feedback{BlackTTL: Duration{24 * time.Hour}} }

func defaultAPI() API { return API{SampleEvery: Duration{time.Minute}, Samples: 1440} }

func defaultCandidates() Candidates { return Candidates{PromoteDays: 2} }

// FollowState returns the follower's position file.
func (c *Config) FollowState() string {
	if c.Follow.State != "" {
		return c.Follow.State
	}
	return c.Store.Path + ".follow"
}

func (c *Config) validateFollow() []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	for _, f := range c.Follow.Files {
		if strings.TrimSpace(f) == "" {
			bad("follow.files", "empty file name")
		}
	}
	for _, f := range c.Candidates.Protected {
		if strings.TrimSpace(f) == "" {
			bad("candidates.protected", "empty file name")
		}
	}
	if c.Feedback.BlackTTL.Duration <= 0 {
		bad("feedback.black_ttl", "must be > 0")
	}
	if c.Candidates.PromoteNetworks < 0 {
		bad("candidates.promote_networks", "must be >= 0 (0 turns automatic promotion off)")
	}
	if c.Candidates.PromoteDays < 1 {
		bad("candidates.promote_days", "must be >= 1")
	}
	if a := c.API.Listen; a != "" {
		if _, port, err := net.SplitHostPort(a); err != nil {
			bad("api.listen", "%v", err)
		} else if port == "" || port == "0" {
			bad("api.listen", "%q: needs a port", a)
		}
		if len(c.API.Token) < 16 {
			bad("api.token", "must be set, at least 16 characters, when api.listen is")
		}
	}
	if c.API.SampleEvery.Duration < time.Second {
		bad("api.sample_every", "must be at least 1s")
	}
	if c.API.Samples < 2 || c.API.Samples > maxSamples {
		bad("api.samples", "must be from 2 to %d", maxSamples)
	}
	return errs
}
