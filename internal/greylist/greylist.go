// Package greylist builds greylist tuple keys and turns store outcomes into
// SMTP decisions.
//
// The key is (client prefix, normalised sender, recipient). Keying on the
// prefix rather than the address lets a sender's retry from another host of
// the same pool pass; normalising the sender strips the per-message parts
// that bounce and list software put in envelope senders (VERP, BATV, SRS,
// sub-addresses), which would otherwise make every retry a new tuple.
package greylist

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"time"

	"github.com/greypit/greypit/internal/store"
)

// Greylister decides delivery attempts of grey hosts.
type Greylister struct {
	Store    store.Store
	Params   store.GreyParams
	PrefixV4 int
	PrefixV6 int
	Now      func() time.Time // for tests; nil means time.Now
	// SPF, if set, keys tuples of SPF-passing senders on their domain
	// (see CheckAttempt). Selective lets a sender domain that passed
	// greylisting with SPF before skip it (greylist.mode = "selective").
	SPF       *SPF
	Selective bool
}

// Decision is the result of one attempt.
type Decision struct {
	Key     string
	Outcome store.GreyOutcome
	Entry   store.Entry
	// RetryIn is how long until a retry passes (zero when Outcome is pass).
	RetryIn time.Duration
	// SPFDomain is the sender domain that passed SPF, if one did.
	SPFDomain string
	// Known is set when selective mode passed a known SPF sender without
	// a tuple.
	Known bool
}

// Check records an attempt of (client, sender, rcpt) and decides it.
func (g *Greylister) Check(ctx context.Context, client netip.Addr, sender, rcpt string) (Decision, error) {
	return g.CheckAttempt(ctx, Attempt{Client: client, Sender: sender, Rcpt: rcpt})
}

// Attempt is one recipient of a delivery attempt.
type Attempt struct {
	Client netip.Addr
	Helo   string // the client's HELO/EHLO name, for SPF
	Sender string // "" is the null reverse-path
	Rcpt   string
}

// CheckAttempt records an attempt and decides it. When the sender's
// domain passes SPF for the client, the tuple keys on that domain instead
// of the client's network (DomainKey), so a retry from any address the
// domain authorises counts; a tuple already pending under the network key
// keeps that key, so turning SPF keying on loses no greylisting progress.
func (g *Greylister) CheckAttempt(ctx context.Context, a Attempt) (Decision, error) {
	now := time.Now()
	if g.Now != nil {
		now = g.Now()
	}
	key := Key(a.Client, g.PrefixV4, g.PrefixV6, a.Sender, a.Rcpt)
	domain, spfPass := g.SPF.Pass(ctx, a.Client, a.Helo, a.Sender)
	if spfPass {
		if g.Selective {
			if _, err := g.Store.Get(ctx, store.Grey, KnownKey(domain)); err == nil {
				greyPass.Inc()
				return Decision{Key: KnownKey(domain), Outcome: store.GreyPass, SPFDomain: domain, Known: true}, nil
			}
		}
		_, err := g.Store.Get(ctx, store.Grey, key)
		switch {
		case errors.Is(err, store.ErrNotFound):
			key = DomainKey(domain, a.Sender, a.Rcpt)
		case err != nil:
			return Decision{}, fmt.Errorf("greylist %q: %w", key, err)
		}
	}
	e, out, err := g.Store.Greylist(ctx, key, a.Client.Unmap().String(), now, g.Params)
	if err != nil {
		storeErrors.Inc()
		return Decision{}, fmt.Errorf("greylist %q: %w", key, err)
	}
	countOutcome(out, e, now)
	d := Decision{Key: key, Outcome: out, Entry: e}
	if spfPass {
		d.SPFDomain = domain
	}
	if out != store.GreyPass {
		d.RetryIn = max(e.Pass.Sub(now), 0)
	} else if spfPass && out == store.GreyPass {
		g.rememberSender(ctx, domain, a.Client, now)
	}
	return d, nil
}

// DomainKey is the tuple key of an SPF-passing sender: the domain takes
// the place of the client's network.
func DomainKey(domain, sender, rcpt string) string {
	return "spf:" + strings.ToLower(domain) + " " + NormalizeSender(sender) + " " + strings.ToLower(rcpt)
}

// KnownKey is the grey entry that records a sender domain which passed
// greylisting with SPF; selective mode lets such a domain skip it.
func KnownKey(domain string) string { return "spf-known:" + strings.ToLower(domain) }

// rememberSender records (or extends) the known-sender entry of domain.
// A failure only costs selective mode a shortcut, so it is not returned.
func (g *Greylister) rememberSender(ctx context.Context, domain string, client netip.Addr, now time.Time) {
	created := now
	if e, err := g.Store.Get(ctx, store.Grey, KnownKey(domain)); err == nil {
		if now.Sub(e.Updated) < 10*time.Minute {
			return // refreshed recently: spare the store a write per delivery
		}
		created = e.Created
	}
	g.Store.Put(ctx, store.Entry{Kind: store.Grey, Key: KnownKey(domain), Reason: "passed greylisting with SPF",
		Source: "greylist", Created: created, Updated: now, Passed: now, Expires: now.Add(g.Params.PassedTTL),
		Client: client.Unmap().String()})
}

// Key returns the tuple key for a client address, envelope sender and
// recipient. The sender "" is the null reverse-path.
func Key(client netip.Addr, v4bits, v6bits int, sender, rcpt string) string {
	return ClientPrefix(client, v4bits, v6bits).String() + " " + NormalizeSender(sender) + " " + strings.ToLower(rcpt)
}

// ClientPrefix masks a client address to its greylisting prefix.
func ClientPrefix(a netip.Addr, v4bits, v6bits int) netip.Prefix {
	a = a.Unmap()
	bits := v6bits
	if a.Is4() {
		bits = v4bits
	}
	p, err := a.Prefix(bits)
	if err != nil { // bits out of range; config validation prevents it
		return netip.PrefixFrom(a, a.BitLen())
	}
	return p
}

var (
	// BATV (draft-levine-smtp-batv) prefixes "prvs=tag=" to the local part;
	// Microsoft and others use variants of the same shape.
	batvRE = regexp.MustCompile(`^(?:prvs|msprvs\d*|btv\d*)=[^=@]+=`)
	// SRS0=hash=tt=domain=local@forwarder names the original sender; key on
	// that, since hash and timestamp change with every message.
	srs0RE = regexp.MustCompile(`^srs0[=+-][^=]+=[^=]+=([^=]+)=(.+)@[^@]+$`)
	// VERP and per-message bounce tokens: runs of digits, and long tokens
	// mixing letters and digits, become '#' (as postgrey does for digits).
	digitsRE = regexp.MustCompile(`\d+`)
	tokenRE  = regexp.MustCompile(`[0-9a-z]{16,}`)
)

// NormalizeSender lower-cases an envelope sender and strips the parts that
// change from message to message. "" (null sender) stays "".
func NormalizeSender(s string) string {
	s = strings.ToLower(s)
	if s == "" {
		return ""
	}
	if m := srs0RE.FindStringSubmatch(s); m != nil {
		s = m[2] + "@" + m[1]
	}
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return s
	}
	local, domain := s[:at], s[at:]
	local = batvRE.ReplaceAllString(local, "")
	if i := strings.IndexByte(local, '+'); i > 0 {
		local = local[:i]
	}
	local = tokenRE.ReplaceAllStringFunc(local, func(t string) string {
		if strings.ContainsAny(t, "0123456789") {
			return "#"
		}
		return t
	})
	local = digitsRE.ReplaceAllString(local, "#")
	return local + domain
}
