// Package classify decides which path a connecting host takes (white, grey
// or black) and says why.
//
// The same code answers the SMTP listener at connect time and `greypit db
// why`, so what the operator is told is exactly what the daemon does.
package classify

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/greypit/greypit/internal/bigsenders"
	"github.com/greypit/greypit/internal/dnsbl"
	"github.com/greypit/greypit/internal/lists"
	"github.com/greypit/greypit/internal/store"
)

// Path is one of the three ways through greypit.
type Path string

// The paths.
const (
	White Path = "white"
	Grey  Path = "grey"
	Black Path = "black"
)

// Decision is a path and what decided it.
type Decision struct {
	Path Path `json:"path"`
	// Rule names the deciding rule in words an operator can act on, e.g.
	// "lists.allow /etc/greypit/allow:3 (192.0.2.0/24)".
	Rule string `json:"rule"`
	// Reason is the listing reason for black hosts (shown to the client).
	Reason string `json:"reason,omitempty"`
	// Entry is the store entry that decided, if one did.
	Entry *store.Entry `json:"entry,omitempty"`
	// List is the list file entry that decided, if one did.
	List *lists.Source `json:"list,omitempty"`
	// Listings are all block lists covering the address when a block
	// list decided; Reason joins their messages.
	Listings []lists.Listing `json:"listings,omitempty"`
	// DNSBL is what the DNS lists said, when they were asked.
	DNSBL *dnsbl.Result `json:"dnsbl,omitempty"`
	// BigSender is the big-sender network that decided, if one did.
	BigSender *bigsenders.Source `json:"bigsender,omitempty"`
}

// Classifier combines the operator's lists with the store.
type Classifier struct {
	Lists *lists.Set
	Store store.Store
	// DNSBL, if set, is asked about hosts the lists and the store leave
	// open (see dnsbl.go); BigSenders, if set, holds the big providers'
	// networks; Selective lets good DNSBL scores skip greylisting.
	DNSBL      *dnsbl.Checker
	BigSenders *bigsenders.Set
	Selective  bool

	// tuned, once Swap has been called, replaces the three fields above.
	tuned atomic.Pointer[Sources]
}

// Sources are the parts of a Classifier a reload may change.
type Sources struct {
	DNSBL      *dnsbl.Checker
	BigSenders *bigsenders.Set
	Selective  bool
}

// Swap puts src in force for the classifications that start after it.
func (c *Classifier) Swap(src Sources) { c.tuned.Store(&src) }

// Sources returns the sources in force.
func (c *Classifier) Sources() Sources {
	if p := c.tuned.Load(); p != nil {
		return *p
	}
	return Sources{DNSBL: c.DNSBL, BigSenders: c.BigSenders, Selective: c.Selective}
}

// Classify decides the path of addr. Precedence, first match wins:
//
//  1. the allow list (operator's files): white;
//  2. a black store entry (trap hit, verdict, operator): black;
//  3. a white store entry made by an operator (not by greylisting): white;
//  4. the block lists (lists.block, lists.drop, lists.spamd_conf): black;
//  5. a big sender's network (bigsenders): white;
//  6. a white store entry earned by passing greylisting: white;
//  7. a DNSBL score at or above dnsbl.threshold: black;
//  8. in selective mode, a DNSBL score at or below dnsbl.allow_threshold:
//     white;
//  9. otherwise grey.
//
// The DNSBL lookups start right after the allow list is checked and run
// while the store is read; they are cancelled when an earlier rule
// decides.
//
// A store error is returned with a grey decision: greylisting then answers
// with a temporary failure, which loses nothing.
func (c *Classifier) Classify(ctx context.Context, addr netip.Addr) (Decision, error) {
	addr = addr.Unmap()
	// Found values are copied before their address is taken, so a miss
	// (the usual case, on every request) allocates nothing.
	if src, ok := c.Lists.Allow().Lookup(addr); ok {
		src := src
		return Decision{Path: White, Rule: "lists.allow " + where(src), List: &src}, nil
	}
	src := c.Sources()
	if src.DNSBL.Enabled() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
	}
	dnsblResult := startDNSBL(ctx, src.DNSBL, addr)
	black, err := c.Store.Match(ctx, store.Black, addr)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return Decision{Path: Grey, Rule: "store unavailable"}, fmt.Errorf("classify: black lookup: %w", err)
	}
	if err == nil {
		black := black
		return Decision{Path: Black, Rule: "store black " + describe(&black), Reason: blackReason(&black), Entry: &black}, nil
	}
	// All covering white entries: a greylist-earned address entry must not
	// hide an operator's white prefix around it.
	whites, err := c.Store.MatchAll(ctx, store.White, addr)
	if err != nil {
		return Decision{Path: Grey, Rule: "store unavailable"}, fmt.Errorf("classify: white lookup: %w", err)
	}
	var manual, earned *store.Entry
	for i := range whites {
		switch e := &whites[i]; {
		case e.Source == SourceGreylist && earned == nil:
			earned = e
		case e.Source != SourceGreylist && manual == nil:
			manual = e
		}
	}
	if manual != nil {
		return Decision{Path: White, Rule: "store white " + describe(manual), Entry: manual}, nil
	}
	if ls := c.Lists.Blocked(addr); len(ls) > 0 {
		rule := ls[0].Describe()
		if len(ls) > 1 {
			rule += fmt.Sprintf(" and %d more list(s)", len(ls)-1)
		}
		return Decision{Path: Black, Rule: rule, Reason: lists.Messages(ls), List: &ls[0].Source, Listings: ls}, nil
	}
	if d, ok := bigSender(src.BigSenders, addr); ok {
		return d, nil
	}
	if earned != nil {
		return Decision{Path: White, Rule: "store white " + describe(earned), Entry: earned}, nil
	}
	if d, ok := dnsblDecision(dnsblResult, src.Selective); ok {
		return d, nil
	}
	return Decision{Path: Grey, Rule: "no entry: unknown hosts are greylisted", DNSBL: dnsblResult()}, nil
}

// SourceGreylist marks white entries earned by passing greylisting.
const SourceGreylist = "greylist"

func where(s lists.Source) string {
	return fmt.Sprintf("%s:%d (%s)", s.File, s.Line, s.Text)
}

func describe(e *store.Entry) string {
	s := e.Key
	if e.Source != "" {
		s += ", source " + e.Source
	}
	if e.Reason != "" {
		s += ", reason " + fmt.Sprintf("%q", e.Reason)
	}
	if !e.Expires.IsZero() {
		s += ", expires " + e.Expires.UTC().Format(time.RFC3339)
	}
	return s
}

// SourceTrap marks black entries made by a spamtrap hit (package traps).
const SourceTrap = "trap"

// TrapReason is what a host blacklisted by a trap hit is told: the entry's
// own reason names the trap, which must not reach the spammer.
const TrapReason = "listed as a spam source"

func blackReason(e *store.Entry) string {
	if e.Source == SourceTrap {
		return TrapReason
	}
	if e.Reason != "" {
		return e.Reason
	}
	return "blacklisted"
}
