package store

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

var testParams = GreyParams{
	PassDelay:   5 * time.Minute,
	RetryWindow: 4 * time.Hour,
	PassedTTL:   36 * 24 * time.Hour,
}

func openTest(t *testing.T) (*Bolt, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "greypit.db")
	b, err := OpenBolt(path, BoltOptions{Timeout: time.Second})
	if err != nil {
		t.Fatalf("OpenBolt: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b, path
}

// now is a wall-clock time without a monotonic reading or sub-second noise,
// close enough to time.Now that reads (which use the real clock) see the
// entries written with it as live.
func now() time.Time { return time.Now().Truncate(time.Second) }

func mustPut(t testing.TB, s Store, e Entry) {
	t.Helper()
	if err := s.Put(context.Background(), e); err != nil {
		t.Fatalf("Put(%s %q): %v", e.Kind, e.Key, err)
	}
}

func sameEntry(a, b Entry) bool {
	return a.Kind == b.Kind && a.Key == b.Key && a.Reason == b.Reason && a.Source == b.Source &&
		a.Created.Equal(b.Created) && a.Updated.Equal(b.Updated) && a.Expires.Equal(b.Expires) &&
		a.Count == b.Count && a.Pass.Equal(b.Pass) && a.Passed.Equal(b.Passed) && a.Client == b.Client
}

func listAll(t *testing.T, s Store, k Kind) []Entry {
	t.Helper()
	var out []Entry
	if err := s.List(context.Background(), k, func(e Entry) error {
		out = append(out, e)
		return nil
	}); err != nil {
		t.Fatalf("List(%q): %v", k, err)
	}
	return out
}

// rawCount counts stored values, expired or not (for Redis: the index
// members, which stay until Expire).
func rawCount(t *testing.T, s Store, k Kind) int {
	t.Helper()
	switch s := s.(type) {
	case *Bolt:
		n := 0
		if err := s.db.View(func(tx *bolt.Tx) error {
			n = tx.Bucket([]byte(k)).Stats().KeyN
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return n
	case *Redis:
		n, err := s.c.ZCard(context.Background(), s.indexKey(k)).Result()
		if err != nil {
			t.Fatal(err)
		}
		return int(n)
	}
	t.Fatalf("rawCount: unknown backend %T", s)
	return 0
}

func TestGreylistTransitions(t *testing.T) { forBackends(t, testGreylistTransitions) }

func testGreylistTransitions(t *testing.T, openTest opener) {
	b, _ := openTest(t)
	ctx := context.Background()
	t0 := now()
	const key = "192.0.2.0/24|a@example.org|b@example.net"

	step := func(at time.Time, client string, want GreyOutcome) Entry {
		t.Helper()
		e, o, err := b.Greylist(ctx, key, client, at, testParams)
		if err != nil {
			t.Fatalf("Greylist at %v: %v", at.Sub(t0), err)
		}
		if o != want {
			t.Fatalf("Greylist at +%v = %v, want %v (entry %+v)", at.Sub(t0), o, want, e)
		}
		got, err := b.Get(ctx, Grey, key)
		if err != nil {
			t.Fatalf("Get after Greylist: %v", err)
		}
		if !sameEntry(got, e) {
			t.Fatalf("stored entry differs from returned one:\n got %+v\nwant %+v", got, e)
		}
		return e
	}

	e := step(t0, "192.0.2.1", GreyNew)
	if e.Kind != Grey || e.Key != key || e.Count != 1 || e.Source != "greylist" || e.Client != "192.0.2.1" ||
		!e.Created.Equal(t0) || !e.Updated.Equal(t0) || !e.Pass.Equal(t0.Add(testParams.PassDelay)) ||
		!e.Expires.Equal(t0.Add(testParams.RetryWindow)) || !e.Passed.IsZero() {
		t.Fatalf("new entry = %+v", e)
	}

	e = step(t0.Add(time.Minute), "192.0.2.2", GreyEarly)
	if e.Count != 2 || e.Client != "192.0.2.2" || !e.Updated.Equal(t0.Add(time.Minute)) ||
		!e.Created.Equal(t0) || !e.Passed.IsZero() {
		t.Fatalf("early entry = %+v", e)
	}
	if !e.Expires.Equal(t0.Add(testParams.RetryWindow)) {
		t.Fatalf("early retry moved expiry to %v, want %v", e.Expires, t0.Add(testParams.RetryWindow))
	}

	// Exactly at Pass counts as passing.
	passAt := t0.Add(testParams.PassDelay)
	e = step(passAt, "192.0.2.3", GreyPass)
	if e.Count != 3 || !e.Passed.Equal(passAt) || !e.Expires.Equal(passAt.Add(testParams.PassedTTL)) ||
		!e.Created.Equal(t0) || e.Client != "192.0.2.3" {
		t.Fatalf("passed entry = %+v", e)
	}

	later := t0.Add(time.Hour)
	e = step(later, "192.0.2.3", GreyPass)
	if e.Count != 4 || !e.Passed.Equal(passAt) || !e.Expires.Equal(later.Add(testParams.PassedTTL)) ||
		!e.Updated.Equal(later) {
		t.Fatalf("re-passed entry = %+v", e)
	}
	// Long after the first window, a passed tuple is still remembered.
	wayLater := t0.Add(10 * 24 * time.Hour)
	e, o, err := b.Greylist(ctx, key, "192.0.2.3", wayLater, testParams)
	if err != nil || o != GreyPass || e.Count != 5 || !e.Expires.Equal(wayLater.Add(testParams.PassedTTL)) {
		t.Fatalf("Greylist 10 days later = %v, %+v, %v; want pass", o, e, err)
	}

	// Once PassedTTL runs out without use, the tuple starts over.
	gone := wayLater.Add(testParams.PassedTTL)
	e, o, err = b.Greylist(ctx, key, "192.0.2.4", gone, testParams)
	if err != nil || o != GreyNew || e.Count != 1 || !e.Created.Equal(gone) || !e.Passed.IsZero() {
		t.Fatalf("Greylist after PassedTTL = %v, %+v, %v; want new", o, e, err)
	}
}

func TestGreylistRetryWindow(t *testing.T) { forBackends(t, testGreylistRetryWindow) }

func testGreylistRetryWindow(t *testing.T, openTest opener) {
	ctx := context.Background()
	t0 := now()

	t.Run("late first retry starts over", func(t *testing.T) {
		b, _ := openTest(t)
		if _, o, _ := b.Greylist(ctx, "k", "c", t0, testParams); o != GreyNew {
			t.Fatalf("first = %v", o)
		}
		e, o, err := b.Greylist(ctx, "k", "c", t0.Add(testParams.RetryWindow), testParams)
		if err != nil || o != GreyNew || e.Count != 1 || !e.Created.Equal(t0.Add(testParams.RetryWindow)) {
			t.Fatalf("retry at window end = %v %+v %v, want new", o, e, err)
		}
	})

	t.Run("retry just inside the window passes", func(t *testing.T) {
		b, _ := openTest(t)
		b.Greylist(ctx, "k", "c", t0, testParams)
		_, o, err := b.Greylist(ctx, "k", "c", t0.Add(testParams.RetryWindow-time.Nanosecond), testParams)
		if err != nil || o != GreyPass {
			t.Fatalf("retry inside window = %v %v, want pass", o, err)
		}
	})

	t.Run("early retries do not stretch the window", func(t *testing.T) {
		b, _ := openTest(t)
		b.Greylist(ctx, "k", "c", t0, testParams)
		for i := 1; i <= 3; i++ {
			if _, o, _ := b.Greylist(ctx, "k", "c", t0.Add(time.Duration(i)*time.Minute), testParams); o != GreyEarly {
				t.Fatalf("retry %d = %v, want early", i, o)
			}
		}
		if _, o, _ := b.Greylist(ctx, "k", "c", t0.Add(testParams.RetryWindow+time.Second), testParams); o != GreyNew {
			t.Fatalf("retry after window = %v, want new", o)
		}
	})

	t.Run("pending entry with a stretched expiry still uses Created+RetryWindow", func(t *testing.T) {
		b, _ := openTest(t)
		mustPut(t, b, Entry{Kind: Grey, Key: "k", Created: t0, Updated: t0, Count: 1,
			Pass: t0.Add(testParams.PassDelay), Expires: t0.Add(100 * time.Hour)})
		e, o, err := b.Greylist(ctx, "k", "c", t0.Add(testParams.RetryWindow+time.Minute), testParams)
		if err != nil || o != GreyNew || e.Count != 1 {
			t.Fatalf("= %v %+v %v, want new", o, e, err)
		}
	})

	t.Run("bad params", func(t *testing.T) {
		b, _ := openTest(t)
		for _, p := range []GreyParams{
			{},
			{PassDelay: time.Hour, RetryWindow: time.Hour, PassedTTL: time.Hour},
			{PassDelay: -1, RetryWindow: time.Hour, PassedTTL: time.Hour},
			{PassDelay: time.Minute, RetryWindow: time.Hour},
		} {
			if _, _, err := b.Greylist(ctx, "k", "c", t0, p); err == nil {
				t.Errorf("Greylist with %+v succeeded", p)
			}
		}
		if _, _, err := b.Greylist(ctx, "", "c", t0, testParams); err == nil {
			t.Error("Greylist with empty key succeeded")
		}
	})
}

func TestGreylistConcurrentOneNew(t *testing.T) { forBackends(t, testGreylistConcurrentOneNew) }

func testGreylistConcurrentOneNew(t *testing.T, openTest opener) {
	b, _ := openTest(t)
	ctx := context.Background()
	t0 := now()
	const n = 50
	outcomes := make(chan GreyOutcome, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, o, err := b.Greylist(ctx, "tuple", fmt.Sprintf("192.0.2.%d", i), t0, testParams)
			if err != nil {
				t.Error(err)
				return
			}
			outcomes <- o
		}()
	}
	close(start)
	wg.Wait()
	close(outcomes)
	count := map[GreyOutcome]int{}
	for o := range outcomes {
		count[o]++
	}
	if count[GreyNew] != 1 || count[GreyEarly] != n-1 {
		t.Fatalf("outcomes = %v, want 1 new and %d early", count, n-1)
	}
	e, err := b.Get(ctx, Grey, "tuple")
	if err != nil || e.Count != n {
		t.Fatalf("Get = %+v, %v; want count %d", e, err, n)
	}
}

// A failing call in a bbolt batch makes the batch re-run the other calls'
// functions; their outputs must come from the committed run only.
func TestGreylistBatchRetryIdempotent(t *testing.T) {
	b, _ := openTest(t)
	ctx := context.Background()
	b.db.MaxBatchDelay = 200 * time.Millisecond // gather everything into one batch
	if err := b.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(Grey)).Put([]byte("corrupt"), []byte("{not json"))
	}); err != nil {
		t.Fatal(err)
	}
	t0 := now()
	const n = 20
	var wg sync.WaitGroup
	outcomes := make(chan GreyOutcome, n)
	counts := make(chan int64, n)
	for i := range n + 1 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i == n/2 {
				if _, _, err := b.Greylist(ctx, "corrupt", "c", t0, testParams); err == nil {
					t.Error("Greylist on a corrupt entry succeeded")
				}
				return
			}
			e, o, err := b.Greylist(ctx, "tuple", "c", t0, testParams)
			if err != nil {
				t.Error(err)
				return
			}
			outcomes <- o
			counts <- e.Count
		}()
	}
	wg.Wait()
	close(outcomes)
	close(counts)
	news := 0
	for o := range outcomes {
		if o == GreyNew {
			news++
		}
	}
	seen := map[int64]bool{}
	for c := range counts {
		if seen[c] {
			t.Errorf("two calls returned count %d", c)
		}
		seen[c] = true
	}
	if news != 1 || len(seen) != n {
		t.Fatalf("news = %d, distinct counts = %d; want 1 and %d", news, len(seen), n)
	}
	if e, err := b.Get(ctx, Grey, "tuple"); err != nil || e.Count != n {
		t.Fatalf("Get = %+v, %v; want count %d", e, err, n)
	}
}

