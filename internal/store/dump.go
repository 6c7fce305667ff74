package store

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"
)

// The dump format: JSON lines, one record each, told apart by "type".
//
//	{"type":"greypit-dump","version":2}   header, first line (version 2 on)
//	{"type":"white","key":...}            an Entry (also grey, black, spamtrap)
//	{"type":"candidate","address":...}    a Candidate
//	{"type":"awl","key":...}              an AWLCounter
//	{"type":"harvest","address":...}      a Harvest
//	{"type":"traphit","client":...}       a TrapHit
//	{"type":"event","t":...}              an Event
//
// Version 1 (before the header existed) is Entry lines only; such a file
// loads unchanged. Expired records are not dumped.

// DumpVersion is the format version Dump writes; Load reads it and every
// older one.
const DumpVersion = 2

// dumpHeaderType is the "type" of the header line.
const dumpHeaderType = "greypit-dump"

// MaxLineLen bounds one line of Load input.
const MaxLineLen = 64 << 10

// Record types beside the entry kinds.
const (
	recCandidate = "candidate"
	recAWL       = "awl"
	recHarvest   = "harvest"
	recTrapHit   = "traphit"
	recEvent     = "event"
)

type dumpHeader struct {
	Type    string `json:"type"`
	Version int    `json:"version"`
}

// The line forms of the records that have no "type" of their own.
type (
	candidateLine struct {
		Type string `json:"type"`
		Candidate
	}
	awlLine struct {
		Type string `json:"type"`
		AWLCounter
	}
	harvestLine struct {
		Type string `json:"type"`
		Harvest
	}
	trapHitLine struct {
		Type string `json:"type"`
		TrapHit
	}
	eventLine struct {
		Type string `json:"type"`
		Event
	}
)

