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
}

// Check records an attempt of (client, sender, rcpt) and decides it.
func (g *Greylister) Check(ctx context.Context, client netip.Addr, sender, rcpt string) (Decision, error) {
	now := time.Now()
	if g.Now != nil {
		now = g.Now()
	}
	key := Key(client, g.PrefixV4, g.PrefixV6, sender, rcpt)
	addr := client.Unmap().String()
	if g.Privacy {
		key, addr = HashKey(key), ""
	}
	e, out, err := g.Store.Greylist(ctx, key, addr, now, g.Params)
	if err != nil {
		return Decision{}, fmt.Errorf("greylist %q: %w", key, err)
	}
	d := Decision{Key: key, Outcome: out, Entry: e}
	if out != store.GreyPass {
		d.RetryIn = max(e.Pass.Sub(now), 0)
	}
	return d, nil
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
