package control

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/greypit/greypit/internal/classify"
	"github.com/greypit/greypit/internal/greylist"
	"github.com/greypit/greypit/internal/lists"
	"github.com/greypit/greypit/internal/store"
)

// These tests must not run in parallel: Listen changes the process umask
// for a moment.

type daemon struct {
	path  string
	local *Local
	store *store.Bolt
	now   time.Time
	done  chan error
}

// sockDir returns a short directory for sockets: a Unix socket path is
// limited to about 108 bytes, and t.TempDir can be long.
func sockDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "gpctl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func newLocal(t *testing.T) (*Local, *store.Bolt, time.Time) {
	t.Helper()
	dir := t.TempDir()
	st, err := store.OpenBolt(filepath.Join(dir, "greypit.db"), store.BoltOptions{})
	if err != nil {
		t.Fatalf("OpenBolt: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	allow := filepath.Join(dir, "allow")
	if err := os.WriteFile(allow, []byte("203.0.113.0/24\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	set, err := lists.NewSet([]string{allow}, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Truncate(time.Second)
	l := &Local{
		Store:      st,
		Classifier: &classify.Classifier{Lists: set, Store: st},
		WhiteTTL:   24 * time.Hour,
		BlackTTL:   time.Hour,
		PrefixV4:   24,
		PrefixV6:   64,
		Now:        func() time.Time { return now },
	}
	return l, st, now
}

// serve starts a daemon's control socket at path.
func serve(t *testing.T, path string) *daemon {
	t.Helper()
	l, st, now := newLocal(t)
	ln, err := Listen(path)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &daemon{path: path, local: l, store: st, now: now, done: make(chan error, 1)}
	go func() { d.done <- Serve(ctx, ln, l, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-d.done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not stop")
		}
	})
	return d
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func list(t *testing.T, ops Ops, k store.Kind) []store.Entry {
	t.Helper()
	var out []store.Entry
	if err := ops.List(ctx(t), k, func(e store.Entry) error {
		out = append(out, e)
		return nil
	}); err != nil {
		t.Fatalf("List(%q): %v", k, err)
	}
	return out
}

func keys(es []store.Entry) []string {
	var ks []string
	for _, e := range es {
		ks = append(ks, e.Key)
	}
	return ks
}

func TestListenModeAndUmask(t *testing.T) {
	path := filepath.Join(sockDir(t), "ctl.sock")
	before := syscall.Umask(0o022)
	syscall.Umask(before)
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	after := syscall.Umask(before)
	if after != before {
		t.Errorf("umask after Listen = %o, want %o restored", after, before)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode = %v, want a 0600 socket", fi.Mode())
	}
}

func TestRoundTrip(t *testing.T) {
	d := serve(t, filepath.Join(sockDir(t), "ctl.sock"))
	c, err := Dial(d.path)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	var ops Ops = c

	n, err := ops.Add(ctx(t), AddRequest{Kind: store.White, Values: []string{"192.0.2.1", " 198.51.100.0/24 ", "::ffff:192.0.2.2"}, Reason: "partner"})
	if err != nil || n != 3 {
		t.Fatalf("Add white = %d, %v", n, err)
	}
	if n, err = ops.Add(ctx(t), AddRequest{Kind: store.Black, Values: []string{"2001:db8::/32"}, TTL: 2 * time.Hour, Reason: "spam <run> & co"}); err != nil || n != 1 {
		t.Fatalf("Add black = %d, %v", n, err)
	}
	if n, err = ops.Add(ctx(t), AddRequest{Kind: store.Trap, Values: []string{"<Trap@Example.COM>"}}); err != nil || n != 1 {
		t.Fatalf("Add spamtrap = %d, %v", n, err)
	}

	white := list(t, ops, store.White)
	if want := []string{"192.0.2.1", "192.0.2.2", "198.51.100.0/24"}; !slices.Equal(keys(white), want) {
		t.Errorf("white keys = %q, want %q", keys(white), want)
	}
	for _, e := range white {
		if e.Source != "db" || e.Reason != "partner" || !e.Created.Equal(d.now) || !e.Expires.Equal(d.now.Add(24*time.Hour)) {
			t.Errorf("white entry %+v: want source db, reason partner, created now, default TTL", e)
		}
	}
	black := list(t, ops, store.Black)
	if len(black) != 1 || black[0].Key != "2001:db8::/32" || !black[0].Expires.Equal(d.now.Add(2*time.Hour)) || black[0].Reason != "spam <run> & co" {
		t.Errorf("black = %+v", black)
	}
	if trap := list(t, ops, store.Trap); len(trap) != 1 || trap[0].Key != "trap@example.com" || !trap[0].Expires.IsZero() {
		t.Errorf("spamtrap = %+v (zero TrapTTL means no expiry)", trap)
	}
	// What the daemon lists is what the store holds.
	if direct := list(t, d.local, ""); len(direct) != 5 {
		t.Errorf("store holds %d entries, want 5", len(direct))
	}

	// Why, for a white, a black, an allow-listed and a grey address.
	w, err := ops.Why(ctx(t), "192.0.2.1")
	if err != nil || w.Address != "192.0.2.1" || w.Decision.Path != classify.White || w.Decision.Entry == nil || w.Decision.Entry.Reason != "partner" {
		t.Errorf("Why(192.0.2.1) = %+v, %v", w, err)
	}
	w, err = ops.Why(ctx(t), "2001:db8::25")
	if err != nil || w.Decision.Path != classify.Black || w.Decision.Reason != "spam <run> & co" {
		t.Errorf("Why(2001:db8::25) = %+v, %v", w, err)
	}
	w, err = ops.Why(ctx(t), "::ffff:203.0.113.7")
	if err != nil || w.Address != "203.0.113.7" || w.Decision.Path != classify.White || w.Decision.List == nil || w.Decision.List.Line != 1 {
		t.Errorf("Why(::ffff:203.0.113.7) = %+v, %v", w, err)
	}
	// A grey address gets the tuples of its prefix, and only those.
	g := &greylist.Greylister{Store: d.store, Params: store.GreyParams{PassDelay: time.Minute, RetryWindow: time.Hour, PassedTTL: time.Hour}, PrefixV4: 24, PrefixV6: 64}
	for _, a := range []string{"192.0.3.9", "192.0.4.9"} {
		if _, err := g.Check(ctx(t), netip.MustParseAddr(a), "alice@example.com", "bob@example.net"); err != nil {
			t.Fatal(err)
		}
	}
	w, err = ops.Why(ctx(t), "192.0.3.200")
	if err != nil || w.Decision.Path != classify.Grey || len(w.Grey) != 1 || w.Grey[0].Key != "192.0.3.0/24 alice@example.com bob@example.net" {
		t.Errorf("Why(192.0.3.200) = %+v, %v", w, err)
	}

	// Del counts what existed.
	if n, err = ops.Del(ctx(t), store.White, []string{"192.0.2.1", "192.0.2.99", "::ffff:192.0.2.2"}); err != nil || n != 2 {
		t.Errorf("Del = %d, %v; want 2", n, err)
	}
	if got := keys(list(t, ops, store.White)); !slices.Equal(got, []string{"198.51.100.0/24"}) {
		t.Errorf("white after Del = %q", got)
	}

	// Dump through the daemon is byte for byte the local dump.
	var remote, local bytes.Buffer
	if err := ops.Dump(ctx(t), &remote); err != nil {
		t.Fatalf("Dump: %v", err)
	}
	if err := d.local.Dump(ctx(t), &local); err != nil {
		t.Fatal(err)
	}
	if remote.String() != local.String() {
		t.Errorf("remote dump\n%s\ndiffers from local dump\n%s", remote.String(), local.String())
	}
	if got := strings.Count(remote.String(), "\n"); got != 6 {
		t.Errorf("dump has %d lines, want a header and 5 entries", got)
	}

	// Load the dump into a fresh daemon: same contents.
	d2 := serve(t, filepath.Join(sockDir(t), "ctl.sock"))
	c2 := &Client{Path: d2.path}
	if n, err := c2.Load(ctx(t), bytes.NewReader(remote.Bytes())); err != nil || n != 5 {
		t.Fatalf("Load = %d, %v; want 5", n, err)
	}
	var again bytes.Buffer
	if err := c2.Dump(ctx(t), &again); err != nil {
		t.Fatal(err)
	}
	if again.String() != remote.String() {
		t.Errorf("dump after load\n%s\nwant\n%s", again.String(), remote.String())
	}
}

func TestLoadLarge(t *testing.T) {
	d := serve(t, filepath.Join(sockDir(t), "ctl.sock"))
	// About 500 KiB: more than the socket buffers hold, so the request
	// body and the daemon's reading of it must stream.
	var body bytes.Buffer
	const n = 500
	for i := range n {
		fmt.Fprintf(&body, `{"type":"black","key":"10.%d.%d.0/24","reason":"bulk %s"}`+"\n", i/256, i%256, strings.Repeat("x", 1000))
	}
	c := &Client{Path: d.path}
	got, err := c.Load(ctx(t), &body)
	if err != nil || got != n {
		t.Fatalf("Load = %d, %v; want %d", got, err, n)
	}
	if l := list(t, c, store.Black); len(l) != n {
		t.Errorf("listed %d black entries, want %d", len(l), n)
	}
}

func TestErrors(t *testing.T) {
	d := serve(t, filepath.Join(sockDir(t), "ctl.sock"))
	c := &Client{Path: d.path}
	tests := []struct {
		name string
		run  func() error
		want string
	}{
		{"bad type", func() error {
			_, err := c.Add(ctx(t), AddRequest{Kind: "purple", Values: []string{"192.0.2.1"}})
			return err
		}, `unknown entry type "purple"`},
		{"bad address", func() error {
			_, err := c.Add(ctx(t), AddRequest{Kind: store.White, Values: []string{"192.0.2.1", "mail.example.com"}})
			return err
		}, "neither an IP address nor a CIDR prefix"},
		{"grey by hand", func() error {
			_, err := c.Add(ctx(t), AddRequest{Kind: store.Grey, Values: []string{"x"}})
			return err
		}, "grey entries are made by greylisting"},
		{"nothing to add", func() error {
			_, err := c.Add(ctx(t), AddRequest{Kind: store.White})
			return err
		}, "nothing to add"},
		{"bad trap", func() error {
			_, err := c.Add(ctx(t), AddRequest{Kind: store.Trap, Values: []string{"nobody"}})
			return err
		}, "is not a mail address"},
		{"why not an address", func() error {
			_, err := c.Why(ctx(t), "mail.example.com")
			return err
		}, "is not an IP address"},
		{"del bad address", func() error {
			_, err := c.Del(ctx(t), store.Black, []string{"300.1.1.1"})
			return err
		}, "neither an IP address"},
		{"list bad type", func() error {
			return c.List(ctx(t), "purple", func(store.Entry) error { return nil })
		}, "purple"},
		{"load bad line", func() error {
			_, err := c.Load(ctx(t), strings.NewReader(`{"type":"white","key":"192.0.2.5"}`+"\n"+`{"type":"white","key":"nonsense"}`+"\n"))
			return err
		}, "line 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want one containing %q", err, tt.want)
			}
		})
	}
	// The failed add stored nothing, not even its valid first value; nor
	// did the failed load (all or nothing).
	if got := keys(list(t, c, store.White)); len(got) != 0 {
		t.Errorf("white after errors = %q, want none", got)
	}
}

