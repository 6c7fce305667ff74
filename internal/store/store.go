// Package store owns greypit's persistent state: greylist tuples, white and
// black entries, and spamtrap addresses, each with an expiry.
//
// Callers see only the Store interface, so the embedded bbolt file (the
// default, one crash-safe file) and a networked backend shared by several MX
// hosts are interchangeable. The one operation that must be atomic across
// hosts, recording a greylist attempt and deciding its outcome, is a single
// method (Greylist) rather than a read-modify-write in the caller.
package store

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Kind is the type of an entry.
type Kind string

// The entry kinds. Their string values are the ones `greypit db -type` takes.
const (
	White Kind = "white"
	Grey  Kind = "grey"
	Black Kind = "black"
	Trap  Kind = "spamtrap"
)

// Kinds lists every kind, in display order.
var Kinds = []Kind{White, Grey, Black, Trap}

// ParseKind validates a kind name.
func ParseKind(s string) (Kind, error) {
	for _, k := range Kinds {
		if string(k) == s {
			return k, nil
		}
	}
	return "", fmt.Errorf("unknown entry type %q (want white, grey, black or spamtrap)", s)
}

// ErrNotFound is returned by Get when no live entry exists.
var ErrNotFound = errors.New("store: entry not found")

// Entry is one record. Its JSON form is the dump/load line format.
//
// Keys: white and black entries are keyed by an address ("192.0.2.1",
// "2001:db8::1") or a prefix ("192.0.2.0/24"), see AddrKey and PrefixKey;
// grey entries by the greylist tuple key built by package greylist; spamtrap
// entries by the lower-cased mail address.
type Entry struct {
	Kind    Kind      `json:"type"`
	Key     string    `json:"key"`
	Reason  string    `json:"reason,omitempty"`
	Source  string    `json:"source,omitempty"` // who made it: "greylist", "db", "api", ...
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`          // last refresh (delivery, attempt)
	Expires time.Time `json:"expires,omitzero"` // zero: never expires
	Count   int64     `json:"count,omitempty"`  // grey: attempts; white: deliveries; black: hits
	Pass    time.Time `json:"pass,omitzero"`    // grey: earliest time a retry passes
	Passed  time.Time `json:"passed,omitzero"`  // grey: when a retry passed (zero while pending)
	Client  string    `json:"client,omitempty"` // grey: last client address seen for the tuple
}

// Live reports whether e has not expired at now.
func (e Entry) Live(now time.Time) bool {
	return e.Expires.IsZero() || now.Before(e.Expires)
}

// GreyParams are the greylist timings applied by Store.Greylist.
type GreyParams struct {
	PassDelay   time.Duration // a retry passes only this long after the first attempt
	RetryWindow time.Duration // a pending tuple is forgotten this long after its first attempt
	PassedTTL   time.Duration // a passed tuple is remembered this long after its last use
}

// GreyOutcome is what Store.Greylist decided for one attempt.
type GreyOutcome int

const (
	// GreyNew: first attempt of the tuple (or the old one expired); defer.
	GreyNew GreyOutcome = iota
	// GreyEarly: retried before the pass delay ran out; defer.
	GreyEarly
	// GreyPass: retried after the pass delay inside the retry window, or the
	// tuple passed before and is still remembered; accept.
	GreyPass
)

func (o GreyOutcome) String() string {
	switch o {
	case GreyNew:
		return "new"
	case GreyEarly:
		return "early"
	case GreyPass:
		return "pass"
	}
	return fmt.Sprintf("GreyOutcome(%d)", int(o))
}

// Store is the state backend. All methods are safe for concurrent use. Reads
// never return expired entries, whether or not Expire has swept them yet.
type Store interface {
	// Get returns the live entry of kind k under key, or ErrNotFound.
	Get(ctx context.Context, k Kind, key string) (Entry, error)
	// Match returns the most specific live white or black entry (k) whose
	// key is addr itself or a prefix containing addr, or ErrNotFound.
	Match(ctx context.Context, k Kind, addr netip.Addr) (Entry, error)
	// MatchAll returns every live white or black entry (k) covering addr,
	// most specific first; none is not an error.
	MatchAll(ctx context.Context, k Kind, addr netip.Addr) ([]Entry, error)
	// Put creates or replaces an entry.
	Put(ctx context.Context, e Entry) error
	// Delete removes an entry; it reports whether one existed.
	Delete(ctx context.Context, k Kind, key string) (bool, error)
	// List calls fn for every live entry of kind k (all kinds if k is ""),
	// in key order within a kind. fn must not call back into the store.
	List(ctx context.Context, k Kind, fn func(Entry) error) error
	// Greylist atomically records one delivery attempt of tuple key from
	// client at now and decides it. The returned entry is the stored state
	// after the attempt.
	Greylist(ctx context.Context, key, client string, now time.Time, p GreyParams) (Entry, GreyOutcome, error)
	// Refresh creates or extends a white entry for key: Updated=now,
	// Expires=now+ttl, Count+1, keeping Created and Reason of an existing
	// entry. It is how every delivery keeps a white host white.
	Refresh(ctx context.Context, key, reason, source string, now time.Time, ttl time.Duration) (Entry, error)
	// Expire deletes entries that expired at or before now and reports how
	// many it removed.
	Expire(ctx context.Context, now time.Time) (int, error)
	// EventLog keeps the session history for reports.
	EventLog

	// AddCandidateEvidence atomically records one reject of addr, an
	// unknown recipient, from a client in network, and returns the trap
	// candidate after it; a decided candidate keeps its state.
	AddCandidateEvidence(ctx context.Context, addr, network string, ev Evidence) (Candidate, error)
	// GetCandidate returns addr's candidate, or ErrNotFound.
	GetCandidate(ctx context.Context, addr string) (Candidate, error)
	// DecideCandidate sets addr's candidate state (creating the candidate
	// if there is none, so a rejection can come first).
	DecideCandidate(ctx context.Context, addr string, state CandidateState, by string, now time.Time) (Candidate, error)
	// Candidates calls fn for every candidate in address order.
	Candidates(ctx context.Context, fn func(Candidate) error) error

	// CountPass counts one greylist pass of the client at addrKey towards
	// auto-whitelisting (postgrey's rule: at most one per gap) and returns
	// the count; a counter unused for ttl starts again.
	CountPass(ctx context.Context, addrKey string, now time.Time, gap, ttl time.Duration) (int64, error)
	Close() error
	// TrapStore keeps harvester visits and trap hits (traps.go).
	TrapStore
	// DumpStore reads and restores what only dumps need (restore.go).
	DumpStore
}

// AddrKey is the key of a white or black entry for one address. IPv4-mapped
// IPv6 addresses are unmapped so both spellings meet.
func AddrKey(a netip.Addr) string { return a.Unmap().String() }

// PrefixKey is the key of a white or black entry for a prefix; a prefix
// covering a single address gets that address's key.
func PrefixKey(p netip.Prefix) string {
	p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-unmapBits(p.Addr())).Masked()
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}

func unmapBits(a netip.Addr) int {
	if a.Is4In6() {
		return 96
	}
	return 0
}

// ParseAddrKey parses an address or prefix as given by an operator and
// returns its canonical key.
func ParseAddrKey(s string) (string, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		if p.Addr().Is4In6() && p.Bits() < 96 {
			return "", fmt.Errorf("%q: IPv4-mapped prefix shorter than /96", s)
		}
		return PrefixKey(p), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return "", fmt.Errorf("%q is neither an IP address nor a CIDR prefix", s)
	}
	if a.Zone() != "" {
		return "", fmt.Errorf("%q: zoned addresses are not allowed", s)
	}
	return AddrKey(a), nil
}

// ParseTrapKey validates a mail address (local@domain, optionally in angle
// brackets) and returns its key as a spamtrap entry or trap candidate:
// lower-cased, with a trailing dot of the domain removed. Every path that
// names a trap (db, trap files, candidates, feedback) uses it, so they meet.
func ParseTrapKey(s string) (string, error) {
	a := strings.ToLower(strings.TrimSpace(s))
	a = strings.TrimSuffix(strings.TrimPrefix(a, "<"), ">")
	a = strings.TrimSuffix(a, ".")
	at := strings.LastIndexByte(a, '@')
	switch {
	case at <= 0 || at == len(a)-1:
		return "", fmt.Errorf("%q is not a mail address (local@domain)", s)
	case len(a) > 254 || at > 64:
		return "", fmt.Errorf("%q is too long for a mail address (RFC 5321 §4.5.3.1)", s)
	case strings.ContainsFunc(a, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '<' || r == '>' }):
		return "", fmt.Errorf("%q: spaces, control characters or angle brackets in a mail address", s)
	case strings.ContainsAny(a[at+1:], "@"), strings.HasPrefix(a[at+1:], "."), strings.HasSuffix(a[at+1:], "."), strings.Contains(a[at+1:], ".."):
		return "", fmt.Errorf("%q: bad domain", s)
	}
	return a, nil
}
