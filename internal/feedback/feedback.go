// Package feedback turns verdicts into changes of a host's standing, and
// unknown-recipient rejects into trap candidates.
//
// Verdicts come from an operator (`greypit feedback`, the HTTP endpoint)
// or from the filters behind the MTA, read from their logs. A spam verdict
// removes the host's white entry and blacklists it; a ham verdict removes
// its black entry and whitelists it. Each change records where it came
// from (source) and why (reason) in the entry itself, which is what
// `greypit db why` prints.
//
// Verdicts read from logs are weaker than an operator's: they never
// override an operator's white entry (anything not earned by greylisting),
// so a partner listed by hand is not blacklisted by one filter's mistake.
package feedback

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/greypit/greypit/internal/classify"
	"github.com/greypit/greypit/internal/greylist"
	"github.com/greypit/greypit/internal/maillog"
	"github.com/greypit/greypit/internal/store"
)

// Verdict kinds.
const (
	Spam = "spam"
	Ham  = "ham"
)

// Verdict is one judgement of a client host.
type Verdict struct {
	Kind   string `json:"kind"`   // Spam or Ham
	Client string `json:"client"` // IP address
	Reason string `json:"reason,omitempty"`
	Source string `json:"source"` // "feedback:cli", "feedback:http", "follow:postfix-milter", ...
}

// Result says what a verdict or a candidate changed (or, in a dry run,
// would change).
type Result struct {
	Client  string        `json:"client,omitempty"`
	Address string        `json:"address,omitempty"`
	DryRun  bool          `json:"dry_run,omitempty"`
	Changes []string      `json:"changes,omitempty"`
	Skipped string        `json:"skipped,omitempty"` // why nothing changed
	Path    classify.Path `json:"path,omitempty"`    // the client's path afterwards
	Rule    string        `json:"rule,omitempty"`
	State   string        `json:"state,omitempty"` // candidate state afterwards
}

// Applier applies verdicts and candidates to a store.
type Applier struct {
	Store      store.Store
	Classifier *classify.Classifier
	BlackTTL   time.Duration // lifetime of a spam verdict's black entry
	WhiteTTL   time.Duration // lifetime of a ham verdict's white entry
	// PrefixV4/V6 group candidate clients into networks.
	PrefixV4, PrefixV6 int
	// Protected addresses are never proposed as traps (real and former
	// users); nil protects none.
	Protected *Protected
	// Automatic promotion: a pending candidate seen from at least
	// PromoteNetworks networks on at least PromoteDays days becomes a
	// spamtrap. PromoteNetworks 0 turns it off.
	PromoteNetworks, PromoteDays int
	// DryRun computes the changes without making them.
	DryRun bool
	Now    func() time.Time
}

func (a *Applier) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// fromLog reports whether a source is a log follower, whose verdicts do not
// override an operator's entries.
func fromLog(source string) bool { return strings.HasPrefix(source, "follow:") }

// ParseClient validates a client address for a verdict.
func ParseClient(s string) (netip.Addr, error) {
	ip, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil || ip.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("%q is not an IP address", s)
	}
	return ip.Unmap(), nil
}

