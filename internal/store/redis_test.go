package store

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/greypit/greypit/internal/testenv"
)

// twoHosts opens two stores on one redis-server, as two MX hosts would.
func twoHosts(t *testing.T) (*testenv.Redis, *Redis, *Redis) {
	t.Helper()
	srv := testenv.StartRedis(t)
	var rs [2]*Redis
	for i := range rs {
		r, err := OpenRedis(RedisOptions{Addrs: []string{srv.Addr()}, Prefix: "mx", Timeout: 500 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		rs[i] = r
	}
	return srv, rs[0], rs[1]
}

// TestRedisGreylistTwoHosts: two hosts, each with 25 goroutines hitting
// one tuple at the same instant, agree on exactly one first attempt, and
// the attempt counter has every attempt.
func TestRedisGreylistTwoHosts(t *testing.T) {
	_, a, b := twoHosts(t)
	ctx := context.Background()
	t0 := now()
	const per = 25
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		count = map[GreyOutcome]int{}
	)
	start := make(chan struct{})
	for _, s := range []*Redis{a, b} {
		for range per {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, o, err := s.Greylist(ctx, "tuple", "192.0.2.1", t0, testParams)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				count[o]++
				mu.Unlock()
			}()
		}
	}
	close(start)
	wg.Wait()
	if count[GreyNew] != 1 || count[GreyEarly] != 2*per-1 {
		t.Fatalf("outcomes %v, want 1 new and %d early", count, 2*per-1)
	}
	e, err := b.Get(ctx, Grey, "tuple")
	if err != nil || e.Count != 2*per {
		t.Fatalf("stored %+v, %v; want count %d", e, err, 2*per)
	}
	// The retry after the pass delay passes at the other host.
	if _, o, err := a.Greylist(ctx, "tuple", "192.0.2.1", t0.Add(testParams.PassDelay), testParams); err != nil || o != GreyPass {
		t.Fatalf("retry at host A = %v, %v; want pass", o, err)
	}
	if _, o, err := b.Greylist(ctx, "tuple", "192.0.2.1", t0.Add(testParams.PassDelay+time.Second), testParams); err != nil || o != GreyPass {
		t.Fatalf("retry at host B = %v, %v; want pass", o, err)
	}
}

// TestRedisTTL: an entry's key carries its expiry, so it vanishes without
// a sweep; a permanent one has none.
func TestRedisTTL(t *testing.T) {
	_, a, _ := twoHosts(t)
	ctx := context.Background()
	exp := now().Add(time.Hour)
	mustPut(t, a, Entry{Kind: Black, Key: "192.0.2.0/24", Expires: exp})
	mustPut(t, a, Entry{Kind: White, Key: "192.0.2.9"})
	at, err := a.c.PExpireTime(ctx, a.entryKey(Black, "192.0.2.0/24")).Result()
	if err != nil || at != time.Duration(exp.UnixMilli())*time.Millisecond {
		t.Errorf("PEXPIRETIME = %v, %v; want %v", at, err, exp.UnixMilli())
	}
	if ttl, err := a.c.PTTL(ctx, a.entryKey(White, "192.0.2.9")).Result(); err != nil || ttl >= 0 {
		t.Errorf("permanent entry PTTL = %v, %v; want none (-1)", ttl, err)
	}
}

func TestRedisEvents(t *testing.T) {
	_, a, b := twoHosts(t)
	ctx := context.Background()
	// Two events in one millisecond, 1 µs apart, and a duplicate.
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	evs := []Event{
		{Time: t0, Client: "192.0.2.1", Path: "grey", Outcome: "a"},
		{Time: t0.Add(time.Microsecond), Client: "192.0.2.1", Path: "grey", Outcome: "b"},
		{Time: t0.Add(time.Microsecond), Client: "192.0.2.1", Path: "grey", Outcome: "b"},
		{Time: t0.Add(time.Second), Client: "192.0.2.2", Path: "black", Outcome: "c"},
	}
	if err := a.AddEvents(ctx, evs[:2]); err != nil {
		t.Fatal(err)
	}
	if err := b.AddEvents(ctx, evs[2:]); err != nil {
		t.Fatal(err)
	}
	got := func(since, until time.Time) string {
		s := ""
		if err := b.Events(ctx, since, until, func(e Event) error { s += e.Outcome; return nil }); err != nil {
			t.Fatal(err)
		}
		return s
	}
	if s := got(time.Time{}, time.Time{}); s != "abbc" {
		t.Errorf("all = %q", s)
	}
	if s := got(t0.Add(time.Microsecond), t0.Add(time.Second)); s != "bb" {
		t.Errorf("window = %q, want bb", s)
	}
	if n, err := a.ExpireEvents(ctx, t0.Add(time.Microsecond)); err != nil || n != 1 {
		t.Errorf("ExpireEvents = %d, %v; want 1", n, err)
	}
	if s := got(time.Time{}, time.Time{}); s != "bbc" {
		t.Errorf("after expiry = %q", s)
	}
}

