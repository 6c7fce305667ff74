// Package lists owns the static allow and block lists: files of IP
// addresses and CIDR prefixes that the operator maintains by hand, as
// opposed to the white and black entries greypit learns and keeps in the
// store.
//
// A List answers "which entry covers this address" with a longest-prefix
// match, and remembers where each entry was written so decisions can be
// logged with their file and line. A Set holds the current pair of lists
// and replaces both at once on reload, keeping the old ones when a file is
// broken, so a typo never empties a list in production.
package lists

import (
	"errors"
	"fmt"
	"iter"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/gaissmai/bart"
)

// Source is where a list entry was written.
type Source struct {
	File string
	Line int
	Text string // the entry as written, e.g. "192.0.2.0/24"
	Note string `json:",omitempty"` // the entry's own listing note, e.g. a Spamhaus SBL id
}

// String formats s as "file:line: text".
func (s Source) String() string { return fmt.Sprintf("%s:%d: %s", s.File, s.Line, s.Text) }

// List is an immutable table of prefixes loaded from files.
type List struct {
	name  string
	files []string
	table bart.Table[Source]
}

// LoadFiles reads the files, in order, into a list called name. Each line
// holds one IPv4 or IPv6 address or CIDR prefix; "#" starts a comment and
// blank lines are ignored. When an entry occurs twice the first is kept.
func LoadFiles(name string, files []string) (*List, error) {
	l := &List{name: name, files: append([]string(nil), files...)}
	for _, f := range files {
		if err := l.load(f); err != nil {
			return nil, fmt.Errorf("%s list: %w", name, err)
		}
	}
	return l, nil
}

func (l *List) load(file string) error {
	return ScanFile(file, func(n int, line string) error {
		p, text, ok, err := parseLine(line)
		if err != nil || !ok {
			return err
		}
		if _, dup := l.table.Get(p); !dup {
			l.table.Insert(p, Source{File: file, Line: n, Text: text})
		}
		return nil
	})
}

// parseLine parses one line of a list file. ok is false for a line with no
// entry. The prefix is masked, and IPv4-mapped IPv6 is unmapped to IPv4.
func parseLine(line string) (p netip.Prefix, text string, ok bool, err error) {
	text, _, _ = strings.Cut(line, "#")
	text = strings.TrimSpace(text)
	if text == "" {
		return netip.Prefix{}, "", false, nil
	}
	if strings.Contains(text, "/") {
		p, err = netip.ParsePrefix(text)
		if err != nil {
			return netip.Prefix{}, "", false, fmt.Errorf("%q is not a CIDR prefix", text)
		}
	} else {
		a, err := netip.ParseAddr(text)
		if err != nil {
			return netip.Prefix{}, "", false, fmt.Errorf("%q is neither an IP address nor a CIDR prefix", text)
		}
		if a.Zone() != "" {
			return netip.Prefix{}, "", false, fmt.Errorf("%q: zoned addresses are not allowed", text)
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if a := p.Addr(); a.Is4In6() {
		if p.Bits() < 96 {
			return netip.Prefix{}, "", false, fmt.Errorf("%q: IPv4-mapped prefix shorter than /96", text)
		}
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked(), text, true, nil
}

// Name returns the list's name.
func (l *List) Name() string { return l.name }

// Files returns the files the list was loaded from.
func (l *List) Files() []string { return append([]string(nil), l.files...) }

// Lookup returns the most specific entry covering a. IPv4-mapped IPv6
// addresses match IPv4 entries. A nil list matches nothing.
func (l *List) Lookup(a netip.Addr) (Source, bool) {
	if l == nil || !a.IsValid() {
		return Source{}, false
	}
	return l.table.Lookup(a.Unmap())
}

// Len returns the number of distinct prefixes in the list.
func (l *List) Len() int {
	if l == nil {
		return 0
	}
	return l.table.Size()
}

// All yields every prefix and its source, IPv4 first, in address order.
func (l *List) All() iter.Seq2[netip.Prefix, Source] {
	if l == nil {
		return func(func(netip.Prefix, Source) bool) {}
	}
	return l.table.AllSorted()
}

// Set is the current allow and block lists. Readers never block; Reload
// swaps all lists at once.
type Set struct {
	files Files
	mu    sync.Mutex // serializes Reload and Poll
	cur   atomic.Pointer[pair]
	tried signature // of the files at the last Reload attempt
}

type pair struct {
	allow, block *List
	extra        []blocklist // lists.drop and lists.spamd_conf, in config order
}

// Files names every list file of a Set, by config key.
type Files struct {
	Allow     []string // lists.allow: plain address/CIDR files
	Block     []string // lists.block: plain address/CIDR files
	DROP      []string // lists.drop: Spamhaus DROP files, text or JSON
	SpamdConf []string // lists.spamd_conf: spamd.conf files naming local list files
}

// NewSet loads the allow and block list files.
func NewSet(allowFiles, blockFiles []string) (*Set, error) {
	return NewSetFiles(Files{Allow: allowFiles, Block: blockFiles})
}

// NewSetFiles loads all list files.
func NewSetFiles(f Files) (*Set, error) {
	s := &Set{files: Files{
		Allow:     slices.Clone(f.Allow),
		Block:     slices.Clone(f.Block),
		DROP:      slices.Clone(f.DROP),
		SpamdConf: slices.Clone(f.SpamdConf),
	}}
	if err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Reload reads all files again. If any of them cannot be loaded, the
// current lists stay in use and the error is returned.
func (s *Set) Reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reload()
}

func (s *Set) reload() error {
	ld := &loader{sig: signature{}}
	allow, aerr := ld.plain("allow", s.files.Allow)
	block, berr := ld.plain("block", s.files.Block)
	extra, xerr := ld.extra(s.files)
	s.tried = ld.sig
	if err := errors.Join(aerr, berr, xerr); err != nil {
		return err
	}
	s.cur.Store(&pair{allow, block, extra})
	return nil
}

// SetFiles makes f the set's files and loads them. If any of them cannot
// be loaded, the current files and lists stay in use.
func (s *Set) SetFiles(f Files) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.files
	s.files = Files{Allow: slices.Clone(f.Allow), Block: slices.Clone(f.Block), DROP: slices.Clone(f.DROP), SpamdConf: slices.Clone(f.SpamdConf)}
	if err := s.reload(); err != nil {
		s.files = old
		return err
	}
	return nil
}

// Allow returns the current allow list.
func (s *Set) Allow() *List { return s.cur.Load().allow }

// Block returns the current block list.
func (s *Set) Block() *List { return s.cur.Load().block }

// Lists returns the current allow and block lists, both from the same load.
func (s *Set) Lists() (allow, block *List) {
	p := s.cur.Load()
	return p.allow, p.block
}

// Overlapping returns an entry that covers or lies inside p, if any: an
// allow-listed host inside a network keeps that network from being
// escalated.
func (l *List) Overlapping(p netip.Prefix) (Source, bool) {
	if l == nil || !p.IsValid() {
		return Source{}, false
	}
	if _, src, ok := l.table.LookupPrefixLPM(p); ok {
		return src, true
	}
	for _, src := range l.table.Subnets(p) {
		return src, true
	}
	return Source{}, false
}