func TestMatch(t *testing.T) { forBackends(t, testMatch) }

func testMatch(t *testing.T, openTest opener) {
	b, _ := openTest(t)
	ctx := context.Background()
	t0 := now()
	for _, e := range []Entry{
		{Kind: White, Key: "192.0.2.0/24", Reason: "/24"},
		{Kind: White, Key: "192.0.2.0/28", Reason: "/28"},
		{Kind: White, Key: "192.0.2.5", Reason: "host"},
		{Kind: White, Key: "192.0.2.9", Reason: "expired host", Expires: t0.Add(-time.Second)},
		{Kind: White, Key: "2001:db8::/32", Reason: "v6 /32"},
		{Kind: White, Key: "2001:db8:1::/48", Reason: "v6 /48"},
		{Kind: White, Key: "2001:db8:1::5", Reason: "v6 host"},
		{Kind: White, Key: "fe80::/10", Reason: "link-local"},
		{Kind: Black, Key: "203.0.113.0/24", Reason: "black /24"},
	} {
		e.Created, e.Updated = t0, t0
		mustPut(t, b, e)
	}
	cases := []struct {
		kind Kind
		addr string
		want string // reason, "" for not found
	}{
		{White, "192.0.2.5", "host"},
		{White, "192.0.2.6", "/28"},
		{White, "192.0.2.9", "/28"}, // expired host entry falls through
		{White, "192.0.2.15", "/28"},
		{White, "192.0.2.16", "/24"},
		{White, "192.0.2.255", "/24"},
		{White, "192.0.3.1", ""},
		{White, "::ffff:192.0.2.5", "host"},
		{White, "::ffff:192.0.2.6", "/28"},
		{White, "::ffff:192.0.2.200", "/24"},
		{White, "2001:db8:1::5", "v6 host"},
		{White, "2001:db8:1::6", "v6 /48"},
		{White, "2001:db8:2::1", "v6 /32"},
		{White, "2001:db9::1", ""},
		{White, "fe80::1%eth0", "link-local"},
		{White, "203.0.113.7", ""},
		{Black, "203.0.113.7", "black /24"},
		{Black, "192.0.2.5", ""},
		{Black, "::ffff:203.0.113.7", "black /24"},
	}
	for _, c := range cases {
		e, err := b.Match(ctx, c.kind, netip.MustParseAddr(c.addr))
		switch {
		case c.want == "" && !errors.Is(err, ErrNotFound):
			t.Errorf("Match(%s, %s) = %+v, %v; want ErrNotFound", c.kind, c.addr, e, err)
		case c.want != "" && (err != nil || e.Reason != c.want):
			t.Errorf("Match(%s, %s) = %q, %v; want %q", c.kind, c.addr, e.Reason, err, c.want)
		}
	}

	// A catch-all prefix is the least specific candidate.
	mustPut(t, b, Entry{Kind: White, Key: "0.0.0.0/0", Reason: "all v4"})
	mustPut(t, b, Entry{Kind: White, Key: "::/0", Reason: "all v6"})
	for addr, want := range map[string]string{"192.0.3.1": "all v4", "2001:db9::1": "all v6", "192.0.2.5": "host"} {
		if e, err := b.Match(ctx, White, netip.MustParseAddr(addr)); err != nil || e.Reason != want {
			t.Errorf("Match(white, %s) = %q, %v; want %q", addr, e.Reason, err, want)
		}
	}

	for _, k := range []Kind{Grey, Trap, "nope"} {
		if _, err := b.Match(ctx, k, netip.MustParseAddr("192.0.2.5")); err == nil || errors.Is(err, ErrNotFound) {
			t.Errorf("Match(%q) err = %v, want a usage error", k, err)
		}
	}
	if _, err := b.Match(ctx, White, netip.Addr{}); err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("Match(invalid addr) err = %v, want a usage error", err)
	}
}

