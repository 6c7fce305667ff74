package greylist

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/greypit/greypit/internal/dnsx"
	"github.com/greypit/greypit/internal/store"
	"github.com/greypit/greypit/internal/testenv"
)

func spfGreylister(t *testing.T, selective bool) (*Greylister, *testenv.Clock, *testenv.DNSServer) {
	t.Helper()
	srv := testenv.StartDNS(t, "pool.test", "nospf.test", "slow.test")
	srv.Add(t,
		`pool.test. 300 IN TXT "v=spf1 ip4:127.0.1.0/24 ip4:127.0.2.0/24 ip6:2001:db8:1::/48 -all"`,
		`nospf.test. 300 IN A 127.0.1.1`,
	)
	srv.Drop("slow.test", true)
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "greypit.db"), store.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clock := testenv.NewClock(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
	g := &Greylister{
		Store:     st,
		Params:    store.GreyParams{PassDelay: 3 * time.Minute, RetryWindow: 48 * time.Hour, PassedTTL: 36 * 24 * time.Hour},
		PrefixV4:  24,
		PrefixV6:  64,
		Now:       clock.Now,
		SPF:       &SPF{Resolver: dnsx.NetResolver(srv.Addr), Timeout: 500 * time.Millisecond},
		Selective: selective,
	}
	return g, clock, srv
}

func attempt(t *testing.T, g *Greylister, client, sender, rcpt string) Decision {
	t.Helper()
	d, err := g.CheckAttempt(context.Background(), Attempt{Client: netip.MustParseAddr(client), Helo: "mx.example", Sender: sender, Rcpt: rcpt})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// A retry from another network of the same SPF-authorised pool passes;
// without SPF (or with SPF failing) it starts a new tuple.
func TestSPFKey(t *testing.T) {
	g, clock, _ := spfGreylister(t, false)
	d := attempt(t, g, "127.0.1.5", "bounce-4711@pool.test", "bob@example.net")
	if d.Outcome != store.GreyNew || d.Key != "spf:pool.test bounce-#@pool.test bob@example.net" || d.SPFDomain != "pool.test" {
		t.Fatalf("first attempt: %+v", d)
	}
	clock.Advance(4 * time.Minute)
	if d := attempt(t, g, "127.0.2.9", "bounce-4712@pool.test", "bob@example.net"); d.Outcome != store.GreyPass {
		t.Errorf("retry from another /24 of the pool: %+v", d)
	}
	if d := attempt(t, g, "2001:db8:1:5::25", "bounce-4713@pool.test", "bob@example.net"); d.Outcome != store.GreyPass {
		t.Errorf("retry from the pool's IPv6 network: %+v", d)
	}

	// An address outside the pool: SPF fails, the network key applies.
	d = attempt(t, g, "127.0.3.5", "bounce@pool.test", "carol@example.net")
	if d.Outcome != store.GreyNew || !strings.HasPrefix(d.Key, "127.0.3.0/24 ") || d.SPFDomain != "" {
		t.Errorf("outside the pool: %+v", d)
	}
	// No SPF record: a retry from another /24 is a new tuple.
	attempt(t, g, "127.0.1.5", "x@nospf.test", "bob@example.net")
	clock.Advance(4 * time.Minute)
	if d := attempt(t, g, "127.0.2.9", "x@nospf.test", "bob@example.net"); d.Outcome != store.GreyNew || !strings.HasPrefix(d.Key, "127.0.2.0/24 ") {
		t.Errorf("retry without SPF from another /24: %+v", d)
	}
	// The null sender keys on the network.
	if d := attempt(t, g, "127.0.1.5", "", "bob@example.net"); !strings.HasPrefix(d.Key, "127.0.1.0/24  ") {
		t.Errorf("null sender: %+v", d)
	}
}

// A DNS server that never answers costs at most the SPF timeout, and the
// network key applies.
func TestSPFTimeout(t *testing.T) {
	g, _, _ := spfGreylister(t, false)
	start := time.Now()
	d := attempt(t, g, "127.0.1.5", "a@slow.test", "bob@example.net")
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("SPF check took %v with a 500ms timeout", took)
	}
	if !strings.HasPrefix(d.Key, "127.0.1.0/24 ") || d.Outcome != store.GreyNew {
		t.Errorf("after an SPF timeout: %+v", d)
	}
}