// Apply applies one verdict.
func (a *Applier) Apply(ctx context.Context, v Verdict) (res Result, err error) {
	defer func() { countVerdict(v, res, err, a.DryRun) }()
	ip, err := ParseClient(v.Client)
	if err != nil {
		return Result{}, err
	}
	if v.Source == "" {
		return Result{}, errors.New("verdict without a source")
	}
	key := store.AddrKey(ip)
	res = Result{Client: key, DryRun: a.DryRun}
	now := a.now()
	reason := v.Kind + " verdict"
	if v.Reason != "" {
		reason += ": " + v.Reason
	}
	drop, keep := store.White, store.Black
	ttl := a.BlackTTL
	switch v.Kind {
	case Spam:
	case Ham:
		drop, keep, ttl = store.Black, store.White, a.WhiteTTL
	default:
		return Result{}, fmt.Errorf("unknown verdict %q (want spam or ham)", v.Kind)
	}
	if fromLog(v.Source) && v.Kind == Spam {
		// An operator's white entry (or prefix) stands against a log line.
		whites, err := a.Store.MatchAll(ctx, store.White, ip)
		if err != nil {
			return res, err
		}
		for _, e := range whites {
			if e.Source != classify.SourceGreylist {
				res.Skipped = fmt.Sprintf("white by an operator's entry %s (source %s)", e.Key, e.Source)
				return a.decide(ctx, ip, res)
			}
		}
	}
	old, err := a.Store.Get(ctx, drop, key)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return res, err
	default:
		res.Changes = append(res.Changes, fmt.Sprintf("removed %s entry %s (source %s, reason %q)", drop, key, old.Source, old.Reason))
		if !a.DryRun {
			if _, err := a.Store.Delete(ctx, drop, key); err != nil {
				return res, err
			}
		}
	}
	e := store.Entry{Kind: keep, Key: key, Reason: reason, Source: v.Source, Created: now, Updated: now, Count: 1}
	if ttl > 0 {
		e.Expires = now.Add(ttl)
	}
	if prev, err := a.Store.Get(ctx, keep, key); err == nil {
		e.Created, e.Count = prev.Created, prev.Count+1
	} else if !errors.Is(err, store.ErrNotFound) {
		return res, err
	}
	res.Changes = append(res.Changes, fmt.Sprintf("%s entry %s until %s (source %s, reason %q)", keep, key, until(e.Expires), v.Source, reason))
	if !a.DryRun {
		if err := a.Store.Put(ctx, e); err != nil {
			return res, err
		}
	}
	return a.decide(ctx, ip, res)
}

func until(t time.Time) string {
	if t.IsZero() {
		return "never expires"
	}
	return t.UTC().Format(time.RFC3339)
}

// decide fills in the client's path as the daemon now sees it, so the
// caller learns when something else (an allow or block list) still wins.
func (a *Applier) decide(ctx context.Context, ip netip.Addr, res Result) (Result, error) {
	if a.Classifier == nil {
		return res, nil
	}
	d, err := a.Classifier.Classify(ctx, ip)
	if err != nil {
		return res, err
	}
	res.Path, res.Rule = d.Path, d.Rule
	return res, nil
}

// NeverTrap reports why addr must never become a trap: RFC 2142 and RFC
// 5321 section 4.5.1 role mailboxes, or the protected list; "" if none.
func (a *Applier) NeverTrap(addr string) string {
	local, _, _ := strings.Cut(addr, "@")
	switch local {
	case "postmaster", "abuse", "mailer-daemon", "hostmaster", "webmaster", "security", "noc":
		return "role address " + local + " is never a trap"
	}
	if where, ok := a.Protected.Lookup(addr); ok {
		return "protected address (" + where + ")"
	}
	return ""
}

// NormAddress lower-cases a mail address and checks its form.
func NormAddress(s string) (string, error) { return store.ParseTrapKey(s) }

// Candidate records one unknown-recipient reject of addr from client.
func (a *Applier) Candidate(ctx context.Context, addr, client, source, note string, at time.Time) (Result, error) {
	addr, err := NormAddress(addr)
	if err != nil {
		return Result{}, err
	}
	ip, err := ParseClient(client)
	if err != nil {
		return Result{}, err
	}
	res := Result{Client: ip.String(), Address: addr, DryRun: a.DryRun}
	if why := a.NeverTrap(addr); why != "" {
		res.Skipped = why
		return res, nil
	}
	if _, err := a.Store.Get(ctx, store.Trap, addr); err == nil {
		res.Skipped = "already a spamtrap"
		return res, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return res, err
	}
	if at.IsZero() {
		at = a.now()
	}
	network := greylist.ClientPrefix(ip, a.PrefixV4, a.PrefixV6).String()
	if a.DryRun {
		res.Changes = append(res.Changes, "trap candidate "+addr+": evidence from "+network)
		return res, nil
	}
	c, err := a.Store.AddCandidateEvidence(ctx, addr, network, store.Evidence{Time: at, Client: ip.String(), Source: source, Note: note})
	if err != nil {
		return res, err
	}
	res.State = string(c.State)
	res.Changes = append(res.Changes, fmt.Sprintf("trap candidate %s: %d reject(s) from %d network(s) on %d day(s)", addr, c.Count, len(c.Networks), len(c.Days)))
	if c.State == store.CandidatePending && a.PromoteNetworks > 0 &&
		len(c.Networks) >= a.PromoteNetworks && len(c.Days) >= a.PromoteDays {
		reason := fmt.Sprintf("trap candidate promoted: %d networks, %d days", len(c.Networks), len(c.Days))
		if err := a.approve(ctx, addr, "auto", reason); err != nil {
			return res, err
		}
		res.State = string(store.CandidateApproved)
		res.Changes = append(res.Changes, "promoted to spamtrap")
	}
	return res, nil
}

