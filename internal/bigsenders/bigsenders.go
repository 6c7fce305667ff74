// Package bigsenders owns the big-sender allowlist: large mail providers
// (the versioned list in bigsenders.toml, built into the binary, plus the
// operator's additions) whose sending networks are resolved from their
// SPF records and treated as white.
//
// Greylisting hurts these senders most: their retries come from another
// address of a pool spread over many networks, so a tuple keyed on the
// client's network never sees the retry (peers.md §3). Listing where each
// provider publishes its networks, rather than the networks themselves,
// keeps the list correct as the providers renumber.
package bigsenders

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/gaissmai/bart"
)

//go:embed bigsenders.toml
var builtin []byte

// Provider is one entry of the list.
type Provider struct {
	Domain string `toml:"domain" json:"domain"`
	SPF    string `toml:"spf" json:"spf"`       // name whose SPF record lists the networks
	Source string `toml:"source" json:"source"` // where the provider documents it
	Added  string `toml:"added" json:"added,omitempty"`
}

// File is the list file's content.
type File struct {
	Version  int        `toml:"version"`
	Updated  string     `toml:"updated"`
	Provider []Provider `toml:"provider"`
}

// Builtin returns the list built into greypit.
func Builtin() (File, error) {
	var f File
	md, err := toml.Decode(string(builtin), &f)
	if err != nil {
		return File{}, fmt.Errorf("bigsenders.toml: %w", err)
	}
	if u := md.Undecoded(); len(u) > 0 {
		return File{}, fmt.Errorf("bigsenders.toml: unknown key %s", u[0])
	}
	return f, nil
}

// Providers returns the built-in list without the disabled domains and
// with the operator's additions ("domain" or "domain=spf-name").
func Providers(f File, disable, add []string) []Provider {
	var out []Provider
	for _, p := range f.Provider {
		if !slices.Contains(disable, p.Domain) {
			out = append(out, p)
		}
	}
	for _, a := range add {
		dom, spf, ok := strings.Cut(strings.ToLower(a), "=")
		if !ok {
			spf = dom
		}
		out = slices.DeleteFunc(out, func(p Provider) bool { return p.Domain == dom }) // an override
		out = append(out, Provider{Domain: dom, SPF: spf, Source: "config bigsenders.add"})
	}
	return out
}

// Source is why a network is on the list.
type Source struct {
	Provider Provider     `json:"provider"`
	Prefix   netip.Prefix `json:"prefix"`
	Record   string       `json:"record"` // the name whose SPF record had the mechanism
}

// Set is the resolved list. The zero value is empty; a nil *Set too.
type Set struct {
	table    atomic.Pointer[bart.Table[Source]]
	sources  atomic.Pointer[[]Source]
	resolved atomic.Pointer[map[string]Resolved]
}

// Resolved is the outcome of resolving one provider.
type Resolved struct {
	Provider Provider       `json:"provider"`
	Prefixes []netip.Prefix `json:"prefixes"`
	Err      string         `json:"error,omitempty"`
	When     time.Time      `json:"when"`
}

// Lookup returns the entry covering addr.
func (s *Set) Lookup(addr netip.Addr) (Source, bool) {
	if s == nil {
		return Source{}, false
	}
	t := s.table.Load()
	if t == nil {
		return Source{}, false
	}
	return t.Lookup(addr.Unmap())
}

// Report returns the last resolution of every provider, in list order.
func (s *Set) Report(ps []Provider) []Resolved {
	m := s.resolved.Load()
	var out []Resolved
	for _, p := range ps {
		if m != nil {
			if r, ok := (*m)[p.Domain]; ok {
				out = append(out, r)
				continue
			}
		}
		out = append(out, Resolved{Provider: p, Err: "not resolved yet"})
	}
	return out
}

// Resolver looks up TXT records; *net.Resolver is one.
type Resolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
}

// Refresh resolves every provider and replaces the set. A provider that
// fails keeps the networks it had, so a DNS outage does not make its
// mail grey; its error is reported.
func (s *Set) Refresh(ctx context.Context, r Resolver, ps []Provider, timeout time.Duration) []Resolved {
	old := s.resolved.Load()
	res := map[string]Resolved{}
	var out []Resolved
	var t bart.Table[Source]
	for _, p := range ps {
		rctx, cancel := context.WithTimeout(ctx, timeout)
		srcs, err := Resolve(rctx, r, p)
		cancel()
		rv := Resolved{Provider: p, When: time.Now()}
		if err != nil {
			rv.Err = err.Error()
			if old != nil {
				rv.Prefixes = (*old)[p.Domain].Prefixes
				for _, src := range s.sourcesOf(p.Domain) {
					srcs = append(srcs, src)
				}
			}
		}
		for _, src := range srcs {
			if _, dup := t.Get(src.Prefix); !dup {
				t.Insert(src.Prefix, src)
			}
			if err == nil {
				rv.Prefixes = append(rv.Prefixes, src.Prefix)
			}
		}
		res[p.Domain] = rv
		out = append(out, rv)
	}
	var all []Source
	for _, src := range t.All() {
		all = append(all, src)
	}
	s.table.Store(&t)
	s.sources.Store(&all)
	s.resolved.Store(&res)
	return out
}

func (s *Set) sourcesOf(domain string) []Source {
	var out []Source
	if all := s.sources.Load(); all != nil {
		for _, src := range *all {
			if src.Provider.Domain == domain {
				out = append(out, src)
			}
		}
	}
	return out
}

