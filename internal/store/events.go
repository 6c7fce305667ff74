package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Event is one session's outcome, kept for `greypit report networks`.
// The JSON names are short: a busy server keeps millions of them.
type Event struct {
	Time    time.Time `json:"t"`
	Client  string    `json:"c"`            // the client's address
	Path    string    `json:"p"`            // white, grey, black or none
	Outcome string    `json:"o"`            // as on the verdict line
	Tarpit  float64   `json:"tp,omitempty"` // seconds the tarpit held it
	Trap    bool      `json:"trap,omitempty"`
}

// EventLog is the session history. A key is the event's time, so reads
// over a window and expiry are range scans; a shared backend would keep
// it as a sorted set or a time-partitioned stream.
type EventLog interface {
	// AddEvents appends events.
	AddEvents(ctx context.Context, evs []Event) error
	// Events calls fn for each event from since (inclusive) to until
	// (exclusive; zero: no end), oldest first. fn must not call back into
	// the store.
	Events(ctx context.Context, since, until time.Time, fn func(Event) error) error
	// ExpireEvents deletes the events before t and reports how many.
	ExpireEvents(ctx context.Context, before time.Time) (int, error)
}

var eventsBucket = []byte("events")

// eventKey is the time in nanoseconds and a sequence number, big-endian,
// so keys sort by time and never collide.
func eventKey(t time.Time, seq uint64) []byte {
	k := make([]byte, 16)
	binary.BigEndian.PutUint64(k, uint64(t.UnixNano()))
	binary.BigEndian.PutUint64(k[8:], seq)
	return k
}

func timeKey(t time.Time) []byte {
	if t.IsZero() || t.UnixNano() < 0 {
		return make([]byte, 8)
	}
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, uint64(t.UnixNano()))
	return k
}

// AddEvents implements EventLog.
func (b *Bolt) AddEvents(ctx context.Context, evs []Event) error {
	if len(evs) == 0 {
		return nil
	}
	return b.update(ctx, "add events", func(tx *bolt.Tx) error {
		bk, err := tx.CreateBucketIfNotExists(eventsBucket)
		if err != nil {
			return err
		}
		return putEvents(bk, evs)
	})
}

// putEvents appends evs to the events bucket, each under a fresh key.
func putEvents(bk *bolt.Bucket, evs []Event) error {
	for _, ev := range evs {
		v, err := json.Marshal(ev)
		if err != nil {
			return own(fmt.Errorf("store: encode event: %w", err))
		}
		seq, err := bk.NextSequence()
		if err != nil {
			return err
		}
		if err := bk.Put(eventKey(ev.Time, seq), v); err != nil {
			return err
		}
	}
	return nil
}

// Events implements EventLog.
func (b *Bolt) Events(ctx context.Context, since, until time.Time, fn func(Event) error) error {
	end := []byte(nil)
	if !until.IsZero() {
		end = timeKey(until)
	}
	return b.view(ctx, "events", func(tx *bolt.Tx) error {
		bk := tx.Bucket(eventsBucket)
		if bk == nil {
			return nil
		}
		c := bk.Cursor()
		for k, v := c.Seek(timeKey(since)); k != nil; k, v = c.Next() {
			if end != nil && bytes.Compare(k, end) >= 0 {
				return nil
			}
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("store: events: %w", err)
			}
			var ev Event
			if err := json.Unmarshal(v, &ev); err != nil {
				continue // one bad record must not hide the rest
			}
			if err := fn(ev); err != nil {
				return own(err)
			}
		}
		return nil
	})
}

// ExpireEvents implements EventLog.
func (b *Bolt) ExpireEvents(ctx context.Context, before time.Time) (int, error) {
	n := 0
	end := timeKey(before)
	err := b.update(ctx, "expire events", func(tx *bolt.Tx) error {
		n = 0
		bk := tx.Bucket(eventsBucket)
		if bk == nil {
			return nil
		}
		c := bk.Cursor()
		// Delete moves the cursor to the next key.
		for k, _ := c.First(); k != nil && bytes.Compare(k, end) < 0; k, _ = c.First() {
			if err := c.Delete(); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}
