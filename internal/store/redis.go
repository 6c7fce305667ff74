package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is the shared Store: several MX hosts point at one Redis or Valkey
// (standalone, Sentinel or Cluster, through go-redis's UniversalClient) and
// see one greylist, one set of white and black entries and one trap record.
//
// Layout, every key under "{prefix}:" (the braces are a Cluster hash tag,
// so all of greypit's keys live in one slot and MULTI/WATCH covers them;
// Cluster then gives failover, not sharding):
//
//	e:<kind>:<key>   an Entry as JSON, with PEXPIREAT at Entry.Expires
//	i:<kind>         sorted set of that kind's keys, score = expiry (ms, +inf: never)
//	c:<addr>         a Candidate as JSON; ci: sorted set of candidate addresses
//	h:<addr>         a Harvest as JSON, SET NX with its expiry; hi: index by expiry
//	t:<client>       sorted set of that client's TrapHits (score = expiry, no TTL); ti: the clients
//	a:<addr>         auto-whitelist counter (CountPass); ai: index by expiry
//	ev               sorted set of Events, score = time in ms; evseq: their counter
//
// Read-modify-write operations (Greylist, Refresh, candidate evidence, trap
// hits) are optimistic transactions: WATCH the key, read, apply the same
// pure step function the bbolt backend uses, MULTI/EXEC, and start over if
// another host wrote the key in between. Entries vanish on their own by TTL;
// Expire only trims the index sets.
type Redis struct {
	c      redis.UniversalClient
	prefix string
	wait   int           // WAIT for this many replicas after a white entry write
	waitT  time.Duration // for at most this long
}

var _ Store = (*Redis)(nil)

// RedisOptions configure OpenRedis.
type RedisOptions struct {
	Addrs      []string // host:port; several and no MasterName: Cluster
	MasterName string   // Sentinel master name; Addrs are then the sentinels
	Password   string
	DB         int    // database number (standalone and Sentinel only)
	Prefix     string // key namespace; empty: "greypit"
	Timeout    time.Duration
	// WaitReplicas, if positive, makes every white entry write (Refresh,
	// Put of a white entry) wait until that many replicas have it (Redis
	// WAIT, for at most WaitTimeout: default half of Timeout, and it must
	// be shorter) and fail otherwise.
	// Replication is asynchronous: without it, a master that dies right
	// after acknowledging a white entry can take it along, and the
	// promoted replica makes the host greylisted again (see README,
	// "Redis Sentinel failover").
	WaitReplicas int
	WaitTimeout  time.Duration
}

// ErrNotReplicated is wrapped by a white entry write that reached the
// master but not RedisOptions.WaitReplicas replicas in time.
var ErrNotReplicated = errors.New("not confirmed by enough replicas")

// maxTxRetries bounds the optimistic transaction loop; each retry means
// another host committed a write to the same key, so this many in a row
// only happens under a pathological storm on one tuple.
const maxTxRetries = 1000

// quiet drops go-redis's own log lines (dial failures, pool notes): every
// failure also comes back from the call as an error, which greypit logs
// with the connection it concerns.
type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

var quietOnce sync.Once

// OpenRedis returns a store on the given Redis. It does not wait for the
// server: an unreachable Redis shows as errors from the methods, which is
// what store.unreachable acts on.
func OpenRedis(o RedisOptions) (*Redis, error) {
	if len(o.Addrs) == 0 {
		return nil, errors.New("store: redis: no address")
	}
	if o.Prefix == "" {
		o.Prefix = "greypit"
	}
	if strings.ContainsAny(o.Prefix, "{}") {
		return nil, fmt.Errorf("store: redis: prefix %q must not contain braces", o.Prefix)
	}
	quietOnce.Do(func() { redis.SetLogger(quiet{}) })
	t := o.Timeout
	if t <= 0 {
		t = 2 * time.Second
	}
	c := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:        o.Addrs,
		MasterName:   o.MasterName,
		Password:     o.Password,
		DB:           o.DB,
		DialTimeout:  t,
		ReadTimeout:  t,
		WriteTimeout: t,
		MaxRetries:   1,
		// No client-side identity or maintenance notifications: plain
		// RESP commands that Valkey and older Redis versions answer.
		DisableIdentity: true,
	})
	if o.WaitReplicas < 0 {
		return nil, fmt.Errorf("store: redis: wait replicas %d is negative", o.WaitReplicas)
	}
	// WAIT blocks on the connection, so it must answer within the read
	// timeout.
	wt := o.WaitTimeout
	if wt <= 0 {
		wt = t / 2
	}
	if o.WaitReplicas > 0 && wt >= t {
		return nil, fmt.Errorf("store: redis: wait timeout %v must be shorter than the timeout %v", wt, t)
	}
	return &Redis{c: c, prefix: "{" + o.Prefix + "}:", wait: o.WaitReplicas, waitT: wt}, nil
}

