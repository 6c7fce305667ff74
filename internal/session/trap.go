package session

import (
	"context"
	"fmt"
	"time"
)

// greylistedText is the deferral of a greylisted recipient. A trapped
// recipient gets the same text, with the full pass delay as a new tuple
// would, so the reply does not tell a trap from any other address.
func greylistedText(retryIn time.Duration) string {
	secs := int(retryIn.Round(time.Second) / time.Second)
	return fmt.Sprintf("Greylisted, please try again in %d seconds", max(secs, 1))
}

// isTrap asks Deps.Trap about the envelope so far plus rcpt ("" at MAIL).
func (s *Session) isTrap(ctx context.Context, rcpt string) bool {
	if s.deps.Trap == nil {
		return false
	}
	rule, hit := s.deps.Trap(ctx, s.client.Addr(), s.helo, s.from.String(), rcpt)
	if hit {
		s.res.Trap = rule
		s.log.Info("spamtrap hit", "client", s.client.Addr().String(), "rule", rule)
	}
	return hit
}

// checkTrap runs after MAIL was answered as usual.
func (s *Session) checkTrap(ctx context.Context, rcpt string) error {
	if s.trapped || !s.isTrap(ctx, rcpt) {
		return nil
	}
	return s.trappedEnd()
}

// trappedEnd ends the session after a trap hit so the caller hands it to
// the tarpit, with the reply already queued going first. Inside TLS the
// socket cannot be handed over (the tarpit speaks plaintext), so the
// session carries on itself, deferring every recipient and handing
// nothing to the backend.
func (s *Session) trappedEnd() error {
	if s.tls {
		s.trapped = true
		return nil
	}
	s.res.Outcome = "trapped"
	return errClose
}
