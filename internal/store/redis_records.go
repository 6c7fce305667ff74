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

// Candidates, events and trap records in Redis; the layout is in the
// Redis type's comment.

func (r *Redis) candKey(addr string) string { return r.prefix + "c:" + addr }

func (r *Redis) getCandidate(ctx context.Context, c redis.Cmdable, addr string) (Candidate, bool, error) {
	v, err := c.Get(ctx, r.candKey(addr)).Bytes()
	if errors.Is(err, redis.Nil) {
		return Candidate{}, false, nil
	}
	if err != nil {
		return Candidate{}, false, err
	}
	var cd Candidate
	if err := json.Unmarshal(v, &cd); err != nil {
		return Candidate{}, false, own(fmt.Errorf("store: decode candidate %q: %w", addr, err))
	}
	cd.Address = addr
	return cd, true, nil
}

// updateCandidate is the transaction shared by AddCandidateEvidence and
// DecideCandidate.
func (r *Redis) updateCandidate(ctx context.Context, op, addr string, step func(Candidate, bool) Candidate) (Candidate, error) {
	var out Candidate
	err := r.txn(ctx, op, func(tx *redis.Tx, queue func(func(redis.Pipeliner) error) error) error {
		c, found, err := r.getCandidate(ctx, tx, addr)
		if err != nil {
			return err
		}
		c = step(c, found)
		v, err := json.Marshal(c)
		if err != nil {
			return own(fmt.Errorf("store: encode candidate %q: %w", addr, err))
		}
		if err := queue(func(p redis.Pipeliner) error {
			p.Set(ctx, r.candKey(addr), v, 0)
			p.ZAdd(ctx, r.prefix+"ci", redis.Z{Member: addr})
			return nil
		}); err != nil {
			return err
		}
		out = c
		return nil
	}, r.candKey(addr))
	return out, err
}

// AddCandidateEvidence implements Store.
func (r *Redis) AddCandidateEvidence(ctx context.Context, addr, network string, ev Evidence) (Candidate, error) {
	if addr == "" {
		return Candidate{}, fmt.Errorf("store: candidate without an address")
	}
	return r.updateCandidate(ctx, "add candidate evidence", addr, func(c Candidate, found bool) Candidate {
		return addEvidence(c, found, addr, network, ev)
	})
}

// GetCandidate implements Store.
func (r *Redis) GetCandidate(ctx context.Context, addr string) (Candidate, error) {
	c, found, err := r.getCandidate(ctx, r.c, addr)
	if err != nil {
		return Candidate{}, rerr("get candidate", err)
	}
	if !found {
		return Candidate{}, ErrNotFound
	}
	return c, nil
}

// DecideCandidate implements Store.
func (r *Redis) DecideCandidate(ctx context.Context, addr string, state CandidateState, by string, now time.Time) (Candidate, error) {
	switch state {
	case CandidatePending, CandidateApproved, CandidateRejected:
	default:
		return Candidate{}, fmt.Errorf("store: unknown candidate state %q", state)
	}
	return r.updateCandidate(ctx, "decide candidate", addr, func(c Candidate, found bool) Candidate {
		if !found {
			c = Candidate{Address: addr, First: now, Last: now}
		}
		c.State, c.Decided, c.By = state, now, by
		return c
	})
}

// Candidates implements Store: the index (all scores 0, so in byte order)
// and then one MGET per chunk.
func (r *Redis) Candidates(ctx context.Context, fn func(Candidate) error) error {
	addrs, err := r.c.ZRange(ctx, r.prefix+"ci", 0, -1).Result()
	if err != nil {
		return rerr("list candidates", err)
	}
	for chunk := range slices.Chunk(addrs, listChunk) {
		keys := make([]string, len(chunk))
		for i, a := range chunk {
			keys[i] = r.candKey(a)
		}
		vs, err := r.c.MGet(ctx, keys...).Result()
		if err != nil {
			return rerr("list candidates", err)
		}
		for i, v := range vs {
			s, ok := v.(string)
			if !ok {
				continue
			}
			var c Candidate
			if err := json.Unmarshal([]byte(s), &c); err != nil {
				return fmt.Errorf("store: decode candidate %q: %w", chunk[i], err)
			}
			c.Address = chunk[i]
			if err := fn(c); err != nil {
				return err
			}
		}
	}
	return nil
}

// Events: one sorted set, score = time in ms, member = "<ns>:<seq>:<json>"
// (20-digit time first, so members of one millisecond sort by time too and
// equal events never collapse into one member).

func (r *Redis) evKey() string { return r.prefix + "ev" }

