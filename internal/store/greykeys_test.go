package store

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// Every way a grey entry reaches the file puts its key in the hash set,
// so a lookup that skips the read transaction never misses it: after the
// write, after reopening (the scan at open), and gone again after a
// delete or an expiry.
func TestGreyKeysEveryWritePath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "g.db")
	b, err := OpenBolt(path, BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	now := time.Now().Round(0)
	p := GreyParams{PassDelay: time.Minute, RetryWindow: time.Hour, PassedTTL: time.Hour}
	grey := func(key string, exp time.Time) Entry {
		return Entry{Kind: Grey, Key: key, Created: now, Updated: now, Expires: exp, Count: 1, Pass: now.Add(time.Minute)}
	}
	if err := b.Put(ctx, grey("put", now.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	if err := b.PutAll(ctx, []Entry{grey("putall", now.Add(time.Hour)), grey("dying", now.Add(time.Second))}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Greylist(ctx, "bolt-greylist", "c", now, p); err != nil {
		t.Fatal(err)
	}
	c := NewGreyCache(b)
	if _, _, err := c.Greylist(ctx, "cache-greylist", "c", now, p); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	keys := []string{"put", "putall", "dying", "bolt-greylist", "cache-greylist"}
	check := func(when string, c *GreyCache) {
		t.Helper()
		for _, k := range keys {
			if !c.grey.mayHave(k) {
				t.Errorf("%s: %q not in the hash set", when, k)
			}
			if _, err := c.Get(ctx, Grey, k); err != nil {
				t.Errorf("%s: Get %q: %v", when, k, err)
			}
			sh := c.shard(k)
			sh.mu.Lock()
			_, found, err := c.lookup(sh, k, now)
			sh.mu.Unlock()
			if !found || err != nil {
				t.Errorf("%s: lookup %q: found=%v %v", when, k, found, err)
			}
		}
		if c.grey.mayHave("never-written") {
			t.Errorf("%s: a key never written is in the set", when)
		}
	}
	check("written", c)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	b, err = OpenBolt(path, BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c = NewGreyCache(b)
	defer c.Close()
	check("reopened", c)
	if n := c.grey.len(); n != len(keys) {
		t.Errorf("%d hashes after reopening, want %d", n, len(keys))
	}
	if ok, err := c.Delete(ctx, Grey, "put"); !ok || err != nil {
		t.Fatalf("delete: %v %v", ok, err)
	}
	if _, err := b.Expire(ctx, now.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"put", "dying"} {
		if c.grey.mayHave(k) {
			t.Errorf("%q still in the set after it left the file", k)
		}
	}
	if n := c.grey.len(); n != len(keys)-2 {
		t.Errorf("%d hashes after delete and expiry, want %d", n, len(keys)-2)
	}
}
