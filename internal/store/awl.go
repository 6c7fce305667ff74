package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// awlBucket holds postgrey-style auto-whitelist counters: per client
// address, how many greylisted tuples it passed (at most one counted per
// gap) and when the last one was counted. The white entry a client earns
// lives in the white bucket; this is only the count towards it.
var awlBucket = []byte("awl")

// awlValue is count (8 bytes) | last counted (8 bytes, Unix seconds) |
// expires (8 bytes, Unix seconds).
const awlValueLen = 24

// CountPass implements Store.
func (b *Bolt) CountPass(ctx context.Context, addrKey string, now time.Time, gap, ttl time.Duration) (int64, error) {
	if err := checkAddrKey(addrKey); err != nil {
		return 0, fmt.Errorf("store: count pass: %w", err)
	}
	if ttl <= 0 {
		return 0, fmt.Errorf("store: count pass %q: ttl %v is not positive", addrKey, ttl)
	}
	var n int64
	err := b.update(ctx, "count pass", func(tx *bolt.Tx) error {
		bk, err := tx.CreateBucketIfNotExists(awlBucket)
		if err != nil {
			return err
		}
		count, last := countPassStep(bk.Get([]byte(addrKey)), now, gap)
		n = count
		var v [awlValueLen]byte
		binary.BigEndian.PutUint64(v[0:], uint64(count))
		binary.BigEndian.PutUint64(v[8:], uint64(last))
		binary.BigEndian.PutUint64(v[16:], uint64(now.Add(ttl).Unix()))
		return bk.Put([]byte(addrKey), v[:])
	})
	return n, err
}

// countPassStep is postgrey's rule: a pass counts if the last counted one
// is at least gap old (or in the future: a clock that jumped back); an
// expired or undecodable counter starts again.
func countPassStep(old []byte, now time.Time, gap time.Duration) (count, last int64) {
	if len(old) != awlValueLen || int64(binary.BigEndian.Uint64(old[16:])) <= now.Unix() {
		return 1, now.Unix()
	}
	count = int64(binary.BigEndian.Uint64(old[0:]))
	last = int64(binary.BigEndian.Uint64(old[8:]))
	if now.Unix() >= last+int64(gap/time.Second) || last > now.Unix() {
		return count + 1, now.Unix()
	}
	return count, last
}

// expireAWL deletes the auto-whitelist counters that expired at or before
// now.
func expireAWL(tx *bolt.Tx, now time.Time) (int, error) {
	bk := tx.Bucket(awlBucket)
	if bk == nil {
		return 0, nil
	}
	var dead [][]byte
	err := bk.ForEach(func(k, v []byte) error {
		if len(v) != awlValueLen || int64(binary.BigEndian.Uint64(v[16:])) <= now.Unix() {
			dead = append(dead, bytes.Clone(k))
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, k := range dead {
		if err := bk.Delete(k); err != nil {
			return 0, err
		}
	}
	return len(dead), nil
}
