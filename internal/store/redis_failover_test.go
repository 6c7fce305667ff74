package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/greypit/greypit/internal/testenv"
)

// failoverBound is how long greylisting may be down after the master
// dies: sentinel's 1s down-after, the vote and the promotion take a few
// seconds; the rest is slack for a loaded CI machine.
const failoverBound = 30 * time.Second

// TestRedisSentinelFailover: a master, one replica and three sentinels.
// White entries written with WaitReplicas 1 (WAIT 1) before the master is
// killed (SIGKILL) are on the promoted replica. Between the kill and the
// promotion every greylist call fails with an error, which greypit turns
// into store.unreachable's answer (tempfail: 451 4.3.0), never an outcome;
// within failoverBound they work again, and a tuple that was pending is
// not passed early.
func TestRedisSentinelFailover(t *testing.T) {
	f := testenv.StartFailover(t, "fo", 1, 3)
	s, err := OpenRedis(RedisOptions{Addrs: f.SentinelAddrs(), MasterName: "fo", Prefix: "fo",
		Timeout: time.Second, WaitReplicas: 1, WaitTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	t0 := now()

	// WAIT's promise: with the replica paused, a white entry write fails
	// (it is on the master, unconfirmed), and works once it is back.
	f.Replicas[0].Pause()
	if _, err := s.Refresh(ctx, "198.51.100.1", "test", "greylist", t0, time.Hour); !errors.Is(err, ErrNotReplicated) {
		f.Replicas[0].Resume()
		t.Fatalf("Refresh with the replica paused: %v; want ErrNotReplicated", err)
	}
	f.Replicas[0].Resume()

	const whites = 50
	for i := range whites {
		if _, err := s.Refresh(ctx, fmt.Sprintf("192.0.2.%d", i), "passed greylisting", "greylist", t0, time.Hour); err != nil {
			t.Fatalf("Refresh %d: %v", i, err)
		}
	}
	mustPut(t, s, Entry{Kind: White, Key: "10.0.0.0/8", Reason: "office", Created: t0, Updated: t0})
	const tuple = "203.0.113.0/24 a@example.org b@example.net"
	if _, o, err := s.Greylist(ctx, tuple, "203.0.113.1", t0, testParams); err != nil || o != GreyNew {
		t.Fatalf("Greylist before the kill = %v, %v", o, err)
	}

	f.Master.Stop() // SIGKILL
	killed := time.Now()
	failures := 0
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		// A retry one second after the first attempt: before the pass delay.
		_, o, err := s.Greylist(cctx, tuple, "203.0.113.1", t0.Add(time.Second), testParams)
		cancel()
		if err == nil {
			if o == GreyPass {
				t.Fatalf("a retry before the pass delay passed after the failover")
			}
			break
		}
		failures++
		if time.Since(killed) > failoverBound {
			t.Fatalf("greylisting still fails %v after the master was killed (%d failures): %v", failoverBound, failures, err)
		}
		time.Sleep(100 * time.Millisecond) // the poll interval, not a synchronisation
	}
	t.Logf("greylisting resumed %v after the kill, %d failed calls in between", time.Since(killed).Round(time.Millisecond), failures)
	if failures == 0 {
		t.Error("no call failed between the kill and the promotion: the dead master went unnoticed")
	}
	// The write that succeeded went to the promoted replica (a replica
	// refuses writes); the sentinels that did not run the failover learn
	// of it from the others a moment later.
	if !f.Replicas[0].IsMaster() {
		t.Fatalf("greylisting works again, but the replica %s is not the master", f.Replicas[0].Addr())
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		addr, err := f.MasterAddr()
		if err == nil && addr == f.Replicas[0].Addr() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sentinels' master after the failover: %q, %v; want the replica %s", addr, err, f.Replicas[0].Addr())
		}
	}
	for i := range whites {
		if _, err := s.Get(ctx, White, fmt.Sprintf("192.0.2.%d", i)); err != nil {
			t.Errorf("white entry 192.0.2.%d written with WAIT before the kill: %v", i, err)
		}
	}
	if _, err := s.Get(ctx, White, "10.0.0.0/8"); err != nil {
		t.Errorf("white entry put with WAIT before the kill: %v", err)
	}
	// The promoted master has no replica left: WAIT 1 cannot be met, and
	// the write says so rather than claiming it is safe.
	if _, err := s.Refresh(ctx, "192.0.2.200", "test", "greylist", now(), time.Hour); !errors.Is(err, ErrNotReplicated) {
		t.Errorf("Refresh with no replica left: %v; want ErrNotReplicated", err)
	}
}
