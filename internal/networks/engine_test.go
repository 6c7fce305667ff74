package networks

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/greypit/greypit/internal/lists"
	"github.com/greypit/greypit/internal/store"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	t   *testing.T
	st  *store.Bolt
	obs *Observed
	e   *Engine
	clk *clock
}

func newFixture(t *testing.T, mod func(*Config)) *fixture {
	t.Helper()
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "db"), store.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	// Entries' liveness is judged by the store against the real clock,
	// so the test clock starts now.
	clk := &clock{t: time.Now().Round(0)}
	cfg := Config{PrefixV4: 24, PrefixV6: 48, EscalateHosts: 3, EscalateTTL: 24 * time.Hour, HalfLife: time.Hour, Now: clk.Now}
	if mod != nil {
		mod(&cfg)
	}
	e := New(cfg, st, nil)
	if _, _, err := e.Rebuild(context.Background()); err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, st: st, obs: Observe(st, e, nil), e: e, clk: clk}
}

// black makes addr black through the observed store, as pregreet does.
func (f *fixture) black(addr string, ttl time.Duration) {
	f.t.Helper()
	now := f.clk.Now()
	if err := f.obs.Put(context.Background(), store.Entry{Kind: store.Black, Key: addr, Source: "pregreet",
		Reason: "pregreet", Created: now, Updated: now, Expires: now.Add(ttl), Count: 1}); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) escalation(key string) (store.Entry, bool) {
	f.t.Helper()
	e, err := f.st.Get(context.Background(), store.Black, key)
	if err != nil {
		return store.Entry{}, false
	}
	return e, e.Source == Source
}

func TestEscalateAfterDistinctHosts(t *testing.T) {
	f := newFixture(t, nil)
	f.black("192.0.2.1", time.Hour)
	f.black("192.0.2.1", 2*time.Hour) // the same host again is not a second host
	f.black("192.0.2.2", 3*time.Hour)
	if _, ok := f.escalation("192.0.2.0/24"); ok {
		t.Fatal("escalated after two distinct hosts")
	}
	f.black("192.0.3.3", time.Hour) // another network
	if _, ok := f.escalation("192.0.2.0/24"); ok {
		t.Fatal("a host of another /24 counted")
	}
	f.black("192.0.2.3", 30*time.Minute)
	e, ok := f.escalation("192.0.2.0/24")
	if !ok {
		t.Fatal("not escalated after three distinct hosts")
	}
	// It lasts while three hosts are black: until the third-latest expiry.
	if want := f.clk.Now().Add(30 * time.Minute); !e.Expires.Equal(want) || e.Count != 3 || !strings.Contains(e.Reason, "3 black hosts") {
		t.Errorf("escalation %+v, want expiry %v", e, want)
	}
	// The store's own match now finds the network for any host in it.
	m, err := f.st.Match(context.Background(), store.Black, netip.MustParseAddr("192.0.2.200"))
	if err != nil || m.Key != "192.0.2.0/24" {
		t.Errorf("match for a clean host of the network: %+v %v", m, err)
	}

	v := f.e.Explain(netip.MustParseAddr("192.0.2.200"))
	if !v.Escalate || v.Escalated == nil || len(v.Hosts) != 3 || v.Blocker != "" {
		t.Errorf("explain: %+v", v)
	}

	// Evidence expires: the escalation goes with it.
	f.clk.Add(31 * time.Minute)
	if _, down, err := f.e.Rebuild(context.Background()); err != nil || down != 1 {
		t.Fatalf("rebuild after expiry: down %d, %v", down, err)
	}
	if _, ok := f.escalation("192.0.2.0/24"); ok {
		t.Error("still escalated with two live hosts")
	}
}

// The escalation's store expiry alone ends it, even with no re-evaluation.
func TestEscalationEntryExpires(t *testing.T) {
	f := newFixture(t, nil)
	for _, a := range []string{"198.51.100.1", "198.51.100.2", "198.51.100.3"} {
		f.black(a, 300*time.Millisecond)
	}
	if _, ok := f.escalation("198.51.100.0/24"); !ok {
		t.Fatal("not escalated")
	}
	time.Sleep(400 * time.Millisecond) // the store judges expiry by the real clock
	if _, err := f.st.Match(context.Background(), store.Black, netip.MustParseAddr("198.51.100.9")); err != store.ErrNotFound {
		t.Errorf("match after expiry: %v", err)
	}
}

