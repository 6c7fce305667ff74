package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// The DumpStore methods of Redis (restore.go).

// indexed calls fn with every member of the index set idx (in byte order)
// and its value under key(member), one MGET per listChunk members; members
// whose value is gone are skipped.
func (r *Redis) indexed(ctx context.Context, op, idx string, key func(string) string, fn func(member, value string) error) error {
	names, err := r.c.ZRange(ctx, idx, 0, -1).Result()
	if err != nil {
		return rerr(op, err)
	}
	slices.Sort(names)
	for chunk := range slices.Chunk(names, listChunk) {
		keys := make([]string, len(chunk))
		for i, n := range chunk {
			keys[i] = key(n)
		}
		vs, err := r.c.MGet(ctx, keys...).Result()
		if err != nil {
			return rerr(op, err)
		}
		for i, v := range vs {
			if s, ok := v.(string); ok {
				if err := fn(chunk[i], s); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// AWLCounters implements DumpStore.
func (r *Redis) AWLCounters(ctx context.Context, now time.Time, fn func(AWLCounter) error) error {
	return r.indexed(ctx, "list awl counters", r.prefix+"ai", r.awlKey, func(m, v string) error {
		if a, ok := decodeAWL(m, []byte(v), now); ok {
			return fn(a)
		}
		return nil
	})
}

// PutAWLCounter implements DumpStore. The key expires with the counter.
func (r *Redis) PutAWLCounter(ctx context.Context, a AWLCounter) error {
	if err := checkAddrKey(a.Key); err != nil {
		return fmt.Errorf("store: put awl counter: %w", err)
	}
	_, err := r.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.SetArgs(ctx, r.awlKey(a.Key), awlValue(a), redis.SetArgs{ExpireAt: a.Expires})
		p.ZAdd(ctx, r.prefix+"ai", redis.Z{Score: float64(a.Expires.Unix() * 1000), Member: a.Key})
		return nil
	})
	return rerr("put awl counter", err)
}

// Harvests implements DumpStore.
func (r *Redis) Harvests(ctx context.Context, now time.Time, fn func(Harvest) error) error {
	return r.indexed(ctx, "list harvests", r.prefix+"hi", r.harvestKey, func(m, v string) error {
		var h Harvest
		if err := json.Unmarshal([]byte(v), &h); err != nil {
			return fmt.Errorf("store: decode harvest %q: %w", m, err)
		}
		if !h.Expires.IsZero() && !now.Before(h.Expires) {
			return nil
		}
		return fn(h)
	})
}

// RestoreHarvest implements DumpStore.
func (r *Redis) RestoreHarvest(ctx context.Context, h Harvest) error {
	v, err := json.Marshal(h)
	if err != nil {
		return fmt.Errorf("store: encode harvest %q: %w", h.Address, err)
	}
	var a redis.SetArgs
	if !h.Expires.IsZero() {
		a.ExpireAt = time.UnixMilli(ms(h.Expires))
	}
	_, err = r.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.SetArgs(ctx, r.harvestKey(h.Address), v, a)
		p.ZAdd(ctx, r.prefix+"hi", redis.Z{Score: expScore(h.Expires), Member: h.Address})
		return nil
	})
	return rerr("restore harvest", err)
}

// RestoreTrapHit implements DumpStore: in one optimistic transaction on
// the client's set, the hits at h's instant are replaced by h.
func (r *Redis) RestoreTrapHit(ctx context.Context, h TrapHit) error {
	v, err := json.Marshal(h)
	if err != nil {
		return fmt.Errorf("store: encode trap hit: %w", err)
	}
	key := r.trapHitKey(h.Client)
	return r.txn(ctx, "restore trap hit", func(tx *redis.Tx, queue func(func(redis.Pipeliner) error) error) error {
		ms, err := tx.ZRange(ctx, key, 0, -1).Result()
		if err != nil {
			return err
		}
		var dead []any
		top := expScore(h.Expires)
		for _, m := range ms {
			var old TrapHit
			if json.Unmarshal([]byte(m), &old) != nil {
				continue
			}
			if old.Time.Equal(h.Time) {
				dead = append(dead, m)
				continue
			}
			top = math.Max(top, expScore(old.Expires))
		}
		return queue(func(p redis.Pipeliner) error {
			if len(dead) > 0 {
				p.ZRem(ctx, key, dead...)
			}
			p.ZAdd(ctx, key, redis.Z{Score: expScore(h.Expires), Member: v})
			p.ZAdd(ctx, r.trapIndexKey(), redis.Z{Score: top, Member: h.Client})
			return nil
		})
	}, key)
}

// PutCandidate implements DumpStore.
func (r *Redis) PutCandidate(ctx context.Context, c Candidate) error {
	if c.Address == "" {
		return fmt.Errorf("store: candidate without an address")
	}
	v, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("store: encode candidate %q: %w", c.Address, err)
	}
	_, err = r.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, r.candKey(c.Address), v, 0)
		p.ZAdd(ctx, r.prefix+"ci", redis.Z{Member: c.Address})
		return nil
	})
	return rerr("put candidate", err)
}

// RestoreEvents implements DumpStore: one pipelined ZRANGEBYSCORE per
// distinct millisecond finds what is stored, then one ZADD adds the rest.
// Not a transaction: two loads of one file at once may both add an event.
func (r *Redis) RestoreEvents(ctx context.Context, evs []Event) error {
	if len(evs) == 0 {
		return nil
	}
	var msecs []int64
	for _, ev := range evs {
		msecs = append(msecs, ev.Time.UnixMilli())
	}
	slices.Sort(msecs)
	msecs = slices.Compact(msecs)
	cmds := make([]*redis.StringSliceCmd, len(msecs))
	_, err := r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, m := range msecs {
			s := strconv.FormatInt(m, 10)
			cmds[i] = p.ZRangeByScore(ctx, r.evKey(), &redis.ZRangeBy{Min: s, Max: s})
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return rerr("restore events", err)
	}
	have := map[string]int{}
	for _, c := range cmds {
		for _, m := range c.Val() {
			if ev, ok := decodeEventMember(m); ok {
				have[eventID(ev)]++
			}
		}
	}
	missing := missingEvents(evs, have)
	if len(missing) == 0 {
		return nil
	}
	return r.AddEvents(ctx, missing)
}
