package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// GreyCache is a Bolt store whose greylist sightings are written in
// batches: Greylist decides from memory (the sightings not yet written,
// then the file) and Flush writes all pending sightings in one fsynced
// transaction. A crash loses at most the sightings of the last flush
// interval (plus the flush in progress); the tuples concerned are simply
// greylisted again, which delays mail but loses none.
//
// Everything that acts as a whitelist is durable before it is acted on:
// white, black and trap entries go straight to the file (the embedded
// Bolt methods), and a tuple's first pass waits for a flush before
// Greylist returns.
type GreyCache struct {
	*Bolt
	seed    maphash.Seed
	shards  [64]greyShard
	flushMu sync.Mutex // one flush at a time
}

type greyShard struct {
	mu       sync.Mutex
	dirty    map[string]Entry // sightings since the last flush began
	flushing map[string]Entry // sightings being written by the current flush
}

var _ Store = (*GreyCache)(nil)

// NewGreyCache wraps b. Run (or Flush) must be called to write sightings.
func NewGreyCache(b *Bolt) *GreyCache {
	c := &GreyCache{Bolt: b, seed: maphash.MakeSeed()}
	for i := range c.shards {
		c.shards[i].dirty = map[string]Entry{}
	}
	return c
}

func (c *GreyCache) shard(key string) *greyShard {
	return &c.shards[maphash.String(c.seed, key)%uint64(len(c.shards))]
}

// Greylist implements Store.
func (c *GreyCache) Greylist(ctx context.Context, key, client string, now time.Time, p GreyParams) (Entry, GreyOutcome, error) {
	if key == "" {
		return Entry{}, 0, errors.New("store: greylist: empty key")
	}
	if err := checkGreyParams(p); err != nil {
		return Entry{}, 0, err
	}
	if err := ctx.Err(); err != nil {
		return Entry{}, 0, fmt.Errorf("store: greylist: %w", err)
	}
	if c.readOnly {
		return Entry{}, 0, fmt.Errorf("store: greylist: %w", bolt.ErrDatabaseReadOnly)
	}
	now = now.Round(0)
	sh := c.shard(key)
	sh.mu.Lock()
	old, found, err := c.lookup(sh, key, now)
	if err != nil {
		sh.mu.Unlock()
		return Entry{}, 0, err
	}
	e, o := greyStep(old, found, key, client, now, p)
	sh.dirty[key] = e
	sh.mu.Unlock()
	if o == GreyPass && !e.Passed.IsZero() && e.Passed.Equal(now) {
		// The first pass is what a sender's retry earned: write it before
		// the caller lets the mail through.
		if err := c.Flush(ctx); err != nil {
			return Entry{}, 0, err
		}
	}
	return e, o, nil
}

// lookup finds the newest version of a tuple: unwritten, being written,
// then the file. sh.mu is held.
func (c *GreyCache) lookup(sh *greyShard, key string, now time.Time) (Entry, bool, error) {
	if e, ok := sh.dirty[key]; ok {
		return e, e.Live(now), nil
	}
	if e, ok := sh.flushing[key]; ok {
		return e, e.Live(now), nil
	}
	if !c.grey.mayHave(key) {
		return Entry{}, false, nil // never written: no read transaction
	}
	var (
		e     Entry
		found bool
	)
	err := c.view(context.Background(), "greylist", func(tx *bolt.Tx) error {
		var err error
		e, found, err = getLive(tx, Grey, key, now)
		return own(err)
	})
	return e, found, err
}

// Get implements Store; grey entries not yet written are seen too.
func (c *GreyCache) Get(ctx context.Context, k Kind, key string) (Entry, error) {
	if k == Grey {
		sh := c.shard(key)
		sh.mu.Lock()
		e, ok := sh.dirty[key]
		if !ok {
			e, ok = sh.flushing[key]
		}
		sh.mu.Unlock()
		if ok {
			if !e.Live(time.Now()) {
				return Entry{}, ErrNotFound
			}
			return e, nil
		}
	}
	return c.Bolt.Get(ctx, k, key)
}

// List implements Store, after writing pending sightings.
func (c *GreyCache) List(ctx context.Context, k Kind, fn func(Entry) error) error {
	if k == "" || k == Grey {
		if err := c.Flush(ctx); err != nil {
			return err
		}
	}
	return c.Bolt.List(ctx, k, fn)
}