// A tuple pending under the network key before SPF keying was turned on
// keeps that key: its progress is not lost.
func TestSPFKeyCompatible(t *testing.T) {
	g, clock, _ := spfGreylister(t, false)
	spf := g.SPF
	g.SPF = nil
	if d := attempt(t, g, "127.0.1.5", "a@pool.test", "bob@example.net"); d.Outcome != store.GreyNew || !strings.HasPrefix(d.Key, "127.0.1.0/24 ") {
		t.Fatalf("without SPF: %+v", d)
	}
	g.SPF = spf
	clock.Advance(4 * time.Minute)
	if d := attempt(t, g, "127.0.1.6", "a@pool.test", "bob@example.net"); d.Outcome != store.GreyPass || !strings.HasPrefix(d.Key, "127.0.1.0/24 ") {
		t.Errorf("retry after SPF was turned on: %+v", d)
	}
}

// Selective mode: a sender domain that passed greylisting with SPF skips
// it for new recipients; mode "all" greylists them.
func TestSelectiveKnownSender(t *testing.T) {
	for _, selective := range []bool{false, true} {
		g, clock, _ := spfGreylister(t, selective)
		attempt(t, g, "127.0.1.5", "a@pool.test", "bob@example.net")
		clock.Advance(4 * time.Minute)
		if d := attempt(t, g, "127.0.1.5", "a@pool.test", "bob@example.net"); d.Outcome != store.GreyPass {
			t.Fatalf("retry: %+v", d)
		}
		d := attempt(t, g, "127.0.2.7", "news@pool.test", "dave@example.net")
		if selective && (d.Outcome != store.GreyPass || !d.Known) || !selective && d.Outcome != store.GreyNew {
			t.Errorf("selective=%v: new recipient of a known SPF sender: %+v", selective, d)
		}
		// Not for a sender that fails SPF from outside the pool.
		if d := attempt(t, g, "127.0.3.7", "news@pool.test", "erin@example.net"); d.Outcome != store.GreyNew {
			t.Errorf("selective=%v: outside the pool: %+v", selective, d)
		}
	}
}

// A resolver that stops answering costs spfTripAfter timeouts, then SPF
// is skipped (network keys) for spfSkipFor without a query; afterwards it
// is asked again. One answer in between resets the count.
func TestSPFSkipsDeadResolver(t *testing.T) {
	srv := testenv.StartDNS(t, "pool.test", "slow.test")
	srv.Add(t, `pool.test. 300 IN TXT "v=spf1 ip4:127.0.1.0/24 -all"`)
	srv.Drop("slow.test", true)
	s := &SPF{Resolver: dnsx.NetResolver(srv.Addr), Timeout: 100 * time.Millisecond}
	ctx := context.Background()
	client := netip.MustParseAddr("127.0.1.5")
	slow := func(i int) { s.Pass(ctx, client, "mx", fmt.Sprintf("a@d%d.slow.test", i)) }

	for i := range spfTripAfter - 1 {
		slow(i)
	}
	if _, ok := s.Pass(ctx, client, "mx", "a@pool.test"); !ok {
		t.Fatal("pool.test did not pass after fewer timeouts than the trip count")
	}
	for i := range spfTripAfter {
		slow(100 + i)
	}
	before := srv.Queries("pool.test", "TXT")
	if _, ok := s.Pass(ctx, client, "mx", "b@pool.test"); ok {
		t.Error("SPF checked while tripped")
	}
	if n := srv.Queries("pool.test", "TXT") - before; n != 0 {
		t.Errorf("%d queries while tripped", n)
	}
	s.mu.Lock()
	s.skipUntil = time.Now() // the skip has run out
	s.mu.Unlock()
	if _, ok := s.Pass(ctx, client, "mx", "c@pool.test"); !ok || srv.Queries("pool.test", "TXT") == before {
		t.Errorf("SPF not asked again after the skip (pass %v)", ok)
	}
}