// Dump writes every live record of s (entries, trap candidates,
// auto-whitelist counters, harvester visits, trap hits and the session
// history) in the dump format. The output depends only on what is stored,
// not on the backend, so dumps of two stores with the same state are
// byte-identical.
func Dump(ctx context.Context, s Store, w io.Writer) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw) // Encode ends each value with '\n'
	enc.SetEscapeHTML(false)
	var werr error
	put := func(v any) error {
		if err := enc.Encode(v); err != nil {
			werr = err
			return err
		}
		return nil
	}
	now := time.Now()
	steps := []struct {
		what string
		run  func() error
	}{
		{"header", func() error { return put(dumpHeader{Type: dumpHeaderType, Version: DumpVersion}) }},
		{"entries", func() error { return s.List(ctx, "", func(e Entry) error { return put(e) }) }},
		{"candidates", func() error {
			return s.Candidates(ctx, func(c Candidate) error { return put(candidateLine{recCandidate, c}) })
		}},
		{"auto-whitelist counters", func() error {
			return s.AWLCounters(ctx, now, func(a AWLCounter) error { return put(awlLine{recAWL, a}) })
		}},
		{"harvests", func() error {
			return s.Harvests(ctx, now, func(h Harvest) error { return put(harvestLine{recHarvest, h}) })
		}},
		{"trap hits", func() error {
			return s.ListTrapHits(ctx, func(h TrapHit) error { return put(trapHitLine{recTrapHit, h}) })
		}},
		{"events", func() error { return dumpEvents(ctx, s, put) }},
	}
	for _, st := range steps {
		err := st.run()
		if werr != nil {
			return fmt.Errorf("store: dump: write: %w", werr)
		}
		if err != nil {
			return fmt.Errorf("store: dump %s: %w", st.what, err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("store: dump: write: %w", err)
	}
	return nil
}

// dumpEvents writes the session history oldest first. Events of one
// instant are sorted by their JSON: the backends keep ties in different
// orders, and a dump must not depend on that.
func dumpEvents(ctx context.Context, s Store, put func(any) error) error {
	var tie []eventLine
	flush := func() error {
		if len(tie) > 1 {
			slices.SortFunc(tie, func(a, b eventLine) int { return strings.Compare(eventID(a.Event), eventID(b.Event)) })
		}
		for _, e := range tie {
			if err := put(e); err != nil {
				return err
			}
		}
		tie = tie[:0]
		return nil
	}
	err := s.Events(ctx, time.Time{}, time.Time{}, func(ev Event) error {
		if len(tie) > 0 && !tie[0].Time.Equal(ev.Time) {
			if err := flush(); err != nil {
				return err
			}
		}
		tie = append(tie, eventLine{recEvent, ev})
		return nil
	})
	if err != nil {
		return err
	}
	return flush()
}

// record is one parsed dump line: exactly one field is set.
type record struct {
	entry     *Entry
	candidate *Candidate
	awl       *AWLCounter
	harvest   *Harvest
	hit       *TrapHit
	event     *Event
	header    int // the header's version
}

// Load reads a dump (any version up to DumpVersion) into s.
//
// It is all or nothing as far as the input goes: every line is read and
// checked first (an error names the first bad line), and only a file that
// is good throughout is written. It is idempotent: every record replaces
// the one with the same key, and events and trap hits already present are
// not added twice, so loading a file again changes nothing. A write
// failure part-way (a Redis that went away) leaves the records before it
// written; loading the file again then completes it.
//
// Blank lines are skipped. An entry without created or updated time gets
// the load time, so hand-written lines need only type and key. n counts
// the records stored.
func Load(ctx context.Context, s Store, r io.Reader) (n int, err error) {
	// The first pass keeps the good lines in a temporary file rather than
	// in memory: a dump with a long session history is large.
	spool, err := os.CreateTemp("", "greypit-load-*.jsonl")
	if err != nil {
		return 0, fmt.Errorf("store: load: %w", err)
	}
	defer func() { spool.Close(); os.Remove(spool.Name()) }()
	sw := bufio.NewWriter(spool)
	now := time.Now().Round(0)
	written := 0 // lines in the spool, blank ones kept so line numbers stay the input's
	_, err = scanDump(ctx, r, func(line int, b []byte, rec record) error {
		for ; written < line-1; written++ {
			sw.WriteByte('\n')
		}
		written++
		_, err := sw.Write(append(b, '\n'))
		return err
	}, now)
	if err != nil {
		return 0, err
	}
	if err := sw.Flush(); err != nil {
		return 0, fmt.Errorf("store: load: %w", err)
	}
	if _, err := spool.Seek(0, io.SeekStart); err != nil {
		return 0, fmt.Errorf("store: load: %w", err)
	}
	ap := applier{ctx: ctx, s: s}
	if _, err := scanDump(ctx, spool, func(_ int, _ []byte, rec record) error { return ap.add(rec) }, now); err != nil {
		return ap.n, err
	}
	if err := ap.flushEvents(); err != nil {
		return ap.n, fmt.Errorf("store: load: %w", err)
	}
	return ap.n, nil
}

// scanDump parses r line by line and calls fn with each non-blank line and
// its record; it stops at the first bad line with an error naming it.
func scanDump(ctx context.Context, r io.Reader, fn func(line int, b []byte, rec record) error, now time.Time) (int, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), MaxLineLen)
	line, records := 0, 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if line == 1 {
			b = bytes.TrimPrefix(b, []byte("\uFEFF")) // editors add a BOM
		}
		if len(b) == 0 {
			continue
		}
		if err := ctx.Err(); err != nil {
			return line, fmt.Errorf("store: load: line %d: %w", line, err)
		}
		rec, err := parseDumpLine(b, now)
		if err == nil && rec.header != 0 && records > 0 {
			err = errors.New("the dump header must be the first line")
		}
		if err != nil {
			return line, fmt.Errorf("store: load: line %d: %w", line, err)
		}
		records++
		if rec.header != 0 {
			continue
		}
		if err := fn(line, b, rec); err != nil {
			return line, fmt.Errorf("store: load: line %d: %w", line, err)
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return line, fmt.Errorf("store: load: line %d: longer than %d bytes", line+1, MaxLineLen)
		}
		return line, fmt.Errorf("store: load: after line %d: %w", line, err)
	}
	return line, nil
}

// applier writes records, events in batches.
type applier struct {
	ctx    context.Context
	s      Store
	n      int
	events []Event
}

const loadEventBatch = 1000