// Run refreshes the set now and every interval until ctx ends.
func (s *Set) Run(ctx context.Context, r Resolver, ps []Provider, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		n, failed := 0, 0
		for _, rv := range s.Refresh(ctx, r, ps, 30*time.Second) {
			n += len(rv.Prefixes)
			if rv.Err != "" {
				failed++
				log.Warn("bigsenders: resolving a provider failed; keeping its previous networks", "domain", rv.Provider.Domain, "spf", rv.Provider.SPF, "err", rv.Err, "kept", len(rv.Prefixes))
			}
		}
		log.Info("bigsenders: resolved", "providers", len(ps), "failed", failed, "networks", n)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// maxLookups is RFC 7208 §4.6.4's limit of DNS-querying terms (include
// and redirect here) per check; maxDepth bounds nesting on top of it.
const (
	maxLookups = 10
	maxDepth   = 10
)

// ErrLookupLimit is returned when a provider's records need more lookups
// than RFC 7208 §4.6.4 allows.
var ErrLookupLimit = errors.New("more than 10 DNS lookups (RFC 7208 §4.6.4)")

// Resolve expands p's SPF record into the networks it authorises: ip4
// and ip6 mechanisms, followed through include and redirect. Mechanisms
// that need a lookup per client (a, mx, ptr, exists) and macros are
// skipped: they list no networks ahead of time.
func Resolve(ctx context.Context, r Resolver, p Provider) ([]Source, error) {
	lookups := 0
	var out []Source
	seen := map[string]bool{}
	var walk func(name string, depth int) error
	walk = func(name string, depth int) error {
		name = strings.ToLower(strings.TrimSuffix(name, "."))
		if depth > maxDepth {
			return fmt.Errorf("%s: nested deeper than %d", name, maxDepth)
		}
		if seen[name] {
			return nil // a loop, or a shared include already walked
		}
		seen[name] = true
		rec, err := spfRecord(ctx, r, name)
		if err != nil {
			return err
		}
		var redirect string
		for _, term := range strings.Fields(rec)[1:] {
			term = strings.ToLower(term)
			if strings.Contains(term, "%") { // macro: depends on the client
				continue
			}
			if v, ok := strings.CutPrefix(term, "redirect="); ok {
				redirect = v
				continue
			}
			q := term[0]
			if q == '+' || q == '-' || q == '~' || q == '?' {
				term = term[1:]
			} else {
				q = '+'
			}
			mech, val, _ := strings.Cut(term, ":")
			switch mech {
			case "all":
				redirect = "" // RFC 7208 §6.1: redirect is ignored with "all"
			case "ip4", "ip6":
				if q != '+' {
					continue
				}
				pfx, err := parseNet(val, mech == "ip4")
				if err != nil {
					return fmt.Errorf("%s: %q: %w", name, term, err)
				}
				out = append(out, Source{Provider: p, Prefix: pfx, Record: name})
			case "include":
				if lookups++; lookups > maxLookups {
					return ErrLookupLimit
				}
				if q != '+' {
					continue
				}
				if err := walk(val, depth+1); err != nil {
					return err
				}
			case "a", "mx", "ptr", "exists":
				if lookups++; lookups > maxLookups {
					return ErrLookupLimit
				}
			}
		}
		if redirect != "" {
			if lookups++; lookups > maxLookups {
				return ErrLookupLimit
			}
			return walk(redirect, depth+1)
		}
		return nil
	}
	if err := walk(p.SPF, 0); err != nil {
		return nil, fmt.Errorf("%s (%s): %w", p.Domain, p.SPF, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s (%s): no ip4 or ip6 networks in its SPF records", p.Domain, p.SPF)
	}
	return out, nil
}

// spfRecord returns the one "v=spf1" TXT record of name (RFC 7208 §4.5).
func spfRecord(ctx context.Context, r Resolver, name string) (string, error) {
	txts, err := r.LookupTXT(ctx, name)
	if err != nil {
		var de *net.DNSError
		if errors.As(err, &de) && de.IsNotFound {
			return "", fmt.Errorf("%s: no such name", name)
		}
		if errors.As(err, &de) { // its Server field names resolv.conf's, not the one dialled
			return "", fmt.Errorf("%s: %s", name, de.Err)
		}
		return "", fmt.Errorf("%s: %w", name, err)
	}
	var recs []string
	for _, t := range txts {
		if l := strings.ToLower(t); l == "v=spf1" || strings.HasPrefix(l, "v=spf1 ") {
			recs = append(recs, t)
		}
	}
	switch len(recs) {
	case 0:
		return "", fmt.Errorf("%s: no SPF record", name)
	case 1:
		return recs[0], nil
	}
	return "", fmt.Errorf("%s: %d SPF records (RFC 7208 §4.5: permerror)", name, len(recs))
}

// parseNet reads an ip4/ip6 mechanism value: an address with an optional
// prefix length.
func parseNet(v string, v4 bool) (netip.Prefix, error) {
	addr, bits, hasBits := strings.Cut(v, "/")
	a, err := netip.ParseAddr(addr)
	if err != nil || a.Is4() != v4 || a.Zone() != "" {
		return netip.Prefix{}, errors.New("bad address")
	}
	n := a.BitLen()
	if hasBits {
		if _, err := fmt.Sscanf(bits, "%d", &n); err != nil || n < 0 || n > a.BitLen() || fmt.Sprint(n) != bits {
			return netip.Prefix{}, errors.New("bad prefix length")
		}
	}
	return netip.PrefixFrom(a, n).Masked(), nil
}
