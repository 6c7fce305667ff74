package greylist

import (
	"context"
	"errors"
	"github.com/greypit/greypit/internal/testenv"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/greypit/greypit/internal/store"
)

func TestNormalizeSender(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"null sender", "", ""},
		{"lower-cased", "Alice@Example.COM", "alice@example.com"},
		{"plain unchanged", "alice@example.com", "alice@example.com"},
		{"sub-address stripped", "alice+news@example.com", "alice@example.com"},
		{"only first plus counts", "alice+a+b@example.com", "alice@example.com"},
		{"leading plus kept", "+alice@example.com", "+alice@example.com"},
		{"BATV prvs", "prvs=1234abcd=user@example.com", "user@example.com"},
		{"BATV upper case", "PRVS=1234ABCD=User@Example.com", "user@example.com"},
		{"BATV msprvs1", "msprvs1=17ab3cdefg=bounce@example.com", "bounce@example.com"},
		{"BATV btv1", "btv1=0a1b2c=user@example.com", "user@example.com"},
		{"BATV then plus", "prvs=0123abcd=user+tag@example.com", "user@example.com"},
		{"SRS0", "SRS0=hash=tt=orig.example=alice@fwd.example", "alice@orig.example"},
		{"SRS0 plus separator", "SRS0+HHH=TT=orig.example=alice@fwd.example", "alice@orig.example"},
		{"SRS0 real-looking", "srs0=x7Qa=3K=orig.example=bob.smith@forwarder.example", "bob.smith@orig.example"},
		{"SRS0 inner sub-address", "SRS0=h=tt=orig.example=alice+x@fwd.example", "alice@orig.example"},
		{"VERP digits", "list-bounces-1234@lists.example", "list-bounces-#@lists.example"},
		{"VERP several digit runs", "owner-list-12-345@lists.example", "owner-list-#-#@lists.example"},
		{"digits inside a word", "user2024@example.com", "user#@example.com"},
		{"long token with digits", "bounce-a1b2c3d4e5f6a7b8c9@example.com", "bounce-#@example.com"},
		{"long token case-folded", "bounce-A1B2C3D4E5F6A7B8C9@example.com", "bounce-#@example.com"},
		{"long letters-only token kept", "abcdefghijklmnopqrstu@example.com", "abcdefghijklmnopqrstu@example.com"},
		{"15-char token: only digits replaced", "ab12cd34ef56gh7@example.com", "ab#cd#ef#gh#@example.com"},
		{"domain digits untouched", "user@mx1.example.com", "user@mx1.example.com"},
		{"no at sign", "Postmaster", "postmaster"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NormalizeSender(tt.in); got != tt.want {
				t.Errorf("NormalizeSender(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// Two messages from the same bounce or list software must meet on one
// tuple; that is the point of normalising.
func TestNormalizeSenderPerMessagePartsMeet(t *testing.T) {
	pairs := [][2]string{
		{"prvs=1111aaaa=user@example.com", "prvs=2222bbbb=user@example.com"},
		{"SRS0=abcd=AB=orig.example=alice@fwd.example", "SRS0=wxyz=CD=orig.example=alice@fwd.example"},
		{"list-bounces-1234@lists.example", "list-bounces-98765@lists.example"},
		{"bounce-0f3a9c1d2e4b5a6c@example.com", "bounce-9e8d7c6b5a4f3e2d1c@example.com"},
		{"alice+one@example.com", "ALICE+two@example.com"},
	}
	for _, p := range pairs {
		a, b := NormalizeSender(p[0]), NormalizeSender(p[1])
		if a != b {
			t.Errorf("NormalizeSender(%q) = %q but NormalizeSender(%q) = %q; want equal", p[0], a, p[1], b)
		}
	}
	// And different people stay different.
	if NormalizeSender("alice@example.com") == NormalizeSender("bob@example.com") {
		t.Error("different senders normalised to the same string")
	}
	if NormalizeSender("alice@example.com") == NormalizeSender("alice@example.org") {
		t.Error("same local part at different domains normalised to the same string")
	}
}

func TestClientPrefix(t *testing.T) {
	tests := []struct {
		addr         string
		v4bits, v6bs int
		want         string
	}{
		{"192.0.2.77", 24, 64, "192.0.2.0/24"},
		{"192.0.2.77", 32, 64, "192.0.2.77/32"},
		{"192.0.2.77", 16, 64, "192.0.0.0/16"},
		{"2001:db8:1:2:3:4:5:6", 24, 64, "2001:db8:1:2::/64"},
		{"2001:db8:1:2:3:4:5:6", 24, 48, "2001:db8:1::/48"},
		{"2001:db8:1:2:3:4:5:6", 24, 128, "2001:db8:1:2:3:4:5:6/128"},
		// IPv4-mapped IPv6 is an IPv4 client: v4 bits, IPv4 prefix.
		{"::ffff:192.0.2.77", 24, 64, "192.0.2.0/24"},
		{"::ffff:198.51.100.200", 32, 64, "198.51.100.200/32"},
		// Out-of-range bits (config validation prevents them) fall back to
		// the single address rather than failing.
		{"192.0.2.77", 33, 64, "192.0.2.77/32"},
		{"2001:db8::1", 24, 129, "2001:db8::1/128"},
	}
	for _, tt := range tests {
		got := ClientPrefix(netip.MustParseAddr(tt.addr), tt.v4bits, tt.v6bs)
		if got.String() != tt.want {
			t.Errorf("ClientPrefix(%s, %d, %d) = %s, want %s", tt.addr, tt.v4bits, tt.v6bs, got, tt.want)
		}
	}
}

func TestKey(t *testing.T) {
	a := netip.MustParseAddr("192.0.2.77")
	tests := []struct {
		client       string
		sender, rcpt string
		want         string
	}{
		{"192.0.2.77", "prvs=1234abcd=User+x@Example.com", "Bob@Example.NET", "192.0.2.0/24 user@example.com bob@example.net"},
		{"192.0.2.77", "", "bob@example.net", "192.0.2.0/24  bob@example.net"},
		{"::ffff:192.0.2.9", "alice@example.com", "bob@example.net", "192.0.2.0/24 alice@example.com bob@example.net"},
		{"2001:db8:1:2::99", "alice@example.com", "bob@example.net", "2001:db8:1:2::/64 alice@example.com bob@example.net"},
	}
	for _, tt := range tests {
		got := Key(netip.MustParseAddr(tt.client), 24, 64, tt.sender, tt.rcpt)
		if got != tt.want {
			t.Errorf("Key(%s, %q, %q) = %q, want %q", tt.client, tt.sender, tt.rcpt, got, tt.want)
		}
	}
	// The same tuple from a neighbour in the prefix is the same key; from
	// another prefix it is not.
	k1 := Key(a, 24, 64, "alice@example.com", "bob@example.net")
	if k2 := Key(netip.MustParseAddr("192.0.2.200"), 24, 64, "alice@example.com", "bob@example.net"); k1 != k2 {
		t.Errorf("neighbour key %q != %q", k2, k1)
	}
	if k3 := Key(netip.MustParseAddr("192.0.3.77"), 24, 64, "alice@example.com", "bob@example.net"); k1 == k3 {
		t.Errorf("other prefix produced the same key %q", k3)
	}
}

var params = store.GreyParams{
	PassDelay:   5 * time.Minute,
	RetryWindow: 4 * time.Hour,
	PassedTTL:   36 * 24 * time.Hour,
}

func newBolt(t *testing.T) *store.Bolt {
	t.Helper()
	s, err := store.OpenBolt(filepath.Join(t.TempDir(), "greypit.db"), store.BoltOptions{})
	if err != nil {
		t.Fatalf("OpenBolt: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestCheckNewEarlyPass(t *testing.T) {
	ctx := context.Background()
	c := testenv.NewClock(time.Now().Truncate(time.Second))
	start := c.Now()
	g := &Greylister{Store: newBolt(t), Params: params, PrefixV4: 24, PrefixV6: 64, Now: c.Now}
	client := netip.MustParseAddr("192.0.2.10")
	const sender, rcpt = "prvs=1111aaaa=alice@example.com", "Bob@Example.NET"
	wantKey := "192.0.2.0/24 alice@example.com bob@example.net"

	d, err := g.Check(ctx, client, sender, rcpt)
	if err != nil {
		t.Fatalf("first Check: %v", err)
	}
	if d.Outcome != store.GreyNew || d.RetryIn != params.PassDelay || d.Key != wantKey {
		t.Fatalf("first Check = %v RetryIn %v key %q; want new, %v, %q", d.Outcome, d.RetryIn, d.Key, params.PassDelay, wantKey)
	}
	if d.Entry.Client != "192.0.2.10" || d.Entry.Count != 1 || !d.Entry.Pass.Equal(start.Add(params.PassDelay)) {
		t.Errorf("first entry = %+v", d.Entry)
	}

	// Two minutes later, from another host of the pool with a new BATV tag:
	// same tuple, still early, and the wait counts from the first attempt.
	c.Advance(2 * time.Minute)
	d, err = g.Check(ctx, netip.MustParseAddr("::ffff:192.0.2.11"), "prvs=2222bbbb=alice@example.com", rcpt)
	if err != nil {
		t.Fatalf("early Check: %v", err)
	}
	if d.Outcome != store.GreyEarly || d.RetryIn != 3*time.Minute || d.Key != wantKey {
		t.Fatalf("early Check = %v RetryIn %v key %q; want early, 3m0s, %q", d.Outcome, d.RetryIn, d.Key, wantKey)
	}
	if d.Entry.Client != "192.0.2.11" || d.Entry.Count != 2 {
		t.Errorf("early entry client %q count %d; want unmapped 192.0.2.11, 2", d.Entry.Client, d.Entry.Count)
	}

	// Exactly at the pass time: pass, RetryIn zero.
	c.Advance(3 * time.Minute)
	d, err = g.Check(ctx, client, sender, rcpt)
	if err != nil {
		t.Fatalf("pass Check: %v", err)
	}
	if d.Outcome != store.GreyPass || d.RetryIn != 0 {
		t.Fatalf("pass Check = %v RetryIn %v; want pass, 0", d.Outcome, d.RetryIn)
	}
	if !d.Entry.Passed.Equal(c.Now()) {
		t.Errorf("Passed = %v, want %v", d.Entry.Passed, c.Now())
	}

	// A passed tuple keeps passing.
	c.Advance(time.Hour)
	if d, err = g.Check(ctx, client, sender, rcpt); err != nil || d.Outcome != store.GreyPass {
		t.Fatalf("later Check = %v, %v; want pass", d.Outcome, err)
	}

	// Another prefix is another tuple.
	d, err = g.Check(ctx, netip.MustParseAddr("192.0.3.10"), sender, rcpt)
	if err != nil || d.Outcome != store.GreyNew || d.RetryIn != params.PassDelay {
		t.Fatalf("other prefix Check = %v RetryIn %v err %v; want new, %v", d.Outcome, d.RetryIn, err, params.PassDelay)
	}
}

func TestCheckRetryWindowExpires(t *testing.T) {
	ctx := context.Background()
	c := testenv.NewClock(time.Now().Truncate(time.Second))
	g := &Greylister{Store: newBolt(t), Params: params, PrefixV4: 24, PrefixV6: 64, Now: c.Now}
	client := netip.MustParseAddr("2001:db8::1")
	if d, err := g.Check(ctx, client, "a@example.com", "b@example.com"); err != nil || d.Outcome != store.GreyNew {
		t.Fatalf("first Check = %v, %v", d.Outcome, err)
	}
	c.Advance(params.RetryWindow)
	d, err := g.Check(ctx, client, "a@example.com", "b@example.com")
	if err != nil || d.Outcome != store.GreyNew || d.RetryIn != params.PassDelay {
		t.Fatalf("Check after retry window = %v RetryIn %v err %v; want new again", d.Outcome, d.RetryIn, err)
	}
}

// failStore fails every greylist attempt.
type failStore struct {
	store.Store
	err error
}

func (f failStore) Greylist(context.Context, string, string, time.Time, store.GreyParams) (store.Entry, store.GreyOutcome, error) {
	return store.Entry{}, 0, f.err
}

func TestCheckStoreError(t *testing.T) {
	boom := errors.New("disk on fire")
	g := &Greylister{Store: failStore{err: boom}, Params: params, PrefixV4: 24, PrefixV6: 64}
	d, err := g.Check(context.Background(), netip.MustParseAddr("192.0.2.1"), "a@example.com", "b@example.com")
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want wrapping %v", err, boom)
	}
	if !strings.Contains(err.Error(), "192.0.2.0/24 a@example.com b@example.com") {
		t.Errorf("error %q does not name the key", err)
	}
	if d != (Decision{}) {
		t.Errorf("decision on error = %+v, want zero", d)
	}
}

// recordStore records what Check passed to the store.
type recordStore struct {
	store.Store
	key, client string
	now         time.Time
}

func (r *recordStore) Greylist(_ context.Context, key, client string, now time.Time, p store.GreyParams) (store.Entry, store.GreyOutcome, error) {
	r.key, r.client, r.now = key, client, now
	return store.Entry{Pass: now.Add(p.PassDelay)}, store.GreyNew, nil
}

func TestCheckUsesRealClockWithoutNow(t *testing.T) {
	rs := &recordStore{}
	g := &Greylister{Store: rs, Params: params, PrefixV4: 24, PrefixV6: 64}
	before := time.Now()
	d, err := g.Check(context.Background(), netip.MustParseAddr("::ffff:192.0.2.1"), "a@example.com", "b@example.com")
	after := time.Now()
	if err != nil {
		t.Fatal(err)
	}
	if rs.now.Before(before) || rs.now.After(after) {
		t.Errorf("store got now %v, outside [%v, %v]", rs.now, before, after)
	}
	if rs.client != "192.0.2.1" {
		t.Errorf("store got client %q, want unmapped 192.0.2.1", rs.client)
	}
	if d.RetryIn != params.PassDelay {
		t.Errorf("RetryIn = %v, want %v", d.RetryIn, params.PassDelay)
	}
}
