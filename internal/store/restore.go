package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
)

// AWLCounter is one auto-whitelist counter (CountPass) as dumps carry it.
// The backends keep its times in whole seconds.
type AWLCounter struct {
	Key     string    `json:"key"`     // the client's address key
	Count   int64     `json:"count"`   // passes counted
	Last    time.Time `json:"last"`    // when the last one was counted
	Expires time.Time `json:"expires"` // when the counter starts again
}

// DumpStore is what Dump and Load need beyond the rest of Store: reading
// the records no other method lists, and writing records back exactly as
// they were (the other writers compute them from an event). Every Put and
// Restore replaces what is stored under the record's key, so Load is
// idempotent.
type DumpStore interface {
	// AWLCounters calls fn for every counter live at now, in key order.
	AWLCounters(ctx context.Context, now time.Time, fn func(AWLCounter) error) error
	// PutAWLCounter creates or replaces a counter.
	PutAWLCounter(ctx context.Context, a AWLCounter) error
	// Harvests calls fn for every visit live at now, in address order.
	Harvests(ctx context.Context, now time.Time, fn func(Harvest) error) error
	// RestoreHarvest creates or replaces a visit (PutHarvest refuses to).
	RestoreHarvest(ctx context.Context, h Harvest) error
	// RestoreTrapHit stores h as it is, Prior included, replacing a hit
	// by the same client at the same instant.
	RestoreTrapHit(ctx context.Context, h TrapHit) error
	// PutCandidate creates or replaces a trap candidate.
	PutCandidate(ctx context.Context, c Candidate) error
	// RestoreEvents adds events to the history, except those already in
	// it: an event is the same as a stored one when every field is equal,
	// and a batch that holds an event k times ensures k copies.
	RestoreEvents(ctx context.Context, evs []Event) error
}

// eventID is what makes two events the same for RestoreEvents.
func eventID(ev Event) string {
	return strconv.FormatInt(ev.Time.UnixNano(), 10) + "\x00" + ev.Client + "\x00" + ev.Path + "\x00" + ev.Outcome +
		"\x00" + strconv.FormatFloat(ev.Tarpit, 'g', -1, 64) + "\x00" + strconv.FormatBool(ev.Trap)
}

// missingEvents returns the events of evs not covered by have (the
// stored events of the same instants), counting duplicates.
func missingEvents(evs []Event, have map[string]int) []Event {
	var out []Event
	for _, ev := range evs {
		id := eventID(ev)
		if have[id] > 0 {
			have[id]--
			continue
		}
		out = append(out, ev)
	}
	return out
}

func awlValue(a AWLCounter) []byte {
	var v [awlValueLen]byte
	binary.BigEndian.PutUint64(v[0:], uint64(a.Count))
	binary.BigEndian.PutUint64(v[8:], uint64(a.Last.Unix()))
	binary.BigEndian.PutUint64(v[16:], uint64(a.Expires.Unix()))
	return v[:]
}

// decodeAWL reads a counter value; false if it is not one or has expired.
func decodeAWL(key string, v []byte, now time.Time) (AWLCounter, bool) {
	if len(v) != awlValueLen || int64(binary.BigEndian.Uint64(v[16:])) <= now.Unix() {
		return AWLCounter{}, false
	}
	return AWLCounter{
		Key:     key,
		Count:   int64(binary.BigEndian.Uint64(v[0:])),
		Last:    time.Unix(int64(binary.BigEndian.Uint64(v[8:])), 0).UTC(),
		Expires: time.Unix(int64(binary.BigEndian.Uint64(v[16:])), 0).UTC(),
	}, true
}

// AWLCounters implements DumpStore.
func (b *Bolt) AWLCounters(ctx context.Context, now time.Time, fn func(AWLCounter) error) error {
	return b.view(ctx, "list awl counters", func(tx *bolt.Tx) error {
		bk := tx.Bucket(awlBucket)
		if bk == nil {
			return nil
		}
		return bk.ForEach(func(k, v []byte) error {
			if a, ok := decodeAWL(string(k), v, now); ok {
				return own(fn(a))
			}
			return nil
		})
	})
}

