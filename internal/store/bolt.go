package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ErrLocked is wrapped by OpenBolt's error when another process holds the
// database file.
var ErrLocked = errors.New("store: database file is locked")

// DefaultLockTimeout is how long OpenBolt waits for the file lock when
// BoltOptions.Timeout is zero. bbolt itself would wait forever, which would
// hang a `greypit db` command behind a running daemon.
const DefaultLockTimeout = time.Second

// initialMmapSize is the address space bbolt maps at open (1 GiB: about
// 3 million greylist tuples before the first remap).
const initialMmapSize = 1 << 30

// BoltOptions configure OpenBolt.
type BoltOptions struct {
	// Timeout is how long to wait for the file lock; zero means
	// DefaultLockTimeout.
	Timeout time.Duration
	// ReadOnly opens the file with a shared lock and rejects writes. The file
	// must already exist.
	ReadOnly bool
}

// Bolt is the embedded Store: one bbolt file, one bucket per Kind, values
// are JSON-encoded Entry values keyed by Entry.Key.
type Bolt struct {
	db       *bolt.DB
	path     string
	readOnly bool
	lens     [2]prefixLens // white, black: see prefixlens.go
	anyTrap  atomic.Bool   // a trap key may exist: see prefixlens.go
	grey     *greyKeys     // hashes of the grey bucket's keys: see greykeys.go
	closed   atomic.Bool   // for MatchAll's no-transaction path
}

var _ Store = (*Bolt)(nil)

var (
	metaBucket    = []byte("meta")
	schemaKey     = []byte("schema")
	schemaVersion = []byte("1")
)

// OpenBolt opens (creating if needed, unless read-only) the database file at
// path.
func OpenBolt(path string, opts BoltOptions) (*Bolt, error) {
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultLockTimeout
	}
	if !opts.ReadOnly {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("store: open %s: %w", path, err)
		}
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:  timeout,
		ReadOnly: opts.ReadOnly,
		// Growing the file remaps it, and a remap waits for every read
		// transaction and blocks new ones: a latency spike for every
		// connection. Reserving address space up front (not memory)
		// makes remaps rare.
		InitialMmapSize: initialMmapSize,
		// NoSync stays false: every commit is fsynced, so an acknowledged
		// greylist pass or white entry survives a power loss.
	})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("store: open %s: the file is in use, probably by a running `greypit serve` (waited %v): %w",
			path, timeout, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	b := &Bolt{db: db, path: path, readOnly: opts.ReadOnly, grey: newGreyKeys()}
	if err := b.init(); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	return b, nil
}

// init creates the buckets and checks the schema version, so a file written
// by an incompatible future version is refused rather than misread.
func (b *Bolt) init() error {
	check := func(meta *bolt.Bucket) error {
		if meta == nil {
			return nil
		}
		if v := meta.Get(schemaKey); v != nil && !bytes.Equal(v, schemaVersion) {
			return fmt.Errorf("unsupported schema version %q (want %q)", v, schemaVersion)
		}
		return nil
	}
	if b.readOnly {
		return b.db.View(func(tx *bolt.Tx) error {
			if err := check(tx.Bucket(metaBucket)); err != nil {
				return err
			}
			return b.scanLens(tx)
		})
	}
	return b.db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(metaBucket)
		if err != nil {
			return err
		}
		if err := check(meta); err != nil {
			return err
		}
		if err := meta.Put(schemaKey, schemaVersion); err != nil {
			return err
		}
		for _, k := range Kinds {
			if _, err := tx.CreateBucketIfNotExists([]byte(k)); err != nil {
				return err
			}
		}
		return b.scanLens(tx)
	})
}

// Path returns the database file name.
func (b *Bolt) Path() string { return b.path }

// Close releases the file and its lock.
func (b *Bolt) Close() error {
	b.closed.Store(true)
	if err := b.db.Close(); err != nil {
		return fmt.Errorf("store: close %s: %w", b.path, err)
	}
	return nil
}