// rawRequest sends one raw request line and returns the daemon's answer lines.
func rawRequest(t *testing.T, path, line string) []string {
	t.Helper()
	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, line)
	conn.(*net.UnixConn).CloseWrite()
	var out []string
	sc := bufio.NewScanner(conn)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestProtocolErrors(t *testing.T) {
	d := serve(t, filepath.Join(sockDir(t), "ctl.sock"))
	tests := []struct{ line, want string }{
		{`{"op":"frobnicate"}` + "\n", `unknown operation \"frobnicate\"`},
		{"this is not json\n", "bad request"},
		{`{"op":"add"}` + "\n", "add: no entries"},
		// No final newline: the request still counts.
		{`{"op":"why","addr":"192.0.2.1"}`, `"why":`},
	}
	for _, tt := range tests {
		got := rawRequest(t, d.path, tt.line)
		if len(got) == 0 || !strings.Contains(strings.Join(got, "\n"), tt.want) {
			t.Errorf("request %q: answer %q, want %q", tt.line, got, tt.want)
		}
		var fin response
		if err := json.Unmarshal([]byte(got[len(got)-1]), &fin); err != nil || (fin.Error == "") == !fin.Done {
			t.Errorf("request %q: last line %q is not a final answer", tt.line, got[len(got)-1])
		}
	}
}

