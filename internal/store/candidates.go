package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// CandidateState is where a trap candidate stands.
type CandidateState string

// Candidate states. A rejected candidate is kept so that it is never
// proposed again; an approved one has become a spamtrap entry.
const (
	CandidatePending  CandidateState = "pending"
	CandidateApproved CandidateState = "approved"
	CandidateRejected CandidateState = "rejected"
)

// Candidate is a mail address the MTA rejected as unknown, proposed as a
// spamtrap once enough distinct networks on enough distinct days tried it.
type Candidate struct {
	Address  string         `json:"address"`
	State    CandidateState `json:"state"`
	First    time.Time      `json:"first"`
	Last     time.Time      `json:"last"`
	Count    int64          `json:"count"`    // rejects seen
	Networks []string       `json:"networks"` // distinct client networks, oldest first, at most MaxCandidateNetworks
	Days     []string       `json:"days"`     // distinct UTC days (2006-01-02), at most MaxCandidateDays
	Evidence []Evidence     `json:"evidence"` // the latest rejects, at most MaxCandidateEvidence
	Decided  time.Time      `json:"decided,omitzero"`
	By       string         `json:"by,omitempty"` // who decided: "cli", "auto", ...
}

// Evidence is one log line behind a candidate.
type Evidence struct {
	Time   time.Time `json:"time"`
	Client string    `json:"client"`
	Source string    `json:"source"`
	Note   string    `json:"note,omitempty"` // e.g. "maillog:1234"
}

// Bounds on what a candidate keeps: enough to judge it, bounded however
// many bots try the address.
const (
	MaxCandidateNetworks = 64
	MaxCandidateDays     = 64
	MaxCandidateEvidence = 10
)

var candidateBucket = []byte("candidate")

// addEvidence is the pure update of AddCandidateEvidence.
func addEvidence(c Candidate, found bool, addr, network string, ev Evidence) Candidate {
	if !found {
		c = Candidate{Address: addr, State: CandidatePending, First: ev.Time}
	}
	c.Count++
	if ev.Time.After(c.Last) {
		c.Last = ev.Time
	}
	if network != "" && !slices.Contains(c.Networks, network) && len(c.Networks) < MaxCandidateNetworks {
		c.Networks = append(c.Networks, network)
	}
	if day := ev.Time.UTC().Format(time.DateOnly); !slices.Contains(c.Days, day) && len(c.Days) < MaxCandidateDays {
		c.Days = append(c.Days, day)
	}
	c.Evidence = append(c.Evidence, ev)
	if n := len(c.Evidence) - MaxCandidateEvidence; n > 0 {
		c.Evidence = slices.Delete(c.Evidence, 0, n)
	}
	return c
}

func getCandidate(tx *bolt.Tx, addr string) (Candidate, bool, error) {
	bk := tx.Bucket(candidateBucket)
	if bk == nil {
		return Candidate{}, false, nil
	}
	v := bk.Get([]byte(addr))
	if v == nil {
		return Candidate{}, false, nil
	}
	var c Candidate
	if err := json.Unmarshal(v, &c); err != nil {
		return Candidate{}, false, fmt.Errorf("store: decode candidate %q: %w", addr, err)
	}
	c.Address = addr
	return c, true, nil
}

func putCandidate(tx *bolt.Tx, c Candidate) error {
	bk, err := tx.CreateBucketIfNotExists(candidateBucket)
	if err != nil {
		return err
	}
	v, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return bk.Put([]byte(c.Address), v)
}

// AddCandidateEvidence implements Store.
func (b *Bolt) AddCandidateEvidence(ctx context.Context, addr, network string, ev Evidence) (Candidate, error) {
	if addr == "" {
		return Candidate{}, fmt.Errorf("store: candidate without an address")
	}
	var out Candidate
	err := b.update(ctx, "add candidate evidence", func(tx *bolt.Tx) error {
		c, found, err := getCandidate(tx, addr)
		if err != nil {
			return own(err)
		}
		out = addEvidence(c, found, addr, network, ev)
		return putCandidate(tx, out)
	})
	return out, err
}

// GetCandidate implements Store.
func (b *Bolt) GetCandidate(ctx context.Context, addr string) (Candidate, error) {
	var c Candidate
	err := b.view(ctx, "get candidate", func(tx *bolt.Tx) error {
		var found bool
		var err error
		if c, found, err = getCandidate(tx, addr); err != nil {
			return own(err)
		}
		if !found {
			return ErrNotFound
		}
		return nil
	})
	return c, err
}

// DecideCandidate implements Store.
func (b *Bolt) DecideCandidate(ctx context.Context, addr string, state CandidateState, by string, now time.Time) (Candidate, error) {
	switch state {
	case CandidatePending, CandidateApproved, CandidateRejected:
	default:
		return Candidate{}, fmt.Errorf("store: unknown candidate state %q", state)
	}
	var out Candidate
	err := b.update(ctx, "decide candidate", func(tx *bolt.Tx) error {
		c, found, err := getCandidate(tx, addr)
		if err != nil {
			return own(err)
		}
		if !found {
			c = Candidate{Address: addr, First: now, Last: now}
		}
		c.State, c.Decided, c.By = state, now, by
		out = c
		return putCandidate(tx, c)
	})
	return out, err
}

// Candidates implements Store.
func (b *Bolt) Candidates(ctx context.Context, fn func(Candidate) error) error {
	return b.view(ctx, "list candidates", func(tx *bolt.Tx) error {
		bk := tx.Bucket(candidateBucket)
		if bk == nil {
			return nil
		}
		return bk.ForEach(func(k, v []byte) error {
			var c Candidate
			if err := json.Unmarshal(v, &c); err != nil {
				return own(fmt.Errorf("store: decode candidate %q: %w", k, err))
			}
			c.Address = string(k)
			return fn(c)
		})
	})
}
