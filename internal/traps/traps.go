// Package traps owns spamtraps: deciding whether an envelope address is a
// trap, and what a grey host that used one deserves.
//
// A trap is an address no real correspondent writes to: one listed in the
// trap files (traps.files) or stored as a spamtrap entry, any address
// under the harvester page's domain (traps.web_domain), and, when
// traps.domains is set, any recipient outside the domains greypit
// receives for (OpenBSD spamd's alloweddomains). A grey host that sends
// from or to one is blacklisted at once, for traps.black_ttl doubled per
// earlier hit. The SMTP session, the policy server and anything else
// call the same Check and Record, so the exemptions below hold everywhere:
//
//   - only grey hosts are trapped: white and allow-listed hosts never are
//     (a trap hit from a trusted host is a typo or an address book, not
//     spam), and black hosts are black already;
//   - postmaster@ and abuse@ of any domain never are traps (RFC 2142 §4;
//     RFC 5321 §4.5.1 requires postmaster to work);
//   - nothing is trapped in a message from the null sender: a bounce to a
//     trap is backscatter from an innocent MTA whose spam forged our
//     trap as its sender (RFC 5321 §4.5.5).
package traps

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/greypit/greypit/internal/classify"
	"github.com/greypit/greypit/internal/store"
)

// SourceTrap marks black entries made by a trap hit.
const SourceTrap = classify.SourceTrap

// Checker decides trap hits and records them.
type Checker struct {
	Classifier *classify.Classifier
	Store      store.Store
	Files      *Files   // traps.files; nil: none
	Domains    []string // traps.domains, lower-case; empty: every domain is ours
	WebDomain  string   // traps.web_domain; "": no harvester page
	BlackTTL   time.Duration
	MaxTTL     time.Duration
	Keep       time.Duration // trap hits are kept (and counted) this long
	Now        func() time.Time
}

// Hit is one trap address in an envelope.
type Hit struct {
	Field   string         // "from" or "rcpt"
	Address string         // the trap address, canonical
	Rule    string         // why it is a trap
	Harvest *store.Harvest // the harvester page visit that published it, if any
}

func (c *Checker) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Check reports whether the envelope of a session from client uses a
// trap: the sender from (as sent, without angle brackets) or the
// recipient rcpt ("" to check only the sender, at MAIL). A store error is
// returned with no hit: failing open keeps mail flowing.
func (c *Checker) Check(ctx context.Context, client netip.Addr, from, rcpt string) (Hit, bool, error) {
	if c == nil || from == "" {
		return Hit{}, false, nil // the null sender: see the package comment
	}
	d, err := c.Classifier.Classify(ctx, client)
	if err != nil {
		return Hit{}, false, err
	}
	if d.Path != classify.Grey {
		return Hit{}, false, nil
	}
	return c.CheckGrey(ctx, from, rcpt)
}

// CheckGrey is Check for a client its caller has just classified grey
// (the policy server), which saves classifying it twice per request.
func (c *Checker) CheckGrey(ctx context.Context, from, rcpt string) (Hit, bool, error) {
	if c == nil || from == "" {
		return Hit{}, false, nil
	}
	if h, ok, err := c.trap(ctx, "from", from, false); ok || err != nil {
		return h, ok, err
	}
	if rcpt == "" {
		return Hit{}, false, nil
	}
	return c.trap(ctx, "rcpt", rcpt, true)
}

// trap decides one address; the domains rule applies to recipients only
// (any sender domain is fine, recipients must be ours).
func (c *Checker) trap(ctx context.Context, field, addr string, isRcpt bool) (Hit, bool, error) {
	a, err := Canonical(addr)
	if err != nil {
		return Hit{}, false, nil // not a mail address we can judge (e.g. bare "postmaster")
	}
	local, domain := split(a)
	if IsRole(local) {
		return Hit{}, false, nil
	}
	hit := Hit{Field: field, Address: a}
	if c.WebDomain != "" && inDomain(domain, c.WebDomain) {
		hit.Rule = "traps.web_domain " + c.WebDomain
		h, err := c.Store.GetHarvest(ctx, a)
		switch {
		case err == nil:
			hit.Harvest = &h
		case !errors.Is(err, store.ErrNotFound):
			return Hit{}, false, fmt.Errorf("traps: harvest lookup: %w", err)
		}
		return hit, true, nil
	}
	for _, k := range keys(a) {
		if src, ok := c.Files.Lookup(k); ok {
			hit.Rule = fmt.Sprintf("traps.files %s:%d", src.File, src.Line)
			return hit, true, nil
		}
		_, err := c.Store.Get(ctx, store.Trap, k)
		if err == nil {
			hit.Rule = "store spamtrap " + k
			return hit, true, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return Hit{}, false, fmt.Errorf("traps: spamtrap lookup: %w", err)
		}
	}
	if isRcpt && len(c.Domains) > 0 && !c.ours(domain) {
		hit.Rule = "traps.domains: " + domain + " is not ours"
		return hit, true, nil
	}
	return Hit{}, false, nil
}