func TestStaleSocketReplaced(t *testing.T) {
	path := filepath.Join(sockDir(t), "ctl.sock")
	// A daemon that died leaves its socket file behind.
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("stale socket file not left behind: %v", err)
	}
	if _, err := Dial(path); !errors.Is(err, ErrNoDaemon) {
		t.Fatalf("Dial on a stale socket = %v, want ErrNoDaemon", err)
	}
	d := serve(t, path)
	if n, err := (&Client{Path: d.path}).Add(ctx(t), AddRequest{Kind: store.White, Values: []string{"192.0.2.1"}}); err != nil || n != 1 {
		t.Errorf("Add through the new socket = %d, %v", n, err)
	}
}

func TestSecondListenFails(t *testing.T) {
	d := serve(t, filepath.Join(sockDir(t), "ctl.sock"))
	ln, err := Listen(d.path)
	if err == nil {
		ln.Close()
		t.Fatal("second Listen succeeded")
	}
	if !strings.Contains(err.Error(), "another greypit is running") {
		t.Errorf("error = %v", err)
	}
	// The running daemon's socket is untouched.
	if _, err := (&Client{Path: d.path}).Why(ctx(t), "192.0.2.1"); err != nil {
		t.Errorf("first daemon after the second Listen: %v", err)
	}
}