func TestNoEscalation(t *testing.T) {
	dir := t.TempDir()
	allow := filepath.Join(dir, "allow")
	os.WriteFile(allow, []byte("203.0.113.77\n"), 0o644)
	lset, err := lists.NewSet([]string{allow}, nil)
	if err != nil {
		t.Fatal(err)
	}
	asn, err := OpenASNDB("testdata/iptoasn-ip2asn-v4-subset.tsv")
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, func(c *Config) {
		c.Allow = lset.Allow
		c.NeverPrefixes = []netip.Prefix{netip.MustParsePrefix("100.64.0.0/16")}
		c.NeverASNs = []uint32{15169}
		c.ASN = asn
	})
	f.e.AddExempter(func(p netip.Prefix) (string, bool) {
		return "big sender example.org", p.Contains(netip.MustParseAddr("10.1.1.1"))
	})
	ctx := context.Background()
	// A white host in the network (earned by greylisting).
	if _, err := f.obs.Refresh(ctx, "192.0.2.50", "passed greylisting", "greylist", f.clk.Now(), time.Hour); err != nil {
		t.Fatal(err)
	}
	for net, why := range map[string]string{
		"192.0.2":   "white host 192.0.2.50",
		"203.0.113": "lists.allow",
		"100.64.9":  "networks.never_escalate 100.64.0.0/16",
		"8.8.8":     "networks.never_escalate AS15169",
		"10.1.1":    "big sender example.org",
	} {
		for _, h := range []string{".1", ".2", ".3", ".4"} {
			f.black(net+h, time.Hour)
		}
		p := netip.MustParsePrefix(net + ".0/24")
		if _, ok := f.escalation(p.String()); ok {
			t.Errorf("%s escalated", p)
		}
		v := f.e.Explain(p.Addr())
		if v.Escalate || !strings.Contains(v.Blocker, why) || len(v.Hosts) != 4 {
			t.Errorf("%s: %+v, want blocker %q", p, v, why)
		}
	}
	// 8.8.8.0/24 and 8.8.4.0/24 are both AS15169: the AS score adds up.
	for _, h := range []string{".1", ".2"} {
		f.black("8.8.4"+h, time.Hour)
	}
	if v := f.e.Explain(netip.MustParseAddr("8.8.8.8")); v.AS == nil || v.AS.Number != 15169 || v.ASHosts != 6 || v.ASScore != 6 || v.Score != 4 {
		t.Errorf("AS of 8.8.8.8: %+v", v)
	}

	// A white host that arrives later de-escalates at once.
	for _, h := range []string{".1", ".2", ".3"} {
		f.black("198.18.0"+h, time.Hour)
	}
	if _, ok := f.escalation("198.18.0.0/24"); !ok {
		t.Fatal("not escalated")
	}
	if _, err := f.obs.Refresh(ctx, "198.18.0.99", "db", "db", f.clk.Now(), time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.escalation("198.18.0.0/24"); ok {
		t.Error("a white host did not de-escalate the network")
	}
}

// An operator's own entry for the prefix is never replaced or removed.
func TestOperatorEntryKept(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	now := f.clk.Now()
	op := store.Entry{Kind: store.Black, Key: "192.0.2.0/24", Source: "db", Reason: "mine", Created: now, Updated: now}
	if err := f.st.Put(ctx, op); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"} {
		f.black(a, time.Hour)
	}
	if e, _ := f.st.Get(ctx, store.Black, "192.0.2.0/24"); e.Source != "db" || e.Reason != "mine" {
		t.Errorf("operator entry replaced: %+v", e)
	}
	f.clk.Add(2 * time.Hour)
	f.e.Rebuild(ctx)
	if e, err := f.st.Get(ctx, store.Black, "192.0.2.0/24"); err != nil || e.Source != "db" {
		t.Errorf("operator entry removed: %+v %v", e, err)
	}
}