// Every key Match builds must be the one ParseAddrKey gives an operator.
func TestMatchKeysAgreeWithParseAddrKey(t *testing.T) {
	forBackends(t, testMatchKeysAgreeWithParseAddrKey)
}

func testMatchKeysAgreeWithParseAddrKey(t *testing.T, openTest opener) {
	ctx := context.Background()
	addr := netip.MustParseAddr("2001:db8:abcd:12::1")
	for bits := 0; bits <= 128; bits += 7 {
		b, _ := openTest(t)
		key, err := ParseAddrKey(netip.PrefixFrom(addr, bits).String())
		if err != nil {
			t.Fatal(err)
		}
		mustPut(t, b, Entry{Kind: Black, Key: key})
		if e, err := b.Match(ctx, Black, addr); err != nil || e.Key != key {
			t.Errorf("/%d: Match = %q, %v; want %q", bits, e.Key, err, key)
		}
	}
}

func TestExpiredInvisibleAndSwept(t *testing.T) { forBackends(t, testExpiredInvisibleAndSwept) }

func testExpiredInvisibleAndSwept(t *testing.T, openTest opener) {
	b, _ := openTest(t)
	ctx := context.Background()
	t0 := now()
	past, future := t0.Add(-time.Minute), t0.Add(time.Hour)
	for _, e := range []Entry{
		{Kind: White, Key: "192.0.2.1", Expires: past},
		{Kind: White, Key: "192.0.2.2", Expires: future},
		{Kind: White, Key: "192.0.2.3"}, // permanent
		{Kind: White, Key: "10.0.0.0/8", Expires: past},
		{Kind: Grey, Key: "old", Expires: past},
		{Kind: Grey, Key: "new", Expires: future},
		{Kind: Black, Key: "198.51.100.0/24", Expires: past},
		{Kind: Trap, Key: "trap@example.org", Expires: past},
		{Kind: Trap, Key: "edge@example.org", Expires: t0}, // expires exactly at the sweep time
	} {
		mustPut(t, b, e)
	}
	for _, c := range []struct {
		k   Kind
		key string
	}{{White, "192.0.2.1"}, {White, "10.0.0.0/8"}, {Grey, "old"}, {Black, "198.51.100.0/24"}, {Trap, "trap@example.org"}} {
		if e, err := b.Get(ctx, c.k, c.key); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%s %s) = %+v, %v; want ErrNotFound", c.k, c.key, e, err)
		}
	}
	if _, err := b.Match(ctx, White, netip.MustParseAddr("10.1.1.1")); !errors.Is(err, ErrNotFound) {
		t.Errorf("Match(expired prefix) err = %v", err)
	}
	if _, err := b.Match(ctx, White, netip.MustParseAddr("192.0.2.1")); !errors.Is(err, ErrNotFound) {
		t.Errorf("Match(expired host) err = %v", err)
	}
	if _, err := b.Match(ctx, Black, netip.MustParseAddr("198.51.100.1")); !errors.Is(err, ErrNotFound) {
		t.Errorf("Match(expired black) err = %v", err)
	}
	var keys []string
	for _, e := range listAll(t, b, "") {
		keys = append(keys, string(e.Kind)+":"+e.Key)
	}
	if got, want := strings.Join(keys, " "), "white:192.0.2.2 white:192.0.2.3 grey:new"; got != want {
		t.Errorf("List = %s, want %s", got, want)
	}

	// Still stored until swept.
	if n := rawCount(t, b, White); n != 4 {
		t.Fatalf("raw white count = %d, want 4", n)
	}
	n, err := b.Expire(ctx, t0)
	if err != nil || n != 6 {
		t.Fatalf("Expire = %d, %v; want 6", n, err)
	}
	if got := rawCount(t, b, White) + rawCount(t, b, Grey) + rawCount(t, b, Black) + rawCount(t, b, Trap); got != 3 {
		t.Fatalf("after Expire %d entries stored, want 3", got)
	}
	if n, err := b.Expire(ctx, t0); err != nil || n != 0 {
		t.Fatalf("second Expire = %d, %v; want 0", n, err)
	}
	// Far in the future only the permanent entry survives.
	if n, err := b.Expire(ctx, t0.Add(24*time.Hour)); err != nil || n != 2 {
		t.Fatalf("future Expire = %d, %v; want 2", n, err)
	}
	if _, err := b.Get(ctx, White, "192.0.2.3"); err != nil {
		t.Fatalf("permanent entry gone: %v", err)
	}
}