// AddEvents implements EventLog.
func (r *Redis) AddEvents(ctx context.Context, evs []Event) error {
	if len(evs) == 0 {
		return nil
	}
	last, err := r.c.IncrBy(ctx, r.prefix+"evseq", int64(len(evs))).Result()
	if err != nil {
		return rerr("add events", err)
	}
	seq := last - int64(len(evs))
	zs := make([]redis.Z, len(evs))
	for i, ev := range evs {
		v, err := json.Marshal(ev)
		if err != nil {
			return fmt.Errorf("store: encode event: %w", err)
		}
		seq++
		zs[i] = redis.Z{Score: float64(ev.Time.UnixMilli()), Member: eventMember(ev.Time, seq, v)}
	}
	return rerr("add events", r.c.ZAdd(ctx, r.evKey(), zs...).Err())
}

// eventMember is an event's sorted-set member: its time, a sequence
// number and the event's JSON.
func eventMember(t time.Time, seq int64, v []byte) string {
	return fmt.Sprintf("%020d:%d:%s", max(t.UnixNano(), 0), seq, v)
}

// decodeEventMember parses what eventMember made; false for anything else.
func decodeEventMember(m string) (Event, bool) {
	var ev Event
	for range 2 {
		i := 0
		for i < len(m) && m[i] != ':' {
			i++
		}
		if i == len(m) {
			return ev, false
		}
		m = m[i+1:]
	}
	return ev, json.Unmarshal([]byte(m), &ev) == nil
}

// eventChunk is how many events one ZRANGE of Events reads.
const eventChunk = 1000

// Events implements EventLog, paging through the score range; the edges
// are exact to the nanosecond because each event's own time is checked.
func (r *Redis) Events(ctx context.Context, since, until time.Time, fn func(Event) error) error {
	rng := &redis.ZRangeBy{Min: strconv.FormatInt(since.UnixMilli(), 10), Max: "+inf", Count: eventChunk}
	if !until.IsZero() {
		rng.Max = strconv.FormatInt(ms(until), 10)
	}
	for {
		ms, err := r.c.ZRangeByScore(ctx, r.evKey(), rng).Result()
		if err != nil {
			return rerr("events", err)
		}
		for _, m := range ms {
			ev, ok := decodeEventMember(m)
			if !ok || ev.Time.Before(since) || (!until.IsZero() && !ev.Time.Before(until)) {
				continue // one bad record must not hide the rest
			}
			if err := fn(ev); err != nil {
				return err
			}
		}
		if len(ms) < eventChunk {
			return nil
		}
		rng.Offset += eventChunk
	}
}

// ExpireEvents implements EventLog: whole milliseconds before the cut by
// score, the cut's own millisecond event by event.
func (r *Redis) ExpireEvents(ctx context.Context, before time.Time) (int, error) {
	cut := before.UnixMilli()
	n, err := r.c.ZRemRangeByScore(ctx, r.evKey(), "-inf", "("+strconv.FormatInt(cut, 10)).Result()
	if err != nil {
		return 0, rerr("expire events", err)
	}
	edge, err := r.c.ZRangeByScore(ctx, r.evKey(), &redis.ZRangeBy{Min: strconv.FormatInt(cut, 10), Max: strconv.FormatInt(cut, 10)}).Result()
	if err != nil {
		return int(n), rerr("expire events", err)
	}
	var dead []any
	for _, m := range edge {
		if ev, ok := decodeEventMember(m); ok && ev.Time.Before(before) {
			dead = append(dead, m)
		}
	}
	if len(dead) > 0 {
		m, err := r.c.ZRem(ctx, r.evKey(), dead...).Result()
		n += m
		if err != nil {
			return int(n), rerr("expire events", err)
		}
	}
	return int(n), nil
}

// Harvests and trap hits.

func (r *Redis) harvestKey(a string) string { return r.prefix + "h:" + a }
func (r *Redis) trapHitKey(c string) string { return r.prefix + "t:" + c }
func (r *Redis) trapIndexKey() string       { return r.prefix + "ti" }

// PutHarvest implements TrapStore with SET NX, so two hosts never hand
// out one address twice.
func (r *Redis) PutHarvest(ctx context.Context, h Harvest) error {
	v, err := json.Marshal(h)
	if err != nil {
		return fmt.Errorf("store: encode harvest %q: %w", h.Address, err)
	}
	a := redis.SetArgs{Mode: "NX"}
	if !h.Expires.IsZero() {
		a.ExpireAt = time.UnixMilli(ms(h.Expires))
	}
	err = r.c.SetArgs(ctx, r.harvestKey(h.Address), v, a).Err()
	if errors.Is(err, redis.Nil) {
		return fmt.Errorf("store: harvest address %q: %w", h.Address, ErrExists)
	}
	if err != nil {
		return rerr("put harvest", err)
	}
	// The index only lets Expire count and remove what TTL has not yet.
	return rerr("put harvest", r.c.ZAdd(ctx, r.prefix+"hi", redis.Z{Score: expScore(h.Expires), Member: h.Address}).Err())
}