func TestIPv6AndRebuild(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	// Written behind the engine's back (another process, a load): the
	// periodic rebuild finds them.
	now := f.clk.Now()
	for _, a := range []string{"2001:db8:1:a::1", "2001:db8:1:b::1", "2001:db8:1:ffff::1"} {
		f.st.Put(ctx, store.Entry{Kind: store.Black, Key: a, Source: "feedback", Created: now, Updated: now, Expires: now.Add(time.Hour)})
	}
	f.st.Put(ctx, store.Entry{Kind: store.Black, Key: "2001:db8:2::1", Source: "feedback", Created: now, Updated: now})
	if up, _, err := f.e.Rebuild(ctx); err != nil || up != 1 {
		t.Fatalf("rebuild: up %d, %v", up, err)
	}
	if _, ok := f.escalation("2001:db8:1::/48"); !ok {
		t.Error("the /48 did not escalate")
	}
	// Deleting a host through the store de-escalates.
	if ok, err := f.obs.Delete(ctx, store.Black, "2001:db8:1:b::1"); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if _, ok := f.escalation("2001:db8:1::/48"); ok {
		t.Error("still escalated after a host was deleted")
	}
}

func TestScoreDecays(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.EscalateHosts = 0 })
	f.black("192.0.2.1", 24*time.Hour)
	f.black("192.0.2.2", 24*time.Hour)
	if s := f.e.Explain(netip.MustParseAddr("192.0.2.9")).Score; s != 2 {
		t.Errorf("fresh score %v, want 2", s)
	}
	f.clk.Add(time.Hour) // one half-life
	if s := f.e.Explain(netip.MustParseAddr("192.0.2.9")).Score; s < 0.999 || s > 1.001 {
		t.Errorf("score after a half-life %v, want 1", s)
	}
	f.clk.Add(-time.Hour)
	f.black("192.0.2.3", 24*time.Hour)
	if _, ok := f.escalation("192.0.2.0/24"); ok {
		t.Error("escalate_hosts = 0 escalated")
	}
}

// Trap hits reach the history hook; other black entries and prefix
// entries do not.
func TestObservedTrapHook(t *testing.T) {
	f := newFixture(t, nil)
	var got []string
	f.obs.Trap = func(a netip.Addr, e store.Entry) { got = append(got, a.String()+" "+e.Source) }
	now := f.clk.Now()
	ctx := context.Background()
	for _, e := range []store.Entry{
		{Kind: store.Black, Key: "192.0.2.1", Source: "spamtrap", Created: now, Updated: now},
		{Kind: store.Black, Key: "192.0.2.2", Source: "pregreet", Created: now, Updated: now},
		{Kind: store.Black, Key: "192.0.3.0/24", Source: "trap", Created: now, Updated: now},
		{Kind: store.Trap, Key: "trap@example.org", Source: "db", Created: now, Updated: now},
	} {
		if err := f.obs.Put(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if strings.Join(got, ",") != "192.0.2.1 spamtrap" {
		t.Errorf("trap hook calls: %v", got)
	}
}

// Concurrent writers and re-evaluations end in the right state.
func TestConcurrentObserve(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			now := f.clk.Now()
			key := netip.AddrFrom4([4]byte{203, 0, 113, byte(i + 1)}).String()
			if err := f.obs.Put(ctx, store.Entry{Kind: store.Black, Key: key, Source: "pregreet", Created: now, Updated: now, Expires: now.Add(time.Hour)}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 5 {
			if _, _, err := f.e.Rebuild(ctx); err != nil {
				t.Error(err)
			}
		}
	}()
	wg.Wait()
	e, ok := f.escalation("203.0.113.0/24")
	if !ok {
		t.Fatal("not escalated")
	}
	// Each writer evaluates after its own insert, one at a time: the last
	// evaluation saw all 20.
	if e.Count != 20 {
		t.Errorf("escalation counts %d hosts, want 20", e.Count)
	}
}
