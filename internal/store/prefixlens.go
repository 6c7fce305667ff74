package store

import (
	"net/netip"
	"strings"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"
)

// prefixLens records which prefix lengths occur among the keys of a white
// or black bucket, per address family, so MatchAll looks up only those
// instead of all 33 (IPv4) or 129 (IPv6) candidates: in practice white
// and black entries are single addresses and a handful of networks. It is
// a superset: lengths are added on every put and never removed (a stale
// length costs one lookup, not a wrong answer). Only this process writes
// the file while it is open (bbolt's exclusive lock), so it is complete.
type prefixLens struct {
	v4 atomic.Uint64    // bit n: a /n IPv4 key exists (n = 32: an address)
	v6 [3]atomic.Uint64 // bit n of the 129
}

func (l *prefixLens) add(key string) {
	var bits int
	var is4 bool
	if strings.IndexByte(key, '/') >= 0 {
		p, err := netip.ParsePrefix(key)
		if err != nil {
			return
		}
		bits, is4 = p.Bits(), p.Addr().Is4()
	} else {
		a, err := netip.ParseAddr(key)
		if err != nil {
			return
		}
		bits, is4 = a.BitLen(), a.Is4()
	}
	if is4 {
		l.v4.Or(1 << bits)
		return
	}
	l.v6[bits/64].Or(1 << (bits % 64))
}

func (l *prefixLens) has(is4 bool, bits int) bool {
	if is4 {
		return l.v4.Load()&(1<<bits) != 0
	}
	return l.v6[bits/64].Load()&(1<<(bits%64)) != 0
}

// any reports whether a key of the family exists.
func (l *prefixLens) any(is4 bool) bool {
	if is4 {
		return l.v4.Load() != 0
	}
	return l.v6[0].Load()|l.v6[1].Load()|l.v6[2].Load() != 0
}

// lensFor returns the lengths of kind k (white or black), nil otherwise.
func (b *Bolt) lensFor(k Kind) *prefixLens {
	switch k {
	case White:
		return &b.lens[0]
	case Black:
		return &b.lens[1]
	}
	return nil
}

// scanLens fills the lengths (and whether a trap key exists, and the grey
// key hashes) from the file, at open.
func (b *Bolt) scanLens(tx *bolt.Tx) error {
	if bk := bucket(tx, Trap); bk != nil {
		if k, _ := bk.Cursor().First(); k != nil {
			b.anyTrap.Store(true)
		}
	}
	if err := b.grey.scan(tx); err != nil {
		return err
	}
	for _, k := range []Kind{White, Black} {
		bk := bucket(tx, k)
		if bk == nil {
			continue
		}
		l := b.lensFor(k)
		if err := bk.ForEach(func(key, _ []byte) error { l.add(string(key)); return nil }); err != nil {
			return err
		}
	}
	return nil
}

// noteKey records the length of a white or black key about to be written;
// it runs before the write commits, so a MatchAll after the commit looks
// at that length.
//
// For trap keys it notes only that one may exist (Get's no-transaction
// path); like the lengths, that is never taken back.
func (b *Bolt) noteKey(k Kind, key string) {
	if k == Trap {
		b.anyTrap.Store(true)
	}
	if l := b.lensFor(k); l != nil {
		l.add(key)
	}
}