// Ping checks that the server answers.
func (r *Redis) Ping(ctx context.Context) error {
	if err := r.c.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("store: redis: %w", err)
	}
	return nil
}

// Close implements Store.
func (r *Redis) Close() error {
	if err := r.c.Close(); err != nil {
		return fmt.Errorf("store: redis: close: %w", err)
	}
	return nil
}

func (r *Redis) entryKey(k Kind, key string) string { return r.prefix + "e:" + string(k) + ":" + key }
func (r *Redis) indexKey(k Kind) string             { return r.prefix + "i:" + string(k) }

// ms is t as Unix milliseconds, rounded up so a key never vanishes before
// the entry would stop being live.
func ms(t time.Time) int64 {
	m := t.UnixMilli()
	if t.Sub(time.UnixMilli(m)) > 0 {
		m++
	}
	return m
}

// expScore is an expiry as a sorted-set score: +inf for never.
func expScore(t time.Time) float64 {
	if t.IsZero() {
		return math.Inf(1)
	}
	return float64(ms(t))
}

func rerr(op string, err error) error {
	if err == nil || errors.Is(err, ErrNotFound) || errors.Is(err, ErrExists) {
		return err
	}
	var se *storeError
	if errors.As(err, &se) {
		return se.err
	}
	return fmt.Errorf("store: %s: %w", op, err)
}

// putEntry queues the writes of e: value with its TTL, and its index member.
func (r *Redis) putEntry(ctx context.Context, p redis.Pipeliner, e Entry) error {
	v, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("store: encode %s entry %q: %w", e.Kind, e.Key, err)
	}
	ek := r.entryKey(e.Kind, e.Key)
	if e.Expires.IsZero() {
		p.Set(ctx, ek, v, 0)
	} else {
		p.SetArgs(ctx, ek, v, redis.SetArgs{ExpireAt: time.UnixMilli(ms(e.Expires))})
	}
	p.ZAdd(ctx, r.indexKey(e.Kind), redis.Z{Score: expScore(e.Expires), Member: e.Key})
	return nil
}

func decodeLive(k Kind, key string, v []byte, now time.Time) (Entry, bool, error) {
	e, err := decode(k, []byte(key), v)
	if err != nil {
		return Entry{}, false, own(err) // already says what failed
	}
	return e, e.Live(now), nil
}

// getLive reads one entry inside or outside a transaction.
func (r *Redis) getLive(ctx context.Context, c redis.Cmdable, k Kind, key string, now time.Time) (Entry, bool, error) {
	v, err := c.Get(ctx, r.entryKey(k, key)).Bytes()
	if errors.Is(err, redis.Nil) {
		return Entry{}, false, nil
	}
	if err != nil {
		return Entry{}, false, err
	}
	return decodeLive(k, key, v, now)
}

// txn runs fn as an optimistic transaction over the watched keys: fn reads
// through tx and queues its writes on the pipeline it is handed; a
// concurrent write to a watched key makes the whole thing start over.
func (r *Redis) txn(ctx context.Context, op string, fn func(tx *redis.Tx, queue func(func(redis.Pipeliner) error) error) error, keys ...string) error {
	for range maxTxRetries {
		err := r.c.Watch(ctx, func(tx *redis.Tx) error {
			return fn(tx, func(w func(redis.Pipeliner) error) error {
				var inner error
				_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
					inner = w(p)
					return inner
				})
				if inner != nil {
					return own(inner)
				}
				return err
			})
		}, keys...)
		if errors.Is(err, redis.TxFailedErr) {
			continue
		}
		return rerr(op, err)
	}
	return fmt.Errorf("store: %s: gave up after %d conflicting concurrent writes", op, maxTxRetries)
}

// Get implements Store.
func (r *Redis) Get(ctx context.Context, k Kind, key string) (Entry, error) {
	if err := validKind(k); err != nil {
		return Entry{}, err
	}
	if key == "" {
		return Entry{}, ErrNotFound
	}
	e, found, err := r.getLive(ctx, r.c, k, key, time.Now())
	if err != nil {
		return Entry{}, rerr("get", err)
	}
	if !found {
		return Entry{}, ErrNotFound
	}
	return e, nil
}