func TestExpireCarriesOnPastCorruptEntry(t *testing.T) {
	b, _ := openTest(t)
	ctx := context.Background()
	mustPut(t, b, Entry{Kind: White, Key: "192.0.2.1", Expires: now().Add(-time.Minute)})
	b.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(Grey)).Put([]byte("broken"), []byte("]"))
	})
	n, err := b.Expire(ctx, now())
	if n != 1 || err == nil || !strings.Contains(err.Error(), `"broken"`) {
		t.Fatalf("Expire = %d, %v; want 1 and an error naming the broken key", n, err)
	}
	if rawCount(t, b, White) != 0 {
		t.Fatal("expired entry not removed")
	}
	// Delete is the way to get rid of it.
	if ok, err := b.Delete(ctx, Grey, "broken"); err != nil || !ok {
		t.Fatalf("Delete(broken) = %v, %v", ok, err)
	}
}

func TestRunExpiry(t *testing.T) {
	b, _ := openTest(t)
	mustPut(t, b, Entry{Kind: Grey, Key: "old", Expires: now().Add(-time.Second)})
	ctx, cancel := context.WithCancel(context.Background())
	type result struct {
		n   int
		err error
	}
	results := make(chan result, 100)
	done := make(chan struct{})
	go func() {
		b.RunExpiry(ctx, 10*time.Millisecond, func(n int, err error) {
			select {
			case results <- result{n, err}:
			default:
			}
		})
		close(done)
	}()
	if r := <-results; r.n != 1 || r.err != nil {
		t.Fatalf("first sweep = %+v, want 1 removed", r)
	}
	// Entries that expire later are caught by a later tick.
	mustPut(t, b, Entry{Kind: Grey, Key: "soon", Expires: time.Now().Add(30 * time.Millisecond)})
	deadline := time.After(5 * time.Second)
	for found := false; !found; {
		select {
		case r := <-results:
			found = r.n == 1
		case <-deadline:
			t.Fatal("later entry never swept")
		}
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("RunExpiry did not return after cancel")
	}

	var gotErr error
	b.RunExpiry(context.Background(), 0, func(_ int, err error) { gotErr = err })
	if gotErr == nil {
		t.Fatal("RunExpiry with zero interval reported no error")
	}
}

