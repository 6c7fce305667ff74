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
// behaviour is promised by bbolt and Redis, and by Redis however it is
// deployed (standalone, through Sentinel, as a Cluster).
func forBackends(t *testing.T, test func(*testing.T, opener)) {
	t.Run("bolt", func(t *testing.T) {
		test(t, func(t *testing.T) (Store, string) { return openTest(t) })
	})
	t.Run("redis", func(t *testing.T) { test(t, openRedisTest) })
	t.Run("sentinel", func(t *testing.T) { test(t, openSentinelTest) })
	t.Run("cluster", func(t *testing.T) { test(t, openClusterTest) })
}

var redisPrefixes atomic.Int64

// openRedisTest starts a private redis-server for the test and opens a
// store on it under a fresh prefix.
func openRedisTest(t *testing.T) (Store, string) {
	t.Helper()
	srv := testenv.StartRedis(t)
	return openRedisOn(t, RedisOptions{Addrs: []string{srv.Addr()}})
}

func openRedisOn(t *testing.T, o RedisOptions) (Store, string) {
	t.Helper()
	o.Prefix = fmt.Sprintf("test%d", redisPrefixes.Add(1))
	r, err := OpenRedis(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, ""
}

// openSentinelTest starts a master and a sentinel for the test and opens a
// store that finds the master through the sentinel.
func openSentinelTest(t *testing.T) (Store, string) {
	t.Helper()
	master := testenv.StartRedis(t)
	sentinel := testenv.StartSentinel(t, master, "contract")
	return openRedisOn(t, RedisOptions{Addrs: []string{sentinel.Addr()}, MasterName: "contract"})
}

// openClusterTest opens a store on the 3-node cluster the package's tests
// share (one start-up of about two seconds for all of them), under a
// fresh prefix, which is a fresh hash slot.
func openClusterTest(t *testing.T) (Store, string) {
	t.Helper()
	var addrs []string
	for _, n := range testenv.SharedRedisCluster(t) {
		addrs = append(addrs, n.Addr())
	}
	return openRedisOn(t, RedisOptions{Addrs: addrs})
}