func validKind(k Kind) error {
	if _, err := ParseKind(string(k)); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

// bucket is nil only in a read-only file that was never initialised.
func bucket(tx *bolt.Tx, k Kind) *bolt.Bucket { return tx.Bucket([]byte(k)) }

func decode(k Kind, key, v []byte) (Entry, error) {
	var e Entry
	if !decodeFast(v, &e) {
		e = Entry{}
		if err := json.Unmarshal(v, &e); err != nil {
			return Entry{}, fmt.Errorf("store: decode %s entry %q: %w", k, key, err)
		}
	}
	// The bucket is authoritative; the copies inside the value are for dumps.
	e.Kind, e.Key = k, string(key)
	return e, nil
}

func (b *Bolt) put(tx *bolt.Tx, e Entry) error {
	v, err := encodeEntry(nil, e)
	if err != nil {
		return fmt.Errorf("store: encode %s entry %q: %w", e.Kind, e.Key, err)
	}
	bk := bucket(tx, e.Kind)
	if bk == nil {
		return fmt.Errorf("store: put %s entry %q: %w", e.Kind, e.Key, bolt.ErrDatabaseReadOnly)
	}
	if e.Kind == Grey {
		b.grey.add(b.grey.hash([]byte(e.Key)))
	}
	if err := bk.Put([]byte(e.Key), v); err != nil {
		return fmt.Errorf("store: put %s entry %q: %w", e.Kind, e.Key, err)
	}
	return nil
}

// getLive returns the live entry under key, or found=false.
func getLive(tx *bolt.Tx, k Kind, key string, now time.Time) (Entry, bool, error) {
	bk := bucket(tx, k)
	if bk == nil || key == "" {
		return Entry{}, false, nil
	}
	v := bk.Get([]byte(key))
	if v == nil {
		return Entry{}, false, nil
	}
	e, err := decode(k, []byte(key), v)
	if err != nil {
		return Entry{}, false, err
	}
	if !e.Live(now) {
		return Entry{}, false, nil
	}
	return e, true, nil
}

func (b *Bolt) update(ctx context.Context, op string, fn func(*bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store: %s: %w", op, err)
	}
	if b.readOnly {
		return fmt.Errorf("store: %s: %w", op, bolt.ErrDatabaseReadOnly)
	}
	return b.wrap(op, b.db.Update(fn))
}

// batch is update through db.Batch, which coalesces concurrent writers into
// one fsync. fn may run more than once and must only assign its outputs.
func (b *Bolt) batch(ctx context.Context, op string, fn func(*bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store: %s: %w", op, err)
	}
	if b.readOnly {
		return fmt.Errorf("store: %s: %w", op, bolt.ErrDatabaseReadOnly)
	}
	return b.wrap(op, b.db.Batch(fn))
}

func (b *Bolt) view(ctx context.Context, op string, fn func(*bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store: %s: %w", op, err)
	}
	return b.wrap(op, b.db.View(fn))
}

// wrap adds context to bbolt's own errors; errors made in this package
// already carry it.
func (b *Bolt) wrap(op string, err error) error {
	if err == nil || errors.Is(err, ErrNotFound) || errors.Is(err, context.Canceled) ||
		errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var se *storeError
	if errors.As(err, &se) {
		return se.err
	}
	return fmt.Errorf("store: %s: %w", op, err)
}

// storeError marks an error built inside a transaction so wrap passes it
// through unchanged.
type storeError struct{ err error }

func (e *storeError) Error() string { return e.err.Error() }
func (e *storeError) Unwrap() error { return e.err }

func own(err error) error {
	if err == nil {
		return nil
	}
	return &storeError{err}
}

// Get implements Store.
func (b *Bolt) Get(ctx context.Context, k Kind, key string) (Entry, error) {
	if err := validKind(k); err != nil {
		return Entry{}, err
	}
	if k == Trap && !b.anyTrap.Load() && !b.closed.Load() {
		// No trap entry at all (the usual case): asked twice per policy
		// request, no transaction needed.
		if err := ctx.Err(); err != nil {
			return Entry{}, err
		}
		return Entry{}, ErrNotFound
	}
	if k == Grey && !b.grey.mayHave(key) && !b.closed.Load() {
		if err := ctx.Err(); err != nil {
			return Entry{}, err
		}
		return Entry{}, ErrNotFound
	}
	now := time.Now()
	var (
		e     Entry
		found bool
	)
	err := b.view(ctx, "get", func(tx *bolt.Tx) error {
		var err error
		e, found, err = getLive(tx, k, key, now)
		return own(err)
	})
	if err != nil {
		return Entry{}, err
	}
	if !found {
		return Entry{}, ErrNotFound
	}
	return e, nil
}

// Match implements Store: the first of MatchAll.
func (b *Bolt) Match(ctx context.Context, k Kind, addr netip.Addr) (Entry, error) {
	return first(b.MatchAll(ctx, k, addr))
}

// first is Match's answer from MatchAll's.
func first(es []Entry, err error) (Entry, error) {
	if err != nil {
		return Entry{}, err
	}
	if len(es) == 0 {
		return Entry{}, ErrNotFound
	}
	return es[0], nil
}

// matchAddr checks MatchAll's arguments and returns the address as keys
// spell it.
func matchAddr(k Kind, addr netip.Addr) (netip.Addr, error) {
	if k != White && k != Black {
		return addr, fmt.Errorf("store: match: kind %q has no address keys (want white or black)", k)
	}
	if !addr.IsValid() {
		return addr, errors.New("store: match: invalid address")
	}
	return addr.Unmap().WithZone(""), nil
}

// MatchAll implements Store. The candidate keys are addr itself and then
// every prefix containing it, longest first.
func (b *Bolt) MatchAll(ctx context.Context, k Kind, addr netip.Addr) ([]Entry, error) {
	addr, err := matchAddr(k, addr)
	if err != nil {
		return nil, err
	}
	if !b.lensFor(k).any(addr.Is4()) && !b.closed.Load() {
		return nil, ctx.Err() // no key of this family: no transaction needed
	}
	now := time.Now()
	var out []Entry
	err = b.view(ctx, "match", func(tx *bolt.Tx) error {
		bk := bucket(tx, k)
		if bk == nil {
			return nil
		}
		// The keys are built in one buffer: this runs for every
		// connection, twice, with up to 129 candidate keys.
		var buf [64]byte
		lens := b.lensFor(k)
		for bits := addr.BitLen(); bits >= 0; bits-- {
			if !lens.has(addr.Is4(), bits) {
				continue
			}
			key := addr.AppendTo(buf[:0]) // AddrKey
			if bits < addr.BitLen() {
				key = netip.PrefixFrom(addr, bits).Masked().AppendTo(buf[:0]) // PrefixKey
			}
			v := bk.Get(key)
			if v == nil {
				continue
			}
			e, err := decode(k, key, v)
			if err != nil {
				return own(err)
			}
			if e.Live(now) {
				out = append(out, e)
			}
		}
		return nil
	})
	return out, err
}

// Put implements Store. The entry must pass CheckEntry, so white and black
// keys are canonical and Match can find them.
func (b *Bolt) Put(ctx context.Context, e Entry) error {
	if err := CheckEntry(e); err != nil {
		return err
	}
	b.noteKey(e.Kind, e.Key)
	return b.update(ctx, "put", func(tx *bolt.Tx) error { return own(b.put(tx, e)) })
}

// Delete implements Store. It removes an expired but unswept entry too, but
// reports true only for a live one, matching what Get would have shown.
func (b *Bolt) Delete(ctx context.Context, k Kind, key string) (bool, error) {
	if err := validKind(k); err != nil {
		return false, err
	}
	if key == "" {
		return false, nil
	}
	now := time.Now()
	var existed bool
	err := b.update(ctx, "delete", func(tx *bolt.Tx) error {
		existed = false
		bk := bucket(tx, k)
		v := bk.Get([]byte(key))
		if v == nil {
			return nil
		}
		// An undecodable value still gets deleted; that is the way out.
		if e, err := decode(k, []byte(key), v); err != nil || e.Live(now) {
			existed = true
		}
		if err := bk.Delete([]byte(key)); err != nil {
			return err
		}
		if k == Grey {
			b.grey.remove(b.grey.hash([]byte(key)))
		}
		return nil
	})
	return existed, err
}

// listKinds is the kinds List(k) covers: k, or all for "".
func listKinds(k Kind) ([]Kind, error) {
	if k == "" {
		return Kinds, nil
	}
	if err := validKind(k); err != nil {
		return nil, err
	}
	return []Kind{k}, nil
}

// List implements Store. fn runs inside a read transaction.
func (b *Bolt) List(ctx context.Context, k Kind, fn func(Entry) error) error {
	kinds, err := listKinds(k)
	if err != nil {
		return err
	}
	now := time.Now()
	return b.view(ctx, "list", func(tx *bolt.Tx) error {
		for _, k := range kinds {
			bk := bucket(tx, k)
			if bk == nil {
				continue
			}
			c := bk.Cursor()
			for key, v := c.First(); key != nil; key, v = c.Next() {
				if err := ctx.Err(); err != nil {
					return fmt.Errorf("store: list: %w", err)
				}
				e, err := decode(k, key, v)
				if err != nil {
					return own(err)
				}
				if !e.Live(now) {
					continue
				}
				if err := fn(e); err != nil {
					return own(err)
				}
			}
		}
		return nil
	})
}

func checkGreyParams(p GreyParams) error {
	if p.PassDelay < 0 || p.RetryWindow <= p.PassDelay || p.PassedTTL <= 0 {
		return fmt.Errorf("store: greylist: bad timings %+v (want 0 <= PassDelay < RetryWindow, PassedTTL > 0)", p)
	}
	return nil
}

// greyStep is the greylist state machine, kept free of I/O so it is the
// same for every backend.
func greyStep(old Entry, found bool, key, client string, now time.Time, p GreyParams) (Entry, GreyOutcome) {
	pending := old.Passed.IsZero()
	if !found || !old.Live(now) || (pending && !now.Before(old.Created.Add(p.RetryWindow))) {
		return Entry{
			Kind:    Grey,
			Key:     key,
			Source:  "greylist",
			Created: now,
			Updated: now,
			Expires: now.Add(p.RetryWindow),
			Count:   1,
			Pass:    now.Add(p.PassDelay),
			Client:  client,
		}, GreyNew
	}
	e := old
	e.Count++
	e.Updated = now
	e.Client = client
	if pending && now.Before(e.Pass) {
		// The window runs from the first attempt; retrying early must not
		// stretch it.
		return e, GreyEarly
	}
	if pending {
		e.Passed = now
	}
	e.Expires = now.Add(p.PassedTTL)
	return e, GreyPass
}

// Greylist implements Store.
func (b *Bolt) Greylist(ctx context.Context, key, client string, now time.Time, p GreyParams) (Entry, GreyOutcome, error) {
	if key == "" {
		return Entry{}, 0, errors.New("store: greylist: empty key")
	}
	if err := checkGreyParams(p); err != nil {
		return Entry{}, 0, err
	}
	now = now.Round(0) // what is stored has no monotonic reading either
	var (
		out     Entry
		outcome GreyOutcome
	)
	err := b.batch(ctx, "greylist", func(tx *bolt.Tx) error {
		old, found, err := getLive(tx, Grey, key, now)
		if err != nil {
			return own(err)
		}
		e, o := greyStep(old, found, key, client, now, p)
		if err := b.put(tx, e); err != nil {
			return own(err)
		}
		out, outcome = e, o
		return nil
	})
	if err != nil {
		return Entry{}, 0, err
	}
	return out, outcome, nil
}

// refreshStep is Refresh's update rule. Beyond the interface's contract it
// never shortens an entry: a permanent or longer-lived operator entry keeps
// its expiry, and the source of an existing entry (who made it) is kept.
func refreshStep(old Entry, found bool, key, reason, source string, now time.Time, ttl time.Duration) Entry {
	exp := now.Add(ttl)
	if !found {
		return Entry{
			Kind:    White,
			Key:     key,
			Reason:  reason,
			Source:  source,
			Created: now,
			Updated: now,
			Expires: exp,
			Count:   1,
		}
	}
	e := old
	e.Updated = now
	e.Count++
	if !e.Expires.IsZero() && e.Expires.Before(exp) {
		e.Expires = exp
	}
	if e.Reason == "" {
		e.Reason = reason
	}
	if e.Source == "" {
		e.Source = source
	}
	return e
}

// Refresh implements Store.
func (b *Bolt) Refresh(ctx context.Context, key, reason, source string, now time.Time, ttl time.Duration) (Entry, error) {
	if err := checkAddrKey(key); err != nil {
		return Entry{}, fmt.Errorf("store: refresh: %w", err)
	}
	if ttl <= 0 {
		return Entry{}, fmt.Errorf("store: refresh %q: ttl %v is not positive", key, ttl)
	}
	now = now.Round(0)
	b.noteKey(White, key)
	var out Entry
	err := b.batch(ctx, "refresh", func(tx *bolt.Tx) error {
		old, found, err := getLive(tx, White, key, now)
		if err != nil {
			return own(err)
		}
		e := refreshStep(old, found, key, reason, source, now, ttl)
		if err := b.put(tx, e); err != nil {
			return own(err)
		}
		out = e
		return nil
	})
	if err != nil {
		return Entry{}, err
	}
	return out, nil
}

// Expire implements Store. An undecodable entry does not stop the sweep:
// the rest is still expired and committed, and the error names the key.
func (b *Bolt) Expire(ctx context.Context, now time.Time) (int, error) {
	var (
		n    int
		errs []error
	)
	err := b.update(ctx, "expire", func(tx *bolt.Tx) error {
		n, errs = 0, nil
		for _, k := range Kinds {
			bk := bucket(tx, k)
			// Deleting under a live cursor can skip keys, so collect first.
			var dead [][]byte
			err := bk.ForEach(func(key, v []byte) error {
				e, err := decode(k, key, v)
				if err != nil {
					errs = append(errs, err)
					return nil
				}
				if !e.Expires.IsZero() && !now.Before(e.Expires) {
					dead = append(dead, bytes.Clone(key))
				}
				return nil
			})
			if err != nil {
				return err
			}
			for _, key := range dead {
				if err := bk.Delete(key); err != nil {
					return err
				}
				if k == Grey {
					b.grey.remove(b.grey.hash(key))
				}
			}
			n += len(dead)
		}
		m, err := expireTrapRecords(tx, now)
		n += m
		if err != nil {
			return err
		}
		m, err = expireAWL(tx, now)
		n += m
		return err
	})
	if err != nil {
		return 0, err
	}
	return n, errors.Join(errs...)
}

// RunExpiry calls Expire with the current time right away and then every
// interval until ctx is done, passing each result to log (if non-nil).
func (b *Bolt) RunExpiry(ctx context.Context, every time.Duration, log func(n int, err error)) {
	runExpiry(ctx, b, every, log)
}

func runExpiry(ctx context.Context, s Store, every time.Duration, log func(n int, err error)) {
	if log == nil {
		log = func(int, error) {}
	}
	if every <= 0 {
		log(0, fmt.Errorf("store: expiry interval %v is not positive", every))
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if ctx.Err() != nil {
			return
		}
		n, err := s.Expire(ctx, time.Now())
		if ctx.Err() != nil {
			return // a cancelled sweep is shutdown, not a failure
		}
		log(n, err)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