// TestRedisUnreachable: with the server gone every call fails with an
// error (no hang past the timeout, no panic), and works again once it is
// back.
func TestRedisUnreachable(t *testing.T) {
	srv, a, _ := twoHosts(t)
	ctx := context.Background()
	srv.Stop()
	start := time.Now()
	if _, _, err := a.Greylist(ctx, "k", "c", now(), testParams); err == nil {
		t.Fatal("Greylist with redis stopped succeeded")
	}
	if _, err := a.Get(ctx, White, "192.0.2.1"); err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("Get with redis stopped = %v; want a connection error, not not-found", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("failing calls took %v", d)
	}
	srv.Start()
	if _, o, err := a.Greylist(ctx, "k", "c", now(), testParams); err != nil || o != GreyNew {
		t.Fatalf("Greylist after restart = %v, %v", o, err)
	}
}

// TestRedisSentinel: with a master name, redis_addrs are sentinels and
// the store finds the master through them.
func TestRedisSentinel(t *testing.T) {
	master := testenv.StartRedis(t)
	sentinel := testenv.StartSentinel(t, master, "mymaster")
	s, err := OpenRedis(RedisOptions{Addrs: []string{sentinel.Addr()}, MasterName: "mymaster", Prefix: "s"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	direct, err := OpenRedis(RedisOptions{Addrs: []string{master.Addr()}, Prefix: "s"})
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	ctx := context.Background()
	if _, o, err := s.Greylist(ctx, "tuple", "192.0.2.1", now(), testParams); err != nil || o != GreyNew {
		t.Fatalf("Greylist through the sentinel = %v, %v", o, err)
	}
	if e, err := direct.Get(ctx, Grey, "tuple"); err != nil || e.Count != 1 {
		t.Fatalf("the entry on the master: %+v, %v", e, err)
	}
}

// TestRedisCluster: with several addresses and no master name the store
// is a Cluster client; all keys share one hash tag, so the optimistic
// transactions, MGET and the expiry scripts run on the slot's node.
func TestRedisCluster(t *testing.T) {
	nodes := testenv.StartRedisCluster(t, 3)
	var addrs []string
	for _, n := range nodes {
		addrs = append(addrs, n.Addr())
	}
	s, err := OpenRedis(RedisOptions{Addrs: addrs, Prefix: "c"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	t0 := now()
	if _, o, err := s.Greylist(ctx, "tuple", "192.0.2.1", t0, testParams); err != nil || o != GreyNew {
		t.Fatalf("Greylist = %v, %v", o, err)
	}
	if _, o, err := s.Greylist(ctx, "tuple", "192.0.2.1", t0.Add(testParams.PassDelay), testParams); err != nil || o != GreyPass {
		t.Fatalf("retry = %v, %v", o, err)
	}
	mustPut(t, s, Entry{Kind: Black, Key: "198.51.100.0/24", Expires: t0.Add(time.Hour)})
	if e, err := s.Match(ctx, Black, netip.MustParseAddr("198.51.100.7")); err != nil || e.Key != "198.51.100.0/24" {
		t.Fatalf("Match = %+v, %v", e, err)
	}
	if n, err := s.Expire(ctx, t0.Add(2*time.Hour)); err != nil || n != 1 {
		t.Fatalf("Expire = %d, %v; want the black entry", n, err)
	}
	if got := len(listAll(t, s, "")); got != 1 {
		t.Fatalf("List after Expire: %d entries, want the grey one", got)
	}
}

// TestRedisCorruptValue: a value that is not an entry is an error naming
// the key (not a crash, not "not found"), and Delete removes it.
func TestRedisCorruptValue(t *testing.T) {
	_, a, _ := twoHosts(t)
	ctx := context.Background()
	if err := a.c.Set(ctx, a.entryKey(Black, "192.0.2.66"), "not json", 0).Err(); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"Get":   func() error { _, err := a.Get(ctx, Black, "192.0.2.66"); return err }(),
		"Match": func() error { _, err := a.Match(ctx, Black, netip.MustParseAddr("192.0.2.66")); return err }(),
	} {
		if err == nil || errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), `"192.0.2.66"`) ||
			strings.Count(err.Error(), "store:") != 1 {
			t.Errorf("%s: %v; want one decode error naming the key", name, err)
		}
	}
	if ok, err := a.Delete(ctx, Black, "192.0.2.66"); err != nil || !ok {
		t.Fatalf("Delete = %v, %v", ok, err)
	}
	if _, err := a.Get(ctx, Black, "192.0.2.66"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after Delete: %v", err)
	}
}
