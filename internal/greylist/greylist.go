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
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
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
	// SPF, if set, keys tuples of SPF-passing senders on their domain
	// (see CheckAttempt). Selective lets a sender domain that passed
	// greylisting with SPF before skip it (greylist.mode = "selective").
	SPF       *SPF
	Selective bool
	// FailOpen passes an attempt the store cannot decide (store.unreachable
	// = "open") instead of returning the error; Decision.StoreErr has it.
	FailOpen bool
	// Privacy stores tuple keys as SHA-1 hashes and no client address
	// (postgrey's --privacy).
	Privacy bool
	Now     func() time.Time // for tests; nil means time.Now
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
	// StoreErr is why a FailOpen greylister passed without a decision.
	StoreErr error
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
	addr := a.Client.Unmap().String()
	if g.Privacy {
		addr = ""
	}
	domain, spfPass := g.SPF.Pass(ctx, a.Client, a.Helo, a.Sender)
	if spfPass {
		if g.Selective {
			if _, err := g.Store.Get(ctx, store.Grey, KnownKey(domain)); err == nil {
				greyPass.Inc()
				return Decision{Key: KnownKey(domain), Outcome: store.GreyPass, SPFDomain: domain, Known: true}, nil
			}
		}
		// A tuple pending under the network key keeps it.
		_, err := g.Store.Get(ctx, store.Grey, g.storedKey(key))
		switch {
		case errors.Is(err, store.ErrNotFound):
			key = DomainKey(domain, a.Sender, a.Rcpt)
		case err != nil:
			return g.storeFailed(key, err)
		}
	}
	key = g.storedKey(key)
	e, out, err := g.Store.Greylist(ctx, key, addr, now, g.Params)
	if err != nil {
		return g.storeFailed(key, err)
	}
	countOutcome(out, e, now)
	d := Decision{Key: key, Outcome: out, Entry: e}
	if spfPass {
		d.SPFDomain = domain
	}
	if out != store.GreyPass {
		d.RetryIn = max(e.Pass.Sub(now), 0)
	} else if spfPass && out == store.GreyPass {
		g.rememberSender(ctx, domain, addr, now)
	}
	return d, nil
}

// storeFailed is CheckAttempt's answer when the store fails: the error, or
// with FailOpen a pass that carries it.
func (g *Greylister) storeFailed(key string, err error) (Decision, error) {
	storeErrors.Inc()
	err = fmt.Errorf("greylist %q: %w", key, err)
	if g.FailOpen {
		return Decision{Key: key, Outcome: store.GreyPass, StoreErr: err}, nil
	}
	return Decision{}, err
}

// DomainKey is the tuple key of an SPF-passing sender: the domain takes
// the place of the client's network.
func DomainKey(domain, sender, rcpt string) string {
	return "spf:" + strings.ToLower(domain) + " " + NormalizeSender(sender) + " " + strings.ToLower(rcpt)
}

// KnownKey is the grey entry that records a sender domain which passed
// greylisting with SPF; selective mode lets such a domain skip it.
func KnownKey(domain string) string { return "spf-known:" + strings.ToLower(domain) }

// storedKey is the key a tuple is stored under: itself, or its hash in
// privacy mode.
func (g *Greylister) storedKey(key string) string {
	if g.Privacy {
		return HashKey(key)
	}
	return key
}

// rememberSender records (or extends) the known-sender entry of domain.
// A failure only costs selective mode a shortcut, so it is not returned.
func (g *Greylister) rememberSender(ctx context.Context, domain, client string, now time.Time) {
	created := now
	if e, err := g.Store.Get(ctx, store.Grey, KnownKey(domain)); err == nil {
		if now.Sub(e.Updated) < 10*time.Minute {
			return // refreshed recently: spare the store a write per delivery
		}
		created = e.Created
	}
	g.Store.Put(ctx, store.Entry{Kind: store.Grey, Key: KnownKey(domain), Reason: "passed greylisting with SPF",
		Source: "greylist", Created: created, Updated: now, Passed: now, Expires: now.Add(g.Params.PassedTTL),
		Client: client})
}

// Key returns the tuple key for a client address, envelope sender and
// recipient. The sender "" is the null reverse-path.
func Key(client netip.Addr, v4bits, v6bits int, sender, rcpt string) string {
	return ClientPrefix(client, v4bits, v6bits).String() + " " + NormalizeSender(sender) + " " + strings.ToLower(rcpt)
}

