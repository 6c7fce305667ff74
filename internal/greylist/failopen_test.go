package greylist

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/greypit/greypit/internal/store"
	"github.com/greypit/greypit/internal/testenv"
)

// With the store gone (a stopped redis-server), CheckAttempt returns the
// error (store.unreachable = "tempfail": the session answers 451 4.3.0),
// or with FailOpen a pass that carries it.
func TestFailOpen(t *testing.T) {
	srv := testenv.StartRedis(t)
	st, err := store.OpenRedis(store.RedisOptions{Addrs: []string{srv.Addr()}, Timeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	g := &Greylister{Store: st, PrefixV4: 24, PrefixV6: 64,
		Params: store.GreyParams{PassDelay: time.Minute, RetryWindow: time.Hour, PassedTTL: 24 * time.Hour}}
	ctx := context.Background()
	a := Attempt{Client: netip.MustParseAddr("192.0.2.1"), Sender: "s@example.org", Rcpt: "r@example.net"}
	if d, err := g.CheckAttempt(ctx, a); err != nil || d.Outcome != store.GreyNew || d.StoreErr != nil {
		t.Fatalf("with the store up: %+v, %v", d, err)
	}
	srv.Stop()
	if d, err := g.CheckAttempt(ctx, a); err == nil {
		t.Fatalf("tempfail with the store down: %+v, no error", d)
	}
	g.FailOpen = true
	d, err := g.CheckAttempt(ctx, a)
	if err != nil || d.Outcome != store.GreyPass || d.StoreErr == nil {
		t.Fatalf("open with the store down: %+v, %v; want a pass carrying the error", d, err)
	}
}