// Approve makes addrs spamtrap entries; protected and role addresses are
// refused.
func (a *Applier) Approve(ctx context.Context, addrs []string, by string) (int, error) {
	norm, err := a.normAll(addrs)
	if err != nil {
		return 0, err
	}
	for _, addr := range norm {
		if why := a.NeverTrap(addr); why != "" {
			return 0, fmt.Errorf("%s: %s", addr, why)
		}
	}
	for i, addr := range norm {
		if err := a.approve(ctx, addr, by, "trap candidate approved by "+by); err != nil {
			return i, err
		}
	}
	return len(norm), nil
}

func (a *Applier) approve(ctx context.Context, addr, by, reason string) error {
	now := a.now()
	if err := a.Store.Put(ctx, store.Entry{Kind: store.Trap, Key: addr, Reason: reason, Source: "candidates:" + by, Created: now, Updated: now}); err != nil {
		return err
	}
	_, err := a.Store.DecideCandidate(ctx, addr, store.CandidateApproved, by, now)
	return err
}

// Reject marks addrs never to be proposed again.
func (a *Applier) Reject(ctx context.Context, addrs []string, by string) (int, error) {
	norm, err := a.normAll(addrs)
	if err != nil {
		return 0, err
	}
	for i, addr := range norm {
		if _, err := a.Store.DecideCandidate(ctx, addr, store.CandidateRejected, by, a.now()); err != nil {
			return i, err
		}
	}
	return len(norm), nil
}

func (a *Applier) normAll(addrs []string) ([]string, error) {
	if len(addrs) == 0 {
		return nil, errors.New("no addresses given")
	}
	out := make([]string, len(addrs))
	for i, s := range addrs {
		n, err := NormAddress(s)
		if err != nil {
			return nil, err
		}
		out[i] = n
	}
	return out, nil
}

// Protected is the set of addresses never proposed as traps, read from
// files of one address per line with `#` comments. It is safe for
// concurrent use and can be reloaded.
type Protected struct {
	files []string
	mu    sync.RWMutex
	m     map[string]string // lower-case address → "file:line"
}

// LoadProtected reads the files.
func LoadProtected(files []string) (*Protected, error) {
	p := &Protected{files: files}
	return p, p.Reload()
}

// Len reports how many addresses are protected.
func (p *Protected) Len() int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return len(p.m)
}

// Lookup reports whether addr is protected, and by which file line.
func (p *Protected) Lookup(addr string) (string, bool) {
	if p == nil {
		return "", false
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	where, ok := p.m[addr]
	return where, ok
}

// Reload re-reads the files; if one is broken the old set stays.
func (p *Protected) Reload() error {
	m := map[string]string{}
	for _, name := range p.files {
		if err := readProtected(name, m); err != nil {
			return err
		}
	}
	p.mu.Lock()
	p.m = m
	p.mu.Unlock()
	return nil
}

func readProtected(name string, m map[string]string) error {
	f, err := os.Open(name)
	if err != nil {
		return fmt.Errorf("candidates.protected: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		line, _, _ := strings.Cut(sc.Text(), "#")
		if line = strings.TrimSpace(line); line == "" {
			continue
		}
		addr, err := NormAddress(line)
		if err != nil {
			return fmt.Errorf("candidates.protected: %s:%d: %w", name, n, err)
		}
		m[addr] = fmt.Sprintf("%s:%d", name, n)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("candidates.protected: %s: %w", name, err)
	}
	return nil
}

// Event applies what a log line said.
func (a *Applier) Event(ctx context.Context, e maillog.Event, note string) (Result, error) {
	switch e.Kind {
	case maillog.Spam, maillog.Ham:
		return a.Apply(ctx, Verdict{Kind: string(e.Kind), Client: e.Client, Reason: e.Reason, Source: e.Source})
	case maillog.TrapCandidate:
		return a.Candidate(ctx, e.Address, e.Client, e.Source, note, e.Time)
	}
	return Result{}, fmt.Errorf("unknown event kind %q", e.Kind)
}
