package server_test

import (
	"testing"
	"time"

	"github.com/greypit/greypit/internal/greylist"
	"github.com/greypit/greypit/internal/server"
	"github.com/greypit/greypit/internal/store"
)

// Reload applies to connections accepted after it; a session already
// running keeps the settings it started with.
func TestReloadNewSessions(t *testing.T) {
	f := newFixture(t, config{})
	old := f.dial(t)
	old.expect(220, "", hostname+" ESMTP greypit")

	set := &server.Settings{
		Greylist: &greylist.Greylister{Store: f.store, PrefixV4: 24, PrefixV6: 64, Now: f.clock.Now,
			Params: store.GreyParams{PassDelay: time.Minute, RetryWindow: time.Hour, PassedTTL: time.Hour}},
		Black:       server.Reject{Hostname: "new.greypit.test"},
		Session:     f.srv.Session,
		WhiteTTL:    time.Hour,
		MaxSessions: 1,
	}
	set.Session.Hostname = "new.greypit.test"
	f.srv.Reload(set)

	old.cmd("EHLO client.test", 250, "", hostname)
	// The old session holds the only slot of the new max_sessions.
	busy := f.dial(t)
	busy.expect(421, "4.3.2", "new.greypit.test Too busy")
	old.cmd("QUIT", 221, "2.0.0", hostname+" closing connection")
	f.waitIdle(t)

	c := f.dial(t)
	c.expect(220, "", "new.greypit.test ESMTP greypit")
	c.cmd("EHLO client.test", 250, "", "new.greypit.test")
	c.cmd("MAIL FROM:<a@example.org>", 250, "", "")
	c.cmd("RCPT TO:<b@example.test>", 451, "4.7.1", "")
	// The new greylister's one-minute delay: two minutes on, the retry
	// reaches the (refusing) backend instead of being greylisted again.
	f.clock.Advance(2 * time.Minute)
	c.cmd("RCPT TO:<b@example.test>", 451, "4.4.1", "mail server unavailable") // under the old 5m: 4.7.1
}
