package policy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/greypit/greypit/internal/classify"
	"github.com/greypit/greypit/internal/greylist"
	"github.com/greypit/greypit/internal/lists"
	"github.com/greypit/greypit/internal/store"
	"github.com/greypit/greypit/internal/testenv"
	"github.com/greypit/greypit/internal/traps"
)

type fixture struct {
	srv   *Server
	clock *testenv.Clock
	db    *store.Bolt
	addr  string
}

func newFixture(t *testing.T, mod func(*Server)) *fixture {
	t.Helper()
	db, err := store.OpenBolt(filepath.Join(t.TempDir(), "g.db"), store.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	gc := store.NewGreyCache(db)
	t.Cleanup(func() { gc.Close() })
	ls, err := lists.NewSet(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	clock := testenv.NewClock(time.Now())
	s := &Server{
		Config: Config{
			GreylistAction:  "DEFER_IF_PERMIT",
			GreylistText:    "Greylisted, see http://postgrey.schweikert.ch/help/%r.html",
			BlackAction:     "DEFER",
			XGreylistHeader: "X-Greylist: delayed %t seconds by greypit-%v at %h; %d",
			Hostname:        "mx.test",
			Version:         "test",
			AutoWhitelist:   2,
			WhiteTTL:        24 * time.Hour,
			IdleTimeout:     5 * time.Second,
		},
		Log:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		Classifier: &classify.Classifier{Lists: ls, Store: gc},
		Store:      gc,
		Greylist: &greylist.Greylister{Store: gc, PrefixV4: 24, PrefixV6: 64, Now: clock.Now,
			Params: store.GreyParams{PassDelay: time.Minute, RetryWindow: 2 * time.Hour, PassedTTL: time.Hour}},
		Now: clock.Now,
	}
	if mod != nil {
		mod(s)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return &fixture{srv: s, clock: clock, db: db, addr: ln.Addr().String()}
}

func req(client, sender, rcpt string, extra ...string) string {
	var b strings.Builder
	b.WriteString("request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n")
	fmt.Fprintf(&b, "client_address=%s\nclient_name=unknown\nreverse_client_name=unknown\n", client)
	fmt.Fprintf(&b, "sender=%s\nrecipient=%s\ninstance=%s\netrn_domain=\n", sender, rcpt, "inst-"+sender+rcpt)
	for _, e := range extra {
		b.WriteString(e + "\n")
	}
	b.WriteString("\n")
	return b.String()
}

type pconn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dial(t *testing.T, addr string) *pconn {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return &pconn{t, c, bufio.NewReader(c)}
}

// ask sends raw bytes and reads one reply: "action=...\n\n".
func (p *pconn) ask(raw string) string {
	p.t.Helper()
	if _, err := io.WriteString(p.c, raw); err != nil {
		p.t.Fatal(err)
	}
	return p.read()
}

func (p *pconn) read() string {
	p.t.Helper()
	l, err := p.br.ReadString('\n')
	if err != nil {
		p.t.Fatalf("reading reply: %v", err)
	}
	if e, err := p.br.ReadString('\n'); err != nil || e != "\n" {
		p.t.Fatalf("reply %q not followed by an empty line (%q, %v)", l, e, err)
	}
	if !strings.HasPrefix(l, "action=") {
		p.t.Fatalf("reply %q", l)
	}
	return strings.TrimSuffix(strings.TrimPrefix(l, "action="), "\n")
}

// The greylisting dialogue on one kept-alive connection: defer with
// postgrey's text, early retry deferred with the time left, pass after the
// delay with one X-Greylist header per message, then DUNNO; and the client
// becomes white after AutoWhitelist passes.
func TestGreylistDialogue(t *testing.T) {
	f := newFixture(t, nil)
	p := dial(t, f.addr)
	first := p.ask(req("192.0.2.10", "bob@example.org", "kim@example.test"))
	if first != "DEFER_IF_PERMIT 4.2.0 Greylisted, see http://postgrey.schweikert.ch/help/example.test.html" {
		t.Errorf("first attempt: %q", first)
	}
	f.clock.Advance(20 * time.Second)
	// A reload changes the text of the next answer on the same connection.
	set := *f.srv.settings()
	set.GreylistText = "wait %s s for %r"
	f.srv.Reload(&set)
	if got := p.ask(req("192.0.2.10", "bob@example.org", "kim@example.test")); got != "DEFER_IF_PERMIT 4.2.0 wait 40 s for example.test" {
		t.Errorf("early retry: %q", got)
	}
	f.clock.Advance(41 * time.Second)
	got := p.ask(req("192.0.2.11", "bob@example.org", "kim@example.test")) // same /24
	if !strings.HasPrefix(got, "PREPEND X-Greylist: delayed 61 seconds by greypit-test at mx.test; ") {
		t.Errorf("pass: %q", got)
	}
	if got := p.ask(req("192.0.2.10", "bob@example.org", "kim@example.test")); got != "DUNNO" {
		t.Errorf("after pass: %q", got)
	}
	// The pass was written before it was answered.
	if e, err := f.db.Get(context.Background(), store.Grey, greylist.Key(netip.MustParseAddr("192.0.2.10"), 24, 64, "bob@example.org", "kim@example.test")); err != nil || e.Passed.IsZero() {
		t.Errorf("passed tuple on disk: %+v, %v", e, err)
	}

	// A second tuple from .10 passes an hour later (AWL counts one per
	// hour): .10 is white at AutoWhitelist=2, and .11 is not.
	p.ask(req("192.0.2.10", "ann@example.org", "kim@example.test"))
	f.clock.Advance(time.Hour)
	if got := p.ask(req("192.0.2.10", "ann@example.org", "kim@example.test")); !strings.HasPrefix(got, "PREPEND ") {
		t.Errorf("second tuple pass: %q", got)
	}
	if _, err := f.db.Get(context.Background(), store.White, "192.0.2.10"); err != nil {
		t.Errorf("client not auto-whitelisted: %v", err)
	}
	if got := p.ask(req("192.0.2.10", "new@example.org", "new@example.test")); got != "DUNNO" {
		t.Errorf("white client, new tuple: %q", got)
	}
	if got := p.ask(req("192.0.2.11", "new@example.org", "new@example.test")); !strings.HasPrefix(got, "DEFER_IF_PERMIT") {
		t.Errorf("neighbour of a white client: %q", got)
	}
}

// Requests greypit does not decide get DUNNO, and garbage, floods and
// over-long lines never desynchronise the connection.
func TestRobustness(t *testing.T) {
	f := newFixture(t, nil)
	p := dial(t, f.addr)
	long := "ccert_subject=" + strings.Repeat("x", 3*MaxLine)
	flood := make([]string, MaxAttrs+10)
	for i := range flood {
		flood[i] = fmt.Sprintf("x%d=y", i)
	}
	cases := []struct{ name, raw, want string }{
		{"unknown request type", "request=junk_policy\nclient_address=192.0.2.1\n\n", "DUNNO"},
		{"no request attribute", "client_address=192.0.2.1\nsender=a@b\nrecipient=c@d\n\n", "DUNNO"},
		{"empty request", "\n", "DUNNO"},
		{"DATA state", strings.Replace(req("192.0.2.1", "a@b.test", "c@d.test"), "RCPT", "DATA", 1), "DUNNO"},
		{"missing recipient", "request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=192.0.2.1\nsender=a@b\n\n", "DUNNO"},
		{"missing sender", "request=smtpd_access_policy\nclient_address=192.0.2.1\nrecipient=c@d\n\n", "DUNNO"},
		{"bad address", req("not-an-ip", "a@b.test", "c@d.test"), "DUNNO"},
		{"zoned address", req("fe80::1%eth0", "a@b.test", "c@d.test"), "DUNNO"},
		{"over-long line", req("192.0.2.1", "a@b.test", "c@d.test", long), "DUNNO"},
		{"attribute flood", req("192.0.2.1", "a@b.test", "c@d.test", flood...), "DUNNO"},
		{"garbage lines", "GET / HTTP/1.0\n\x00\xff\n" + req("192.0.2.99", "a@b.test", "c@d.test"), "DEFER_IF_PERMIT"},
		{"CRLF", strings.ReplaceAll(req("192.0.2.98", "a@b.test", "c@d.test"), "\n", "\r\n"), "DEFER_IF_PERMIT"},
	}
	for _, c := range cases {
		if got := p.ask(c.raw); !strings.HasPrefix(got, c.want) {
			t.Errorf("%s: %q, want %s...", c.name, got, c.want)
		}
	}
	// Pipelined: two requests in one write, two answers in order.
	io.WriteString(p.c, req("192.0.2.97", "a@b.test", "c@d.test")+"request=x\n\n")
	if a, b := p.read(), p.read(); !strings.HasPrefix(a, "DEFER_IF_PERMIT") || b != "DUNNO" {
		t.Errorf("pipelined: %q, %q", a, b)
	}
}

// A client that disconnects mid-request, or sends a request that never
// ends, costs nothing and does not stop the server.
func TestDisconnects(t *testing.T) {
	f := newFixture(t, nil)
	c := dial(t, f.addr)
	io.WriteString(c.c, "request=smtpd_access_policy\nclient_addr")
	c.c.Close()

	// An endless request: answered DUNNO and closed at MaxRequestBytes.
	p := dial(t, f.addr)
	go func() {
		line := strings.Repeat("a", 100) + "=b\n"
		for i := 0; i < 2*MaxRequestBytes/len(line); i++ {
			if _, err := io.WriteString(p.c, line); err != nil {
				return
			}
		}
	}()
	if got := p.read(); got != "DUNNO" {
		t.Errorf("endless request: %q", got)
	}
	// Then the connection is closed (EOF, or a reset: unread input).
	if _, err := io.ReadAll(p.br); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("after endless request: %v (want EOF or reset)", err)
	}
	// The server still answers.
	q := dial(t, f.addr)
	if got := q.ask(req("192.0.2.50", "a@b.test", "c@d.test")); !strings.HasPrefix(got, "DEFER_IF_PERMIT") {
		t.Errorf("after bad clients: %q", got)
	}
}

// Black clients get black_action with the reason; the postgrey
// whitelists pass at once.
func TestBlackAndWhitelists(t *testing.T) {
	f := newFixture(t, func(s *Server) {
		s.BlackAction = "REJECT"
		w, err := LoadWhitelist([]string{"testdata/postgrey/whitelist_clients"}, []string{"testdata/postgrey/whitelist_recipients"})
		if err != nil {
			t.Fatal(err)
		}
		s.Whitelist.Store(w)
	})
	ctx := context.Background()
	if err := f.db.Put(ctx, store.Entry{Kind: store.Black, Key: "192.0.2.66", Reason: "spamtrap hit", Created: time.Now(), Updated: time.Now()}); err != nil {
		t.Fatal(err)
	}
	p := dial(t, f.addr)
	if got := p.ask(req("192.0.2.66", "a@b.test", "c@d.test")); got != "REJECT 5.7.1 Blocked: spamtrap hit" {
		t.Errorf("black: %q", got)
	}
	if got := p.ask(req("66.216.126.174", "a@b.test", "c@d.test")); got != "DUNNO" {
		t.Errorf("whitelisted client: %q", got)
	}
	if got := p.ask(strings.Replace(req("192.0.2.67", "a@b.test", "c@d.test"), "client_name=unknown", "client_name=mx1.debian.org", 1)); got != "DUNNO" {
		t.Errorf("whitelisted client name: %q", got)
	}
	if got := p.ask(req("192.0.2.67", "a@b.test", "postmaster@d.test")); got != "DUNNO" {
		t.Errorf("whitelisted recipient: %q", got)
	}
	if got := p.ask(req("192.0.2.67", "a@b.test", "c@d.test")); !strings.HasPrefix(got, "DEFER_IF_PERMIT") {
		t.Errorf("not whitelisted: %q", got)
	}
}

// A grey client that names a spamtrap is answered like any first sighting
// (the trap stays secret), blacklisted with the trap in the reason, and
// refused from its next request on; postmaster is never a trap, and a
// white client is not trapped.
func TestTrapRecipient(t *testing.T) {
	f := newFixture(t, func(s *Server) {
		s.Traps = &traps.Checker{Classifier: s.Classifier, Store: s.Store, Domains: []string{"example.test"},
			BlackTTL: time.Hour, MaxTTL: 24 * time.Hour, Keep: 24 * time.Hour, Now: s.Now}
	})
	ctx := context.Background()
	if err := f.srv.Store.Put(ctx, store.Entry{Kind: store.Trap, Key: "bait@example.test"}); err != nil {
		t.Fatal(err)
	}
	if err := f.srv.Store.Put(ctx, store.Entry{Kind: store.White, Key: "192.0.2.99", Source: "db"}); err != nil {
		t.Fatal(err)
	}
	p := dial(t, f.addr)
	normal := p.ask(req("192.0.2.20", "spam@bot.example", "kim@example.test"))
	trapped := p.ask(req("192.0.2.21", "spam@bot.example", "bait@example.test"))
	if !strings.HasPrefix(trapped, "DEFER_IF_PERMIT 4.2.0 Greylisted") || strings.Contains(trapped, "trap") {
		t.Errorf("trapped recipient answered %q (a normal one %q)", trapped, normal)
	}
	e, err := f.srv.Store.Get(ctx, store.Black, "192.0.2.21")
	if err != nil || !strings.Contains(e.Reason, "bait@example.test") {
		t.Fatalf("black entry after the trap: %+v, %v", e, err)
	}
	if got := p.ask(req("192.0.2.21", "spam@bot.example", "kim@example.test")); !strings.HasPrefix(got, "DEFER ") {
		t.Errorf("trapped client's next request: %q", got)
	}
	// Outside traps.domains is a trap too; postmaster and abuse never are.
	p.ask(req("192.0.2.30", "a@b.example", "postmaster@example.test"))
	p.ask(req("192.0.2.31", "a@b.example", "abuse@foreign.example"))
	p.ask(req("192.0.2.32", "a@b.example", "x@foreign.example"))
	p.ask(req("192.0.2.99", "a@b.example", "bait@example.test"))
	for ip, black := range map[string]bool{"192.0.2.30": false, "192.0.2.31": false, "192.0.2.32": true, "192.0.2.99": false} {
		if _, err := f.srv.Store.Get(ctx, store.Black, ip); (err == nil) != black {
			t.Errorf("%s black: %v, want %v", ip, err == nil, black)
		}
	}
}

// blockingStore holds every Match until release is closed, announcing
// each on entered.
type blockingStore struct {
	store.Store
	entered chan struct{}
	release chan struct{}
}

func (b *blockingStore) Match(ctx context.Context, k store.Kind, addr netip.Addr) (store.Entry, error) {
	b.entered <- struct{}{}
	<-b.release
	return b.Store.Match(ctx, k, addr)
}

// On shutdown an idle connection is closed at once, and a request being
// decided is still answered — with a decision, not a store failure —
// before its connection closes.
func TestShutdownAnswersInFlight(t *testing.T) {
	db, err := store.OpenBolt(filepath.Join(t.TempDir(), "g.db"), store.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ls, _ := lists.NewSet(nil, nil)
	bs := &blockingStore{Store: db, entered: make(chan struct{}, 4), release: make(chan struct{})}
	s := &Server{
		Config:     Config{GreylistAction: "DEFER_IF_PERMIT", GreylistText: "Greylisted", BlackAction: "DEFER", IdleTimeout: time.Minute},
		Log:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		Classifier: &classify.Classifier{Lists: ls, Store: bs},
		Store:      db,
		Greylist: &greylist.Greylister{Store: db, PrefixV4: 24, PrefixV6: 64,
			Params: store.GreyParams{PassDelay: time.Minute, RetryWindow: time.Hour, PassedTTL: time.Hour}},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()

	idle, busy := dial(t, ln.Addr().String()), dial(t, ln.Addr().String())
	if _, err := io.WriteString(busy.c, req("192.0.2.1", "a@example.org", "b@example.test")); err != nil {
		t.Fatal(err)
	}
	<-bs.entered // busy's request is being decided (white lookup)
	cancel()
	if _, err := idle.br.ReadByte(); err != io.EOF {
		t.Errorf("idle connection after shutdown: %v, want EOF", err)
	}
	close(bs.release)
	if a := busy.read(); !strings.HasPrefix(a, "DEFER_IF_PERMIT 4.2.0 Greylisted") {
		t.Errorf("in-flight request answered %q, want the greylist deferral", a)
	}
	if _, err := busy.br.ReadByte(); err != io.EOF {
		t.Errorf("busy connection after its answer: %v, want EOF", err)
	}
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
}
