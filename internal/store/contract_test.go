package store

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/greypit/greypit/internal/testenv"
)

// opener opens an empty store for one test; the string is the bbolt file
// (empty for Redis).
type opener func(t *testing.T) (Store, string)

// forBackends runs a contract test against every backend: the same
// behaviour is promised by bbolt and Redis.
func forBackends(t *testing.T, test func(*testing.T, opener)) {
	t.Run("bolt", func(t *testing.T) {
		test(t, func(t *testing.T) (Store, string) { return openTest(t) })
	})
	t.Run("redis", func(t *testing.T) { test(t, openRedisTest) })
}

var redisPrefixes atomic.Int64

// openRedisTest starts a private redis-server for the test and opens a
// store on it under a fresh prefix.
func openRedisTest(t *testing.T) (Store, string) {
	t.Helper()
	srv := testenv.StartRedis(t)
	r, err := OpenRedis(RedisOptions{Addrs: []string{srv.Addr()}, Prefix: fmt.Sprintf("test%d", redisPrefixes.Add(1))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, ""
}