func (c *Checker) ours(domain string) bool {
	for _, d := range c.Domains {
		if inDomain(domain, d) {
			return true
		}
	}
	return false
}

// inDomain reports whether domain is d or a subdomain of it.
func inDomain(domain, d string) bool {
	d = strings.ToLower(strings.TrimSuffix(d, "."))
	return domain == d || strings.HasSuffix(domain, "."+d)
}

// keys are the spellings of a that a trap entry may be written as: the
// address itself, and without a "+detail" sub-address (mail to
// bait+x@ reaches bait@).
func keys(a string) []string {
	local, domain := split(a)
	if i := strings.IndexByte(local, '+'); i > 0 {
		return []string{a, local[:i] + "@" + domain}
	}
	return []string{a}
}

func split(a string) (local, domain string) {
	i := strings.LastIndexByte(a, '@')
	return a[:i], a[i+1:]
}

// IsRole reports whether local is a role address that must always reach
// a human (RFC 2142 §4 abuse, RFC 5321 §4.5.1 postmaster), with or
// without a sub-address.
func IsRole(local string) bool {
	local, _, _ = strings.Cut(local, "+")
	return local == "postmaster" || local == "abuse"
}

// Canonical validates a mail address and returns its spamtrap key
// (store.ParseTrapKey).
func Canonical(s string) (string, error) { return store.ParseTrapKey(s) }

// Record blacklists client for hit and keeps the hit as evidence. The
// listing lasts BlackTTL, doubled for each earlier hit of the client still
// kept, at most MaxTTL. It returns the black entry.
func (c *Checker) Record(ctx context.Context, client netip.Addr, helo, from string, hit Hit) (store.Entry, error) {
	now := c.now()
	client = client.Unmap()
	th := store.TrapHit{
		Time: now, Client: client.String(), Helo: helo, From: from, Field: hit.Field,
		Address: hit.Address, Rule: hit.Rule, Harvest: hit.Harvest, Expires: now.Add(c.Keep),
	}
	prior, err := c.Store.AddTrapHit(ctx, th)
	if err != nil {
		return store.Entry{}, fmt.Errorf("traps: recording the hit: %w", err)
	}
	th.Prior = prior
	ttl := c.BlackTTL
	for i := 0; i < prior && ttl < c.MaxTTL; i++ {
		ttl *= 2
	}
	ttl = min(ttl, c.MaxTTL)
	e := store.Entry{
		Kind: store.Black, Key: store.AddrKey(client), Source: SourceTrap,
		Reason:  Describe(th),
		Created: now, Updated: now, Expires: now.Add(ttl), Count: int64(prior) + 1,
	}
	if err := c.Store.Put(ctx, e); err != nil {
		return store.Entry{}, fmt.Errorf("traps: blacklisting %s: %w", client, err)
	}
	return e, nil
}

// Describe is the evidence of a hit in one line: the sending host, the
// trap, why it is one, and the harvester that collected it.
func Describe(h store.TrapHit) string {
	field := "RCPT TO"
	if h.Field == "from" {
		field = "MAIL FROM"
	}
	s := fmt.Sprintf("spamtrap hit by %s", h.Client)
	if h.Helo != "" {
		s += " (helo " + h.Helo + ")"
	}
	s += fmt.Sprintf(" at %s: %s <%s> (%s)", h.Time.UTC().Format(time.RFC3339), field, h.Address, h.Rule)
	if v := h.Harvest; v != nil {
		s += fmt.Sprintf("; harvested by %s at %s", v.Visitor, v.Time.UTC().Format(time.RFC3339))
		if v.UserAgent != "" {
			s += fmt.Sprintf(" (user agent %q)", v.UserAgent)
		}
	}
	if h.Prior > 0 {
		s += fmt.Sprintf("; %d earlier hit(s)", h.Prior)
	}
	return s
}

// CheckAndRecord is Check followed, on a hit, by Record: what an SMTP
// path calls per MAIL (rcpt "") and per RCPT. hit reports a trap hit even
// when recording it failed (err set): the caller should still treat the
// session as trapped.
func (c *Checker) CheckAndRecord(ctx context.Context, client netip.Addr, helo, from, rcpt string) (h Hit, e store.Entry, hit bool, err error) {
	h, hit, err = c.Check(ctx, client, from, rcpt)
	if !hit || err != nil {
		return h, store.Entry{}, false, err
	}
	e, err = c.Record(ctx, client, helo, from, h)
	return h, e, true, err
}
