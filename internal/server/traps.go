package server

import (
	"context"
	"net"
	"net/netip"

	"github.com/greypit/greypit/internal/classify"
	"github.com/greypit/greypit/internal/metrics"
	"github.com/greypit/greypit/internal/session"
	"github.com/greypit/greypit/internal/tarpit"
	"github.com/greypit/greypit/internal/traps"
)

// trap is the session's Deps.Trap: a hit blacklists the host (package
// traps decides and records). A failed check lets the envelope through to
// greylisting; a failed record still tarpits the rest of the session.
func (s *Server) trap(ctx context.Context, tc *traps.Checker, a netip.Addr, helo, from, rcpt string) (string, bool) {
	h, e, hit, err := tc.CheckAndRecord(ctx, a, helo, from, rcpt)
	switch {
	case err != nil && !hit:
		s.Log.Warn("spamtrap check failed", "client", a.String(), "err", err)
		return "", false
	case err != nil:
		metrics.TrapHits.Inc()
		metrics.StoreErrors.With("trap").Inc()
		s.Log.Error("spamtrap hit not recorded", "client", a.String(), "err", err)
		return h.Field + " " + h.Address + " (" + h.Rule + ")", true
	case !hit:
		return "", false
	}
	metrics.TrapHits.Inc()
	return e.Reason, true
}

// trapDeps wires the trap check into a grey session's deps.
func (s *Server) trapDeps(d *session.Deps, tc *traps.Checker) {
	if tc != nil {
		d.Trap = func(ctx context.Context, a netip.Addr, helo, from, rcpt string) (string, bool) {
			return s.trap(ctx, tc, a, helo, from, rcpt)
		}
	}
}

// trappedToTarpit hands a session that hit a trap to the tarpit, which
// carries on from the session's state without a new greeting.
func (s *Server) trappedToTarpit(c net.Conn, set *Settings, id string, client netip.AddrPort, r session.Result, pending []byte) error {
	if s.Tarpit == nil {
		return tarpit.ErrStopped
	}
	info := tarpit.Info{ID: id, Client: client, Reason: classify.TrapReason, Rule: "spamtrap: " + r.Trap}
	err := s.Tarpit.AddResumed(c, info, pending, tarpit.Resume{Helo: r.Helo, HaveMail: true, From: r.From})
	if err == nil {
		activeBlack.Inc() // until LogTarpit
	} else {
		// The tarpit is full: end with a temporary refusal (RFC 5321 §3.8);
		// the host is black from its next connection on.
		s.toTarpitRefused(c, set)
	}
	return err
}
