package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"
)

// Auto-whitelist counters and bulk writes in Redis: "a:<addr>" holds the
// same 24-byte value as bbolt's awl bucket, indexed by expiry in "ai".

func (r *Redis) awlKey(addr string) string { return r.prefix + "a:" + addr }

// CountPass implements Store in one optimistic transaction, with bbolt's
// countPassStep. The key lives ttl after the write (server clock), the
// counter's own expiry (from now) decides whether it starts again.
func (r *Redis) CountPass(ctx context.Context, addrKey string, now time.Time, gap, ttl time.Duration) (int64, error) {
	if err := checkAddrKey(addrKey); err != nil {
		return 0, fmt.Errorf("store: count pass: %w", err)
	}
	if ttl <= 0 {
		return 0, fmt.Errorf("store: count pass %q: ttl %v is not positive", addrKey, ttl)
	}
	key := r.awlKey(addrKey)
	var n int64
	err := r.txn(ctx, "count pass", func(tx *redis.Tx, queue func(func(redis.Pipeliner) error) error) error {
		old, err := tx.Get(ctx, key).Bytes()
		if err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		count, last := countPassStep(old, now, gap)
		exp := now.Add(ttl)
		var v [awlValueLen]byte
		binary.BigEndian.PutUint64(v[0:], uint64(count))
		binary.BigEndian.PutUint64(v[8:], uint64(last))
		binary.BigEndian.PutUint64(v[16:], uint64(exp.Unix()))
		if err := queue(func(p redis.Pipeliner) error {
			p.Set(ctx, key, v[:], ttl)
			p.ZAdd(ctx, r.prefix+"ai", redis.Z{Score: float64(exp.Unix() * 1000), Member: addrKey})
			return nil
		}); err != nil {
			return err
		}
		n = count
		return nil
	}, key)
	return n, err
}

// PutAll writes entries in MULTI/EXEC chunks, for imports. Each must pass
// CheckEntry; nothing is written if one does not. Unlike bbolt's single
// transaction, a failure part-way leaves the chunks before it written
// (each entry whole); running the import again is harmless.
func (r *Redis) PutAll(ctx context.Context, es []Entry) error {
	for _, e := range es {
		if err := CheckEntry(e); err != nil {
			return err
		}
	}
	for chunk := range slices.Chunk(es, listChunk) {
		_, err := r.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
			for _, e := range chunk {
				if err := r.putEntry(ctx, p, e); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return rerr("put all", err)
		}
	}
	return nil
}
