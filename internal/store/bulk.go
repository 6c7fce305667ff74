package store

import (
	"context"

	bolt "go.etcd.io/bbolt"
)

// PutAll writes entries in one transaction (one fsync), for imports. Each
// must pass CheckEntry; nothing is written if one does not.
func (b *Bolt) PutAll(ctx context.Context, es []Entry) error {
	for _, e := range es {
		if err := CheckEntry(e); err != nil {
			return err
		}
		b.noteKey(e.Kind, e.Key)
	}
	return b.update(ctx, "put all", func(tx *bolt.Tx) error {
		for _, e := range es {
			if err := b.put(tx, e); err != nil {
				return own(err)
			}
		}
		return nil
	})
}