// Delete implements Store.
func (c *GreyCache) Delete(ctx context.Context, k Kind, key string) (bool, error) {
	if k != Grey {
		return c.Bolt.Delete(ctx, k, key)
	}
	var existed bool
	err := c.replace(key, func() (err error) {
		existed, err = c.Bolt.Delete(ctx, k, key)
		return err
	})
	return existed, err
}

// Put implements Store; a grey entry replaces any pending sighting of its
// tuple (`greypit db load`).
func (c *GreyCache) Put(ctx context.Context, e Entry) error {
	if e.Kind != Grey {
		return c.Bolt.Put(ctx, e)
	}
	return c.replace(e.Key, func() error { return c.Bolt.Put(ctx, e) })
}

// replace runs write, an operator's change of one tuple, with no flush in
// progress and the tuple's pending sighting dropped, so no older sighting
// is written over the change afterwards.
func (c *GreyCache) replace(key string, write func() error) error {
	if err := c.Flush(context.Background()); err != nil {
		return err
	}
	c.flushMu.Lock()
	defer c.flushMu.Unlock()
	sh := c.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	delete(sh.dirty, key)
	return write()
}

// Flush writes every pending sighting in one transaction. When it returns
// without error, every Greylist call that returned before it began is on
// disk. On error the sightings stay pending (unless newer ones replaced
// them) and the next flush tries again.
func (c *GreyCache) Flush(ctx context.Context) error {
	c.flushMu.Lock()
	defer c.flushMu.Unlock()
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		if len(sh.dirty) > 0 {
			sh.flushing, sh.dirty = sh.dirty, make(map[string]Entry, len(sh.dirty))
			n += len(sh.flushing)
		}
		sh.mu.Unlock()
	}
	if n == 0 {
		return nil
	}
	// Encoded before the write transaction, which then holds bbolt's
	// writer lock only for the puts. The flushing maps are only read
	// meanwhile (by lookups too), so no lock is needed to read them.
	// Keys and values live in a few large buffers instead of two
	// allocations each; bbolt keeps them until the commit, so a buffer is
	// never appended to beyond its capacity.
	type rec struct {
		k, v []byte
		h    uint64
	}
	recs := make([]rec, 0, n)
	var buf []byte
	for i := range c.shards {
		for _, e := range c.shards[i].flushing {
			if cap(buf)-len(buf) < 512 {
				buf = make([]byte, 0, 64<<10)
			}
			at := len(buf)
			buf = append(buf, e.Key...)
			k := buf[at:len(buf):len(buf)]
			at = len(buf)
			var err error
			if buf, err = encodeGrey(buf, e); err != nil {
				err = fmt.Errorf("store: encode grey entry %q: %w", e.Key, err)
				c.restore(err)
				return err
			}
			recs = append(recs, rec{k: k, v: buf[at:len(buf):len(buf)], h: c.grey.hash(k)})
		}
	}
	// In key order the tree is walked once instead of jumped around in.
	slices.SortFunc(recs, func(a, b rec) int { return bytes.Compare(a.k, b.k) })
	err := c.update(ctx, "flush greylist", func(tx *bolt.Tx) error {
		bk := bucket(tx, Grey)
		for i := range recs {
			r := &recs[i]
			c.grey.add(r.h)
			if err := bk.Put(r.k, r.v); err != nil {
				return own(fmt.Errorf("store: put grey entry %q: %w", r.k, err))
			}
		}
		return nil
	})
	c.restore(err)
	return err
}

// restore ends a flush: on error the sightings being written go back to
// the pending ones (unless newer ones replaced them).
func (c *GreyCache) restore(err error) {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		if err != nil {
			for k, e := range sh.flushing {
				if _, newer := sh.dirty[k]; !newer {
					sh.dirty[k] = e
				}
			}
		}
		sh.flushing = nil
		sh.mu.Unlock()
	}
}

// Pending returns how many sightings wait for the next flush.
func (c *GreyCache) Pending() int {
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		n += len(sh.dirty)
		sh.mu.Unlock()
	}
	return n
}

// Run flushes every interval until ctx is done, then once more, passing
// each error to log (if non-nil).
func (c *GreyCache) Run(ctx context.Context, every time.Duration, log func(error)) {
	if log == nil {
		log = func(error) {}
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if err := c.Flush(context.Background()); err != nil {
				log(err)
			}
			return
		case <-t.C:
			if err := c.Flush(ctx); err != nil && ctx.Err() == nil {
				log(err)
			}
		}
	}
}

// Close flushes pending sightings and closes the file.
func (c *GreyCache) Close() error {
	return errors.Join(c.Flush(context.Background()), c.Bolt.Close())
}