func (a *applier) add(r record) error {
	var err error
	switch {
	case r.entry != nil:
		err = a.s.Put(a.ctx, *r.entry)
	case r.candidate != nil:
		err = a.s.PutCandidate(a.ctx, *r.candidate)
	case r.awl != nil:
		err = a.s.PutAWLCounter(a.ctx, *r.awl)
	case r.harvest != nil:
		err = a.s.RestoreHarvest(a.ctx, *r.harvest)
	case r.hit != nil:
		err = a.s.RestoreTrapHit(a.ctx, *r.hit)
	case r.event != nil:
		// A batch ends between instants only: RestoreEvents counts equal
		// events within one, so a batch must hold all of an instant's.
		if l := len(a.events); l >= loadEventBatch && !a.events[l-1].Time.Equal(r.event.Time) {
			if err := a.flushEvents(); err != nil {
				return err
			}
		}
		a.events = append(a.events, *r.event)
		return nil
	}
	if err != nil {
		return err
	}
	a.n++
	return nil
}

func (a *applier) flushEvents() error {
	if len(a.events) == 0 {
		return nil
	}
	if err := a.s.RestoreEvents(a.ctx, a.events); err != nil {
		return err
	}
	a.n += len(a.events)
	a.events = a.events[:0]
	return nil
}

// decodeStrict decodes one JSON value from b into v, refusing unknown
// fields (a misspelt "expire" would otherwise load a permanent entry) and
// trailing values.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("bad JSON: %w", err)
	}
	if dec.More() {
		return errors.New("bad JSON: more than one value on the line")
	}
	return nil
}

// parseDumpLine parses and validates one non-blank dump line; now stands
// in for missing entry times.
func parseDumpLine(b []byte, now time.Time) (record, error) {
	var probe struct {
		Type string `json:"type"`
	}
	// Only the first value: decodeStrict reports a second one.
	if err := json.NewDecoder(bytes.NewReader(b)).Decode(&probe); err != nil {
		return record{}, fmt.Errorf("bad JSON: %w", err)
	}
	switch probe.Type {
	case dumpHeaderType:
		var h dumpHeader
		if err := decodeStrict(b, &h); err != nil {
			return record{}, err
		}
		if h.Version < 1 || h.Version > DumpVersion {
			return record{}, fmt.Errorf("dump format version %d is not supported (this greypit reads 1 to %d)", h.Version, DumpVersion)
		}
		return record{header: h.Version}, nil
	case recCandidate:
		var l candidateLine
		if err := decodeStrict(b, &l); err != nil {
			return record{}, err
		}
		c, err := checkCandidate(l.Candidate)
		return record{candidate: &c}, err
	case recAWL:
		var l awlLine
		if err := decodeStrict(b, &l); err != nil {
			return record{}, err
		}
		a, err := checkAWL(l.AWLCounter)
		return record{awl: &a}, err
	case recHarvest:
		var l harvestLine
		if err := decodeStrict(b, &l); err != nil {
			return record{}, err
		}
		h, err := checkHarvest(l.Harvest)
		return record{harvest: &h}, err
	case recTrapHit:
		var l trapHitLine
		if err := decodeStrict(b, &l); err != nil {
			return record{}, err
		}
		h, err := checkTrapHit(l.TrapHit)
		return record{hit: &h}, err
	case recEvent:
		var l eventLine
		if err := decodeStrict(b, &l); err != nil {
			return record{}, err
		}
		if l.Time.IsZero() {
			return record{}, errors.New("event without a time")
		}
		return record{event: &l.Event}, nil
	}
	e, err := parseEntryLine(b, now)
	return record{entry: &e}, err
}

func parseEntryLine(b []byte, now time.Time) (Entry, error) {
	var e Entry
	if err := decodeStrict(b, &e); err != nil {
		return Entry{}, err
	}
	e, err := Normalize(e)
	if err != nil {
		return Entry{}, err
	}
	if e.Created.IsZero() {
		e.Created = now
	}
	if e.Updated.IsZero() {
		e.Updated = e.Created
	}
	return e, nil
}

func checkCandidate(c Candidate) (Candidate, error) {
	a, err := ParseTrapKey(c.Address)
	if err != nil {
		return Candidate{}, fmt.Errorf("candidate: %w", err)
	}
	c.Address = a
	switch c.State {
	case CandidatePending, CandidateApproved, CandidateRejected:
	default:
		return Candidate{}, fmt.Errorf("candidate %q: unknown state %q (want pending, approved or rejected)", a, c.State)
	}
	if len(c.Networks) > MaxCandidateNetworks || len(c.Days) > MaxCandidateDays || len(c.Evidence) > MaxCandidateEvidence {
		return Candidate{}, fmt.Errorf("candidate %q: more networks, days or evidence than kept (%d, %d, %d)",
			a, MaxCandidateNetworks, MaxCandidateDays, MaxCandidateEvidence)
	}
	return c, nil
}

