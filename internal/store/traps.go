package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Harvest is one visit to the harvester page (package traps): the fresh
// trap address that visit was shown, and who fetched it.
type Harvest struct {
	Address   string    `json:"address"` // lower-cased mail address under traps.web_domain
	Visitor   string    `json:"visitor"` // the visitor's IP address
	UserAgent string    `json:"user_agent,omitempty"`
	Time      time.Time `json:"time"`
	Expires   time.Time `json:"expires,omitzero"`
}

// TrapHit is one grey host caught sending from or to a trap address.
type TrapHit struct {
	Time    time.Time `json:"time"`
	Client  string    `json:"client"` // the sending host's IP address
	Helo    string    `json:"helo,omitempty"`
	From    string    `json:"from"`             // envelope sender as sent
	Field   string    `json:"field"`            // "from" or "rcpt": which address was the trap
	Address string    `json:"address"`          // the trap address
	Rule    string    `json:"rule"`             // why it is a trap, e.g. "traps.files /etc/traps:3"
	Harvest *Harvest  `json:"harvest,omitzero"` // the page visit that published it, if known
	Prior   int       `json:"prior"`            // earlier hits by the same client still kept
	Expires time.Time `json:"expires,omitzero"`
}

// The trap buckets live beside the kind buckets; they are created on first
// write, so files from before traps open unchanged.
var (
	harvestBucket = []byte("harvest")
	trapHitBucket = []byte("traphit")
)

// hitKey orders hits by client, then time, so a client's earlier hits are
// one prefix scan.
func hitKey(h TrapHit) []byte {
	return []byte(h.Client + " " + fmt.Sprintf("%020d", h.Time.UnixNano()))
}

// PutHarvest records a harvester page visit under its address. It fails
// if the address was already handed out, so two visits never share one.
func (b *Bolt) PutHarvest(ctx context.Context, h Harvest) error {
	v, err := json.Marshal(h)
	if err != nil {
		return fmt.Errorf("store: encode harvest %q: %w", h.Address, err)
	}
	return b.update(ctx, "put harvest", func(tx *bolt.Tx) error {
		bk, err := tx.CreateBucketIfNotExists(harvestBucket)
		if err != nil {
			return err
		}
		if bk.Get([]byte(h.Address)) != nil {
			return own(fmt.Errorf("store: harvest address %q: %w", h.Address, ErrExists))
		}
		return bk.Put([]byte(h.Address), v)
	})
}

// ErrExists is returned by PutHarvest for an address already handed out.
var ErrExists = errors.New("already exists")

// GetHarvest returns the live visit that was shown address, or ErrNotFound.
func (b *Bolt) GetHarvest(ctx context.Context, address string) (Harvest, error) {
	var h Harvest
	now := time.Now()
	err := b.view(ctx, "get harvest", func(tx *bolt.Tx) error {
		bk := tx.Bucket(harvestBucket)
		if bk == nil {
			return ErrNotFound
		}
		v := bk.Get([]byte(address))
		if v == nil {
			return ErrNotFound
		}
		if err := json.Unmarshal(v, &h); err != nil {
			return own(fmt.Errorf("store: decode harvest %q: %w", address, err))
		}
		if !h.Expires.IsZero() && !now.Before(h.Expires) {
			return ErrNotFound
		}
		return nil
	})
	return h, err
}

// AddTrapHit stores h and reports how many earlier, unexpired hits by the
// same client there are, in one transaction, so repeat offenders can be
// listed for longer.
func (b *Bolt) AddTrapHit(ctx context.Context, h TrapHit) (prior int, err error) {
	err = b.batch(ctx, "add trap hit", func(tx *bolt.Tx) error {
		prior = 0
		bk, err := tx.CreateBucketIfNotExists(trapHitBucket)
		if err != nil {
			return err
		}
		pfx := []byte(h.Client + " ")
		c := bk.Cursor()
		for k, v := c.Seek(pfx); k != nil && bytes.HasPrefix(k, pfx); k, v = c.Next() {
			var old TrapHit
			if json.Unmarshal(v, &old) == nil && (old.Expires.IsZero() || h.Time.Before(old.Expires)) {
				prior++
			}
		}
		h.Prior = prior
		v, err := json.Marshal(h)
		if err != nil {
			return own(fmt.Errorf("store: encode trap hit: %w", err))
		}
		return bk.Put(hitKey(h), v)
	})
	return prior, err
}

// ListTrapHits calls fn for every unexpired hit, by client and then time.
func (b *Bolt) ListTrapHits(ctx context.Context, fn func(TrapHit) error) error {
	now := time.Now()
	return b.view(ctx, "list trap hits", func(tx *bolt.Tx) error {
		bk := tx.Bucket(trapHitBucket)
		if bk == nil {
			return nil
		}
		return bk.ForEach(func(k, v []byte) error {
			var h TrapHit
			if err := json.Unmarshal(v, &h); err != nil {
				return own(fmt.Errorf("store: decode trap hit %q: %w", k, err))
			}
			if !h.Expires.IsZero() && !now.Before(h.Expires) {
				return nil
			}
			return fn(h)
		})
	})
}

// expireTrapRecords deletes expired harvests and trap hits inside an
// Expire transaction.
func expireTrapRecords(tx *bolt.Tx, now time.Time) (int, error) {
	n := 0
	for _, name := range [][]byte{harvestBucket, trapHitBucket} {
		bk := tx.Bucket(name)
		if bk == nil {
			continue
		}
		var dead [][]byte
		err := bk.ForEach(func(k, v []byte) error {
			var rec struct {
				Expires time.Time `json:"expires"`
			}
			if json.Unmarshal(v, &rec) == nil && !rec.Expires.IsZero() && !now.Before(rec.Expires) {
				dead = append(dead, bytes.Clone(k))
			}
			return nil
		})
		if err != nil {
			return n, err
		}
		for _, k := range dead {
			if err := bk.Delete(k); err != nil {
				return n, err
			}
		}
		n += len(dead)
	}
	return n, nil
}

// TrapStore is the part of a store that keeps trap evidence. A networked
// backend implements AddTrapHit atomically (a list per client: append and
// count in one step).
type TrapStore interface {
	PutHarvest(ctx context.Context, h Harvest) error
	GetHarvest(ctx context.Context, address string) (Harvest, error)
	AddTrapHit(ctx context.Context, h TrapHit) (prior int, err error)
	ListTrapHits(ctx context.Context, fn func(TrapHit) error) error
}

var _ TrapStore = (*Bolt)(nil)