func TestRefresh(t *testing.T) { forBackends(t, testRefresh) }

func testRefresh(t *testing.T, openTest opener) {
	b, _ := openTest(t)
	ctx := context.Background()
	t0 := now()
	ttl := 36 * 24 * time.Hour

	e, err := b.Refresh(ctx, "192.0.2.1", "delivered", "greylist", t0, ttl)
	if err != nil {
		t.Fatal(err)
	}
	if e.Kind != White || e.Count != 1 || e.Reason != "delivered" || e.Source != "greylist" ||
		!e.Created.Equal(t0) || !e.Updated.Equal(t0) || !e.Expires.Equal(t0.Add(ttl)) {
		t.Fatalf("new = %+v", e)
	}
	t1 := t0.Add(time.Hour)
	e, err = b.Refresh(ctx, "192.0.2.1", "other", "api", t1, ttl)
	if err != nil {
		t.Fatal(err)
	}
	if e.Count != 2 || e.Reason != "delivered" || e.Source != "greylist" || !e.Created.Equal(t0) ||
		!e.Updated.Equal(t1) || !e.Expires.Equal(t1.Add(ttl)) {
		t.Fatalf("refreshed = %+v", e)
	}
	if got, err := b.Get(ctx, White, "192.0.2.1"); err != nil || !sameEntry(got, e) {
		t.Fatalf("Get = %+v, %v; want %+v", got, err, e)
	}

	// An operator's permanent or longer entry is not shortened.
	mustPut(t, b, Entry{Kind: White, Key: "192.0.2.0/24", Reason: "partner", Source: "db", Created: t0})
	e, err = b.Refresh(ctx, "192.0.2.0/24", "delivered", "greylist", t1, ttl)
	if err != nil || !e.Expires.IsZero() || e.Count != 1 || e.Reason != "partner" || e.Source != "db" {
		t.Fatalf("refresh of permanent = %+v, %v", e, err)
	}
	far := t0.Add(365 * 24 * time.Hour)
	mustPut(t, b, Entry{Kind: White, Key: "198.51.100.1", Expires: far})
	if e, err = b.Refresh(ctx, "198.51.100.1", "", "", t1, ttl); err != nil || !e.Expires.Equal(far) {
		t.Fatalf("refresh of long entry = %+v, %v", e, err)
	}

	// An expired (unswept) entry is replaced, not revived.
	mustPut(t, b, Entry{Kind: White, Key: "192.0.2.2", Reason: "stale", Created: t0.Add(-48 * time.Hour),
		Count: 9, Expires: t0.Add(-time.Hour)})
	if e, err = b.Refresh(ctx, "192.0.2.2", "fresh", "greylist", t0, ttl); err != nil ||
		e.Count != 1 || e.Reason != "fresh" || !e.Created.Equal(t0) {
		t.Fatalf("refresh of expired = %+v, %v", e, err)
	}

	for _, key := range []string{"", "192.0.2.1/32", "::ffff:192.0.2.1", "10.1.2.3/8", "mail.example.org"} {
		if _, err := b.Refresh(ctx, key, "", "", t0, ttl); err == nil {
			t.Errorf("Refresh(%q) succeeded", key)
		}
	}
	if _, err := b.Refresh(ctx, "192.0.2.1", "", "", t0, 0); err == nil {
		t.Error("Refresh with zero ttl succeeded")
	}
}

