package dnsbl

import (
	"sync"
	"time"
)

// cache keeps DNS answers until their TTL runs out, with a bound on the
// number of entries: a flood of distinct clients must not grow memory
// without limit.
type cache struct {
	max int
	mu  sync.Mutex
	m   map[string]cached
}

type cached struct {
	v       []string
	expires time.Time
}

func newCache(max int) *cache { return &cache{max: max, m: map[string]cached{}} }

func (c *cache) get(key string, now time.Time) ([]string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok || !now.Before(e.expires) {
		return nil, false
	}
	return e.v, true
}

func (c *cache) put(key string, v []string, expires, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[key]; !ok && len(c.m) >= c.max {
		for k, e := range c.m { // drop the expired; failing that, any one
			if !now.Before(e.expires) {
				delete(c.m, k)
			}
		}
		// Make room for a tenth at once, so a flood costs one scan per
		// max/10 inserts rather than one per insert.
		for k := range c.m {
			if len(c.m) < c.max-c.max/10 {
				break
			}
			delete(c.m, k)
		}
	}
	c.m[key] = cached{v, expires}
}

func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