// GetHarvest implements TrapStore.
func (r *Redis) GetHarvest(ctx context.Context, address string) (Harvest, error) {
	v, err := r.c.Get(ctx, r.harvestKey(address)).Bytes()
	if errors.Is(err, redis.Nil) {
		return Harvest{}, ErrNotFound
	}
	if err != nil {
		return Harvest{}, rerr("get harvest", err)
	}
	var h Harvest
	if err := json.Unmarshal(v, &h); err != nil {
		return Harvest{}, fmt.Errorf("store: decode harvest %q: %w", address, err)
	}
	if !h.Expires.IsZero() && !time.Now().Before(h.Expires) {
		return Harvest{}, ErrNotFound
	}
	return h, nil
}

func decodeHits(ms []string) []TrapHit {
	hs := make([]TrapHit, 0, len(ms))
	for _, m := range ms {
		var h TrapHit
		if json.Unmarshal([]byte(m), &h) == nil {
			hs = append(hs, h)
		}
	}
	return hs
}

// AddTrapHit implements TrapStore: the client's hits are one sorted set
// (score = expiry), counted and appended in one optimistic transaction.
// The set has no TTL of its own (its members expire one by one): Expire
// trims it, and reads skip expired hits meanwhile.
func (r *Redis) AddTrapHit(ctx context.Context, h TrapHit) (prior int, err error) {
	key := r.trapHitKey(h.Client)
	err = r.txn(ctx, "add trap hit", func(tx *redis.Tx, queue func(func(redis.Pipeliner) error) error) error {
		ms, err := tx.ZRange(ctx, key, 0, -1).Result()
		if err != nil {
			return err
		}
		n := 0
		top := expScore(h.Expires)
		for _, old := range decodeHits(ms) {
			if old.Expires.IsZero() || h.Time.Before(old.Expires) {
				n++
			}
			top = math.Max(top, expScore(old.Expires))
		}
		h.Prior = n
		v, err := json.Marshal(h)
		if err != nil {
			return own(fmt.Errorf("store: encode trap hit: %w", err))
		}
		if err := queue(func(p redis.Pipeliner) error {
			p.ZAdd(ctx, key, redis.Z{Score: expScore(h.Expires), Member: v})
			p.ZAdd(ctx, r.trapIndexKey(), redis.Z{Score: top, Member: h.Client})
			return nil
		}); err != nil {
			return err
		}
		prior = n
		return nil
	}, key)
	return prior, err
}

// ListTrapHits implements TrapStore: clients in byte order, each client's
// hits by time.
func (r *Redis) ListTrapHits(ctx context.Context, fn func(TrapHit) error) error {
	clients, err := r.c.ZRange(ctx, r.trapIndexKey(), 0, -1).Result()
	if err != nil {
		return rerr("list trap hits", err)
	}
	slices.Sort(clients)
	now := time.Now()
	for _, c := range clients {
		ms, err := r.c.ZRange(ctx, r.trapHitKey(c), 0, -1).Result()
		if err != nil {
			return rerr("list trap hits", err)
		}
		hs := decodeHits(ms)
		slices.SortStableFunc(hs, func(a, b TrapHit) int { return a.Time.Compare(b.Time) })
		for _, h := range hs {
			if !h.Expires.IsZero() && !now.Before(h.Expires) {
				continue
			}
			if err := fn(h); err != nil {
				return err
			}
		}
	}
	return nil
}

// expireTrapHits trims each client's hit set (KEYS[1]) to the hits
// expiring after ARGV[1] and drops the client from the index (KEYS[2],
// member ARGV[2]) when none is left; it returns how many hits it removed.
var expireTrapHits = redis.NewScript(`
local n = redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('ZREM', KEYS[2], ARGV[2]) end
return n
`)

// expireTrapRecords is Expire's part for harvests and trap hits.
func (r *Redis) expireTrapRecords(ctx context.Context, now time.Time) (int, error) {
	max := strconv.FormatInt(now.UnixMilli(), 10)
	n, err := expireIndex.Run(ctx, r.c, []string{r.prefix + "hi"}, max, r.harvestKey("")).Int()
	if err != nil {
		return 0, rerr("expire", err)
	}
	clients, err := r.c.ZRange(ctx, r.trapIndexKey(), 0, -1).Result()
	if err != nil {
		return n, rerr("expire", err)
	}
	for _, c := range clients {
		m, err := expireTrapHits.Run(ctx, r.c, []string{r.trapHitKey(c), r.trapIndexKey()}, max, c).Int()
		if err != nil {
			return n, rerr("expire", err)
		}
		n += m
	}
	return n, nil
}