func TestPutGetDeleteList(t *testing.T) { forBackends(t, testPutGetDeleteList) }

func testPutGetDeleteList(t *testing.T, openTest opener) {
	b, _ := openTest(t)
	ctx := context.Background()
	t0 := now()
	e := Entry{Kind: Black, Key: "198.51.100.0/24", Reason: "spam run", Source: "db", Created: t0, Updated: t0,
		Expires: t0.Add(time.Hour), Count: 3}
	mustPut(t, b, e)
	got, err := b.Get(ctx, Black, e.Key)
	if err != nil || !sameEntry(got, e) {
		t.Fatalf("Get = %+v, %v; want %+v", got, err, e)
	}
	if _, err := b.Get(ctx, White, e.Key); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(white) err = %v, want ErrNotFound", err)
	}
	if _, err := b.Get(ctx, "nope", e.Key); err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(unknown kind) err = %v", err)
	}

	for _, bad := range []Entry{
		{Kind: "nope", Key: "x"},
		{Kind: White, Key: ""},
		{Kind: White, Key: "192.0.2.1/32"},
		{Kind: White, Key: "10.1.2.3/8"},
		{Kind: Black, Key: "not an address"},
		{Kind: Trap, Key: "Trap@Example.org"},
		{Kind: Trap, Key: "nobody"},
		{Kind: Grey, Key: " "},
	} {
		if err := b.Put(ctx, bad); err == nil {
			t.Errorf("Put(%+v) succeeded", bad)
		}
	}

	// List is in key order within a kind, kinds in Kinds order.
	for _, k := range []string{"c@example.org", "a@example.org", "b@example.org"} {
		mustPut(t, b, Entry{Kind: Trap, Key: k})
	}
	mustPut(t, b, Entry{Kind: Grey, Key: "t"})
	var keys []string
	for _, e := range listAll(t, b, "") {
		keys = append(keys, e.Key)
	}
	if got, want := strings.Join(keys, ","), "t,198.51.100.0/24,a@example.org,b@example.org,c@example.org"; got != want {
		t.Errorf("List order = %s, want %s", got, want)
	}
	stop := errors.New("stop")
	calls := 0
	if err := b.List(ctx, Trap, func(Entry) error { calls++; return stop }); !errors.Is(err, stop) || calls != 1 {
		t.Errorf("List with failing fn = %v after %d calls", err, calls)
	}
	if err := b.List(ctx, "nope", func(Entry) error { return nil }); err == nil {
		t.Error("List(unknown kind) succeeded")
	}

	if ok, err := b.Delete(ctx, Black, e.Key); err != nil || !ok {
		t.Fatalf("Delete = %v, %v", ok, err)
	}
	if ok, err := b.Delete(ctx, Black, e.Key); err != nil || ok {
		t.Fatalf("second Delete = %v, %v", ok, err)
	}
	mustPut(t, b, Entry{Kind: White, Key: "192.0.2.1", Expires: t0.Add(-time.Second)})
	if ok, err := b.Delete(ctx, White, "192.0.2.1"); err != nil || ok {
		t.Fatalf("Delete(expired) = %v, %v; want false", ok, err)
	}
	if rawCount(t, b, White) != 0 {
		t.Fatal("Delete left the expired entry behind")
	}
}