// Match implements Store: the first of MatchAll.
func (r *Redis) Match(ctx context.Context, k Kind, addr netip.Addr) (Entry, error) {
	return first(r.MatchAll(ctx, k, addr))
}

// MatchAll implements Store with one MGET of every candidate key (the
// address and each prefix containing it, longest first: 33 keys for IPv4,
// 129 for IPv6): one round trip, whatever is stored.
func (r *Redis) MatchAll(ctx context.Context, k Kind, addr netip.Addr) ([]Entry, error) {
	addr, err := matchAddr(k, addr)
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, addr.BitLen()+1)
	names := make([]string, 0, addr.BitLen()+1)
	for bits := addr.BitLen(); bits >= 0; bits-- {
		key := AddrKey(addr)
		if bits < addr.BitLen() {
			key = netip.PrefixFrom(addr, bits).Masked().String()
		}
		names = append(names, key)
		keys = append(keys, r.entryKey(k, key))
	}
	vs, err := r.c.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, rerr("match", err)
	}
	now := time.Now()
	var out []Entry
	for i, v := range vs {
		s, ok := v.(string)
		if !ok {
			continue
		}
		e, live, err := decodeLive(k, names[i], []byte(s), now)
		if err != nil {
			return nil, rerr("match", err)
		}
		if live {
			out = append(out, e)
		}
	}
	return out, nil
}

// Put implements Store.
func (r *Redis) Put(ctx context.Context, e Entry) error {
	if err := CheckEntry(e); err != nil {
		return err
	}
	if e.Kind == White && r.wait > 0 {
		// WAIT must follow the write on its connection: a transaction
		// pins one.
		return r.txn(ctx, "put", func(tx *redis.Tx, queue func(func(redis.Pipeliner) error) error) error {
			if err := queue(func(p redis.Pipeliner) error { return r.putEntry(ctx, p, e) }); err != nil {
				return err
			}
			return r.waitReplicas(ctx, tx)
		}, r.entryKey(e.Kind, e.Key))
	}
	_, err := r.c.TxPipelined(ctx, func(p redis.Pipeliner) error { return r.putEntry(ctx, p, e) })
	return rerr("put", err)
}

// waitReplicas sends WAIT on tx's connection, right after its write, when
// the store is configured to.
func (r *Redis) waitReplicas(ctx context.Context, tx *redis.Tx) error {
	if r.wait <= 0 {
		return nil
	}
	n, err := tx.Do(ctx, "WAIT", r.wait, r.waitT.Milliseconds()).Int()
	if err != nil {
		return fmt.Errorf("wait for replicas: %w", err)
	}
	if n < r.wait {
		return own(fmt.Errorf("store: white entry written on the master, %d of %d replicas have it after %v: %w", n, r.wait, r.waitT, ErrNotReplicated))
	}
	return nil
}

// Delete implements Store.
func (r *Redis) Delete(ctx context.Context, k Kind, key string) (bool, error) {
	if err := validKind(k); err != nil {
		return false, err
	}
	if key == "" {
		return false, nil
	}
	var get *redis.StringCmd
	_, err := r.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		get = p.Get(ctx, r.entryKey(k, key))
		p.Del(ctx, r.entryKey(k, key))
		p.ZRem(ctx, r.indexKey(k), key)
		return nil
	})
	if errors.Is(err, redis.Nil) {
		err = nil
	}
	if err != nil {
		return false, rerr("delete", err)
	}
	v, err := get.Bytes()
	if err != nil {
		return false, nil
	}
	// An undecodable value is deleted too and counts, as in bbolt.
	_, live, err := decodeLive(k, key, v, time.Now())
	return err != nil || live, nil
}

// listChunk is how many keys List reads per round trip.
const listChunk = 500