func TestNoDaemon(t *testing.T) {
	path := filepath.Join(sockDir(t), "none.sock")
	if _, err := Dial(path); !errors.Is(err, ErrNoDaemon) {
		t.Errorf("Dial = %v, want ErrNoDaemon", err)
	}
	c := &Client{Path: path}
	if _, err := c.Add(ctx(t), AddRequest{Kind: store.White, Values: []string{"192.0.2.1"}}); !errors.Is(err, ErrNoDaemon) {
		t.Errorf("Add = %v, want ErrNoDaemon", err)
	}
}

func TestServeStopsOnCancel(t *testing.T) {
	path := filepath.Join(sockDir(t), "ctl.sock")
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	l, _, _ := newLocal(t)
	c, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(c, ln, l, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	if _, err := (&Client{Path: path}).Why(ctx(t), "192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve = %v, want nil after cancel", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	if _, err := Dial(path); !errors.Is(err, ErrNoDaemon) {
		t.Errorf("Dial after stop = %v, want ErrNoDaemon", err)
	}
}

func TestCanonicalKey(t *testing.T) {
	tests := []struct {
		k        store.Kind
		in, want string
		bad      bool
	}{
		{store.White, "192.0.2.1", "192.0.2.1", false},
		{store.White, "::ffff:192.0.2.1", "192.0.2.1", false},
		{store.Black, "192.0.2.77/24", "192.0.2.0/24", false},
		{store.Black, "2001:DB8::/32", "2001:db8::/32", false},
		{store.White, "fe80::1%eth0", "", true},
		{store.Trap, " <Trap@Example.COM> ", "trap@example.com", false},
		{store.Trap, "@example.com", "", true},
		{store.Trap, "trap@", "", true},
		{store.Trap, "a b@example.com", "", true},
		{store.Grey, "192.0.2.0/24 a@b c@d", "192.0.2.0/24 a@b c@d", false},
		{store.Grey, "  ", "", true},
		{"purple", "x", "", true},
	}
	for _, tt := range tests {
		got, err := CanonicalKey(tt.k, tt.in)
		if tt.bad != (err != nil) || got != tt.want {
			t.Errorf("CanonicalKey(%s, %q) = %q, %v; want %q, error %v", tt.k, tt.in, got, err, tt.want, tt.bad)
		}
	}
}

// A control.socket path that names a regular file is refused, not deleted.
func TestListenRefusesRegularFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "not-a-socket")
	if err := os.WriteFile(path, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	if ln, err := Listen(path); err == nil {
		ln.Close()
		t.Fatal("Listen over a regular file succeeded")
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "keep me" {
		t.Errorf("file damaged: %q, %v", b, err)
	}
}