func TestCancelledContext(t *testing.T) { forBackends(t, testCancelledContext) }

func testCancelledContext(t *testing.T, openTest opener) {
	b, _ := openTest(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := b.Get(ctx, White, "192.0.2.1"); !errors.Is(err, context.Canceled) {
		t.Errorf("Get err = %v", err)
	}
	if err := b.Put(ctx, Entry{Kind: White, Key: "192.0.2.1"}); !errors.Is(err, context.Canceled) {
		t.Errorf("Put err = %v", err)
	}
	if _, _, err := b.Greylist(ctx, "k", "c", now(), testParams); !errors.Is(err, context.Canceled) {
		t.Errorf("Greylist err = %v", err)
	}
	if _, err := b.Get(context.Background(), White, "192.0.2.1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("cancelled Put stored something: %v", err)
	}
}

func TestPersistenceAndFileModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "var", "lib", "greypit")
	path := filepath.Join(dir, "greypit.db")
	ctx := context.Background()
	t0 := now()

	b, err := OpenBolt(path, BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, b, Entry{Kind: Trap, Key: "trap@example.org", Reason: "seeded", Created: t0})
	grey, _, err := b.Greylist(ctx, "tuple", "192.0.2.1", t0, testParams)
	if err != nil {
		t.Fatal(err)
	}
	white, err := b.Refresh(ctx, "2001:db8::1", "delivered", "greylist", t0, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("dir mode = %v, %v; want 0700", fi.Mode().Perm(), err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode = %v, %v; want 0600", fi.Mode().Perm(), err)
	}

	b, err = OpenBolt(path, BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if e, err := b.Get(ctx, Grey, "tuple"); err != nil || !sameEntry(e, grey) {
		t.Errorf("grey after reopen = %+v, %v; want %+v", e, err, grey)
	}
	if e, err := b.Get(ctx, White, "2001:db8::1"); err != nil || !sameEntry(e, white) {
		t.Errorf("white after reopen = %+v, %v; want %+v", e, err, white)
	}
	if e, err := b.Get(ctx, Trap, "trap@example.org"); err != nil || e.Reason != "seeded" {
		t.Errorf("trap after reopen = %+v, %v", e, err)
	}
	if _, o, err := b.Greylist(ctx, "tuple", "192.0.2.1", t0.Add(testParams.PassDelay), testParams); err != nil || o != GreyPass {
		t.Errorf("retry after reopen = %v, %v; want pass", o, err)
	}
	if b.db.NoSync {
		t.Error("NoSync is set; commits would not be durable")
	}
}

func TestLocked(t *testing.T) {
	b, path := openTest(t)
	for _, ro := range []bool{false, true} {
		start := time.Now()
		b2, err := OpenBolt(path, BoltOptions{Timeout: 300 * time.Millisecond, ReadOnly: ro})
		elapsed := time.Since(start)
		if err == nil {
			b2.Close()
			t.Fatalf("read-only=%v: second open succeeded while locked", ro)
		}
		if !errors.Is(err, ErrLocked) {
			t.Fatalf("read-only=%v: err = %v, want ErrLocked", ro, err)
		}
		if !strings.Contains(err.Error(), "in use") || !strings.Contains(err.Error(), "greypit serve") {
			t.Errorf("error %q does not say the file is in use by greypit serve", err)
		}
		if elapsed < 200*time.Millisecond || elapsed > 3*time.Second {
			t.Errorf("read-only=%v: gave up after %v, want about 300ms", ro, elapsed)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b3, err := OpenBolt(path, BoltOptions{Timeout: time.Second})
	if err != nil {
		t.Fatalf("open after Close: %v", err)
	}
	b3.Close()
}

func TestReadOnly(t *testing.T) {
	ctx := context.Background()
	b, path := openTest(t)
	mustPut(t, b, Entry{Kind: White, Key: "192.0.2.0/24", Reason: "r"})
	b.Close()

	r1, err := OpenBolt(path, BoltOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r1.Close()
	r2, err := OpenBolt(path, BoltOptions{ReadOnly: true, Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatalf("second read-only open: %v", err)
	}
	defer r2.Close()
	if e, err := r2.Match(ctx, White, netip.MustParseAddr("192.0.2.7")); err != nil || e.Reason != "r" {
		t.Fatalf("read-only Match = %+v, %v", e, err)
	}
	if _, err := OpenBolt(path, BoltOptions{Timeout: 200 * time.Millisecond}); !errors.Is(err, ErrLocked) {
		t.Fatalf("writer open beside readers err = %v, want ErrLocked", err)
	}
	if err := r1.Put(ctx, Entry{Kind: White, Key: "192.0.2.1"}); !errors.Is(err, bolt.ErrDatabaseReadOnly) {
		t.Errorf("read-only Put err = %v", err)
	}
	if _, _, err := r1.Greylist(ctx, "k", "c", now(), testParams); !errors.Is(err, bolt.ErrDatabaseReadOnly) {
		t.Errorf("read-only Greylist err = %v", err)
	}
	if _, err := r1.Expire(ctx, now()); !errors.Is(err, bolt.ErrDatabaseReadOnly) {
		t.Errorf("read-only Expire err = %v", err)
	}

	missing := filepath.Join(t.TempDir(), "nope", "greypit.db")
	if _, err := OpenBolt(missing, BoltOptions{ReadOnly: true}); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("read-only open of missing file err = %v", err)
	}
	if _, err := os.Stat(filepath.Dir(missing)); !errors.Is(err, os.ErrNotExist) {
		t.Error("read-only open created the directory")
	}
}

func TestSchemaVersionChecked(t *testing.T) {
	b, path := openTest(t)
	if err := b.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(metaBucket).Put(schemaKey, []byte("99"))
	}); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if _, err := OpenBolt(path, BoltOptions{}); err == nil || !strings.Contains(err.Error(), "schema") {
		t.Fatalf("open of future schema err = %v", err)
	}
}
