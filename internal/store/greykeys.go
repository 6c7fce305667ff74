package store

import (
	"hash/maphash"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// greyKeys holds a 64-bit hash of every key in the grey bucket, so that
// looking up a tuple never seen before — every first attempt, the bulk of
// greylisting — answers from memory instead of opening a read
// transaction. It is a superset: a hash collision or a key added by a
// transaction that then failed costs one read, never a wrong answer.
//
// Adds and removes happen inside write transactions, which bbolt runs one
// at a time, so they are ordered as the writes are: a hash is added before
// its key commits and removed only with a key that is deleted. Only this
// process writes the file while it is open (bbolt's exclusive lock).
type greyKeys struct {
	seed   maphash.Seed
	shards [64]struct {
		mu sync.Mutex
		m  map[uint64]struct{}
	}
}

func newGreyKeys() *greyKeys {
	s := &greyKeys{seed: maphash.MakeSeed()}
	for i := range s.shards {
		s.shards[i].m = map[uint64]struct{}{}
	}
	return s
}

func (s *greyKeys) hash(key []byte) uint64 { return maphash.Bytes(s.seed, key) }

func (s *greyKeys) add(h uint64) {
	sh := &s.shards[h>>58]
	sh.mu.Lock()
	sh.m[h] = struct{}{}
	sh.mu.Unlock()
}

func (s *greyKeys) remove(h uint64) {
	sh := &s.shards[h>>58]
	sh.mu.Lock()
	delete(sh.m, h)
	sh.mu.Unlock()
}

// mayHave reports whether key may be in the grey bucket.
func (s *greyKeys) mayHave(key string) bool {
	h := maphash.String(s.seed, key)
	sh := &s.shards[h>>58]
	sh.mu.Lock()
	_, ok := sh.m[h]
	sh.mu.Unlock()
	return ok
}

// len is the number of hashes held.
func (s *greyKeys) len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

// scan adds every key of the grey bucket, at open.
func (s *greyKeys) scan(tx *bolt.Tx) error {
	bk := bucket(tx, Grey)
	if bk == nil {
		return nil
	}
	c := bk.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		s.add(s.hash(k))
	}
	return nil
}