// PutAWLCounter implements DumpStore.
func (b *Bolt) PutAWLCounter(ctx context.Context, a AWLCounter) error {
	if err := checkAddrKey(a.Key); err != nil {
		return fmt.Errorf("store: put awl counter: %w", err)
	}
	return b.update(ctx, "put awl counter", func(tx *bolt.Tx) error {
		bk, err := tx.CreateBucketIfNotExists(awlBucket)
		if err != nil {
			return err
		}
		return bk.Put([]byte(a.Key), awlValue(a))
	})
}

// Harvests implements DumpStore.
func (b *Bolt) Harvests(ctx context.Context, now time.Time, fn func(Harvest) error) error {
	return b.view(ctx, "list harvests", func(tx *bolt.Tx) error {
		bk := tx.Bucket(harvestBucket)
		if bk == nil {
			return nil
		}
		return bk.ForEach(func(k, v []byte) error {
			var h Harvest
			if err := json.Unmarshal(v, &h); err != nil {
				return own(fmt.Errorf("store: decode harvest %q: %w", k, err))
			}
			if !h.Expires.IsZero() && !now.Before(h.Expires) {
				return nil
			}
			return own(fn(h))
		})
	})
}

// RestoreHarvest implements DumpStore.
func (b *Bolt) RestoreHarvest(ctx context.Context, h Harvest) error {
	v, err := json.Marshal(h)
	if err != nil {
		return fmt.Errorf("store: encode harvest %q: %w", h.Address, err)
	}
	return b.update(ctx, "restore harvest", func(tx *bolt.Tx) error {
		bk, err := tx.CreateBucketIfNotExists(harvestBucket)
		if err != nil {
			return err
		}
		return bk.Put([]byte(h.Address), v)
	})
}

// RestoreTrapHit implements DumpStore: the key is the client and the
// time, so a hit loaded again replaces itself.
func (b *Bolt) RestoreTrapHit(ctx context.Context, h TrapHit) error {
	v, err := json.Marshal(h)
	if err != nil {
		return fmt.Errorf("store: encode trap hit: %w", err)
	}
	return b.update(ctx, "restore trap hit", func(tx *bolt.Tx) error {
		bk, err := tx.CreateBucketIfNotExists(trapHitBucket)
		if err != nil {
			return err
		}
		return bk.Put(hitKey(h), v)
	})
}

// PutCandidate implements DumpStore.
func (b *Bolt) PutCandidate(ctx context.Context, c Candidate) error {
	if c.Address == "" {
		return fmt.Errorf("store: candidate without an address")
	}
	return b.update(ctx, "put candidate", func(tx *bolt.Tx) error { return putCandidate(tx, c) })
}

// RestoreEvents implements DumpStore in one transaction: the stored
// events of each instant are one prefix scan of the time-ordered keys.
func (b *Bolt) RestoreEvents(ctx context.Context, evs []Event) error {
	if len(evs) == 0 {
		return nil
	}
	return b.update(ctx, "restore events", func(tx *bolt.Tx) error {
		bk, err := tx.CreateBucketIfNotExists(eventsBucket)
		if err != nil {
			return err
		}
		have := map[string]int{}
		seen := map[int64]bool{}
		c := bk.Cursor()
		for _, ev := range evs {
			ns := ev.Time.UnixNano()
			if seen[ns] {
				continue
			}
			seen[ns] = true
			pfx := timeKey(ev.Time)
			for k, v := c.Seek(pfx); k != nil && bytes.HasPrefix(k, pfx); k, v = c.Next() {
				var old Event
				if json.Unmarshal(v, &old) == nil {
					have[eventID(old)]++
				}
			}
		}
		return putEvents(bk, missingEvents(evs, have))
	})
}