// List implements Store. It reads the kind's index set whole, sorts it
// (byte order, as bbolt keeps it) and fetches the values in chunks of
// listChunk per MGET: O(n) memory for the key names and n/500 round trips,
// fine for dumps and `greypit db list`, not for a hot path.
func (r *Redis) List(ctx context.Context, k Kind, fn func(Entry) error) error {
	kinds, err := listKinds(k)
	if err != nil {
		return err
	}
	now := time.Now()
	for _, k := range kinds {
		names, err := r.c.ZRange(ctx, r.indexKey(k), 0, -1).Result()
		if err != nil {
			return rerr("list", err)
		}
		slices.Sort(names)
		for chunk := range slices.Chunk(names, listChunk) {
			keys := make([]string, len(chunk))
			for i, n := range chunk {
				keys[i] = r.entryKey(k, n)
			}
			vs, err := r.c.MGet(ctx, keys...).Result()
			if err != nil {
				return rerr("list", err)
			}
			for i, v := range vs {
				s, ok := v.(string)
				if !ok {
					continue
				}
				e, live, err := decodeLive(k, chunk[i], []byte(s), now)
				if err != nil {
					return rerr("list", err)
				}
				if !live {
					continue
				}
				if err := fn(e); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// Greylist implements Store.
func (r *Redis) Greylist(ctx context.Context, key, client string, now time.Time, p GreyParams) (Entry, GreyOutcome, error) {
	if key == "" {
		return Entry{}, 0, errors.New("store: greylist: empty key")
	}
	if err := checkGreyParams(p); err != nil {
		return Entry{}, 0, err
	}
	now = now.Round(0)
	var (
		out     Entry
		outcome GreyOutcome
	)
	err := r.txn(ctx, "greylist", func(tx *redis.Tx, queue func(func(redis.Pipeliner) error) error) error {
		old, found, err := r.getLive(ctx, tx, Grey, key, now)
		if err != nil {
			return err
		}
		e, o := greyStep(old, found, key, client, now, p)
		if err := queue(func(p redis.Pipeliner) error { return r.putEntry(ctx, p, e) }); err != nil {
			return err
		}
		out, outcome = e, o
		return nil
	}, r.entryKey(Grey, key))
	if err != nil {
		return Entry{}, 0, err
	}
	return out, outcome, nil
}

// Refresh implements Store.
func (r *Redis) Refresh(ctx context.Context, key, reason, source string, now time.Time, ttl time.Duration) (Entry, error) {
	if err := checkAddrKey(key); err != nil {
		return Entry{}, fmt.Errorf("store: refresh: %w", err)
	}
	if ttl <= 0 {
		return Entry{}, fmt.Errorf("store: refresh %q: ttl %v is not positive", key, ttl)
	}
	now = now.Round(0)
	var out Entry
	err := r.txn(ctx, "refresh", func(tx *redis.Tx, queue func(func(redis.Pipeliner) error) error) error {
		old, found, err := r.getLive(ctx, tx, White, key, now)
		if err != nil {
			return err
		}
		e := refreshStep(old, found, key, reason, source, now, ttl)
		if err := queue(func(p redis.Pipeliner) error { return r.putEntry(ctx, p, e) }); err != nil {
			return err
		}
		if err := r.waitReplicas(ctx, tx); err != nil {
			return err
		}
		out = e
		return nil
	}, r.entryKey(White, key))
	if err != nil {
		return Entry{}, err
	}
	return out, nil
}

// Expire implements Store. Entries, harvests and trap hits vanish by TTL;
// this removes the index members left behind (entries whose expiry is at
// or before now) and reports how many.
func (r *Redis) Expire(ctx context.Context, now time.Time) (int, error) {
	max := strconv.FormatInt(now.UnixMilli(), 10)
	n := 0
	for _, k := range Kinds {
		m, err := expireIndex.Run(ctx, r.c, []string{r.indexKey(k)}, max, r.entryKey(k, "")).Int()
		if err != nil {
			return n, rerr("expire", err)
		}
		n += m
	}
	// Auto-whitelist counters: the index by their own expiry.
	m, err := expireIndex.Run(ctx, r.c, []string{r.prefix + "ai"}, max, r.awlKey("")).Int()
	if err != nil {
		return n, rerr("expire", err)
	}
	n += m
	m, err = r.expireTrapRecords(ctx, now)
	return n + m, err
}

// expireIndex removes the members of an index set (KEYS[1]) whose expiry
// score is at or before ARGV[1] together with their values (ARGV[2] is the
// value key prefix), atomically, so an entry re-added meanwhile with a later
// expiry is untouched. The values are normally gone by TTL already; deleting
// them keeps Expire exact when now is ahead of the server's clock.
var expireIndex = redis.NewScript(`
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
for _, m in ipairs(dead) do redis.call('DEL', ARGV[2] .. m) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
return #dead
`)

// RunExpiry calls Expire with the current time right away and then every
// interval until ctx is done, passing each result to log (if non-nil).
func (r *Redis) RunExpiry(ctx context.Context, every time.Duration, log func(n int, err error)) {
	runExpiry(ctx, r, every, log)
}