func checkAWL(a AWLCounter) (AWLCounter, error) {
	k, err := ParseAddrKey(a.Key)
	if err != nil {
		return AWLCounter{}, fmt.Errorf("awl counter: %w", err)
	}
	a.Key = k
	if a.Count < 1 || a.Expires.IsZero() || a.Last.IsZero() {
		return AWLCounter{}, fmt.Errorf("awl counter %q: needs count >= 1, last and expires", k)
	}
	// The backends keep whole seconds (as CountPass writes them).
	a.Last, a.Expires = a.Last.Truncate(time.Second).UTC(), a.Expires.Truncate(time.Second).UTC()
	return a, nil
}

func checkHarvest(h Harvest) (Harvest, error) {
	a, err := ParseTrapKey(h.Address)
	if err != nil {
		return Harvest{}, fmt.Errorf("harvest: %w", err)
	}
	h.Address = a
	if _, err := netip.ParseAddr(h.Visitor); err != nil {
		return Harvest{}, fmt.Errorf("harvest %q: visitor %q is not an IP address", a, h.Visitor)
	}
	if h.Time.IsZero() {
		return Harvest{}, fmt.Errorf("harvest %q: no time", a)
	}
	return h, nil
}

func checkTrapHit(h TrapHit) (TrapHit, error) {
	c, err := netip.ParseAddr(h.Client)
	if err != nil || c.Zone() != "" {
		return TrapHit{}, fmt.Errorf("trap hit: client %q is not an IP address", h.Client)
	}
	if h.Time.IsZero() {
		return TrapHit{}, fmt.Errorf("trap hit of %s: no time", h.Client)
	}
	if h.Field != "from" && h.Field != "rcpt" {
		return TrapHit{}, fmt.Errorf("trap hit of %s: field %q (want from or rcpt)", h.Client, h.Field)
	}
	if strings.TrimSpace(h.Address) == "" {
		return TrapHit{}, fmt.Errorf("trap hit of %s: no trap address", h.Client)
	}
	if h.Harvest != nil {
		hv, err := checkHarvest(*h.Harvest)
		if err != nil {
			return TrapHit{}, fmt.Errorf("trap hit of %s: %w", h.Client, err)
		}
		h.Harvest = &hv
	}
	return h, nil
}

// Normalize validates e and returns it with its key in canonical form:
// white and black keys through ParseAddrKey, spamtrap addresses lower-cased
// (and required to contain '@'), grey keys as given.
func Normalize(e Entry) (Entry, error) {
	if _, err := ParseKind(string(e.Kind)); err != nil {
		return Entry{}, err
	}
	key := strings.TrimSpace(e.Key)
	if key == "" {
		return Entry{}, fmt.Errorf("%s entry with an empty key", e.Kind)
	}
	switch e.Kind {
	case White, Black:
		k, err := ParseAddrKey(key)
		if err != nil {
			return Entry{}, fmt.Errorf("%s entry: %w", e.Kind, err)
		}
		key = k
	case Trap:
		key = strings.ToLower(key)
		if !strings.Contains(key, "@") {
			return Entry{}, fmt.Errorf("spamtrap entry %q: not a mail address (no '@')", key)
		}
	case Grey:
		key = e.Key // the greylist package owns this format; keep it exact
	}
	e.Key = key
	return e, nil
}

// CheckEntry reports whether e is already in the form Normalize produces,
// which is what a backend must store for Get and Match to find it.
func CheckEntry(e Entry) error {
	n, err := Normalize(e)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if n.Key != e.Key {
		return fmt.Errorf("store: %s key %q is not canonical (want %q)", e.Kind, e.Key, n.Key)
	}
	return nil
}

// checkAddrKey requires key to be a canonical white/black key.
func checkAddrKey(key string) error {
	k, err := ParseAddrKey(key)
	if err != nil {
		return err
	}
	if k != key {
		return fmt.Errorf("key %q is not canonical (want %q)", key, k)
	}
	return nil
}