// HashKey is the stored form of a tuple key under Privacy.
func HashKey(key string) string {
	h := sha1.Sum([]byte(key))
	return hex.EncodeToString(h[:])
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

// NormalizeSender lower-cases an envelope sender and strips the parts that
// change from message to message. "" (null sender) stays "". It runs for
// every RCPT, so it is written out rather than made of regexps; the rules:
//
//   - SRS0=hash=tt=domain=local@forwarder names the original sender: key on
//     local@domain, since hash and timestamp change with every message;
//   - BATV (draft-levine-smtp-batv) "prvs=tag=" before the local part, and
//     Microsoft's and others' variants (msprvsN=, btvN=), are dropped; for
//     "prvs=local=tag", the order some senders use, postgrey's rule picks
//     the part that does not look like a tag;
//   - a "+extension" is dropped;
//   - VERP and per-message bounce tokens: runs of 16 or more letters and
//     digits that contain a digit become '#', then every run of digits
//     becomes '#' (as postgrey does for digits).
func NormalizeSender(s string) string {
	s = strings.ToLower(s)
	if s == "" {
		return ""
	}
	if orig, ok := srs0(s); ok {
		s = orig
	}
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return s
	}
	local, domain := batv(s[:at]), s[at:]
	if i := strings.IndexByte(local, '+'); i > 0 {
		local = local[:i]
	}
	if !strings.ContainsAny(local, "0123456789") {
		return local + domain
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(local); {
		j := i
		for j < len(local) && isAlnum(local[j]) {
			j++
		}
		if j > i {
			run := local[i:j]
			if len(run) >= 16 && strings.ContainsAny(run, "0123456789") {
				b = append(b, '#')
			} else {
				b = appendDigitsHashed(b, run)
			}
			i = j
			continue
		}
		b = append(b, local[i])
		i++
	}
	return string(b) + domain
}

func isAlnum(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// appendDigitsHashed appends run with each run of digits as one '#'.
func appendDigitsHashed(b []byte, run string) []byte {
	for i := 0; i < len(run); i++ {
		if !isDigit(run[i]) {
			b = append(b, run[i])
			continue
		}
		b = append(b, '#')
		for i+1 < len(run) && isDigit(run[i+1]) {
			i++
		}
	}
	return b
}

// srs0 returns local@domain of an SRS0 address "srs0=H=T=domain=local@fwd"
// (the separator after srs0 may also be '+' or '-').
func srs0(s string) (string, bool) {
	if len(s) < 5 || !strings.HasPrefix(s, "srs0") || (s[4] != '=' && s[4] != '+' && s[4] != '-') {
		return "", false
	}
	rest := s[5:]
	var f [3]string
	for i := range f {
		j := strings.IndexByte(rest, '=')
		if j <= 0 {
			return "", false
		}
		f[i], rest = rest[:j], rest[j+1:]
	}
	at := strings.LastIndexByte(rest, '@')
	if at <= 0 || at == len(rest)-1 || strings.IndexByte(rest[:at], '\n') >= 0 {
		return "", false // (the local part never holds a line break in real mail)
	}
	return rest[:at] + "@" + f[2], true
}

// batv strips a BATV prefix from a local part.
func batv(local string) string {
	eq := strings.IndexByte(local, '=')
	if eq < 0 {
		return local
	}
	scheme := local[:eq]
	switch {
	case scheme == "prvs":
	case strings.HasPrefix(scheme, "msprvs") && allDigits(scheme[6:]):
	case strings.HasPrefix(scheme, "btv") && allDigits(scheme[3:]):
	default:
		return local
	}
	rest := local[eq+1:]
	end := strings.IndexAny(rest, "=@")
	if end <= 0 || rest[end] != '=' {
		return local
	}
	tag, user := rest[:end], rest[end+1:]
	// postgrey: "prvs=loc-core=tag-val" also occurs; take the part that
	// does not look like a tag.
	if scheme == "prvs" && !strings.Contains(user, "=") && looksLikeTag(user) && !looksLikeTag(tag) {
		return tag
	}
	return user
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// looksLikeTag is postgrey's /^[0-9a-z]{10}/.
func looksLikeTag(s string) bool {
	if len(s) < 10 {
		return false
	}
	for i := 0; i < 10; i++ {
		if !isAlnum(s[i]) {
			return false
		}
	}
	return true
}
