package store

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func TestDumpLoadRoundTrip(t *testing.T) { forBackends(t, testDumpLoadRoundTrip) }

func testDumpLoadRoundTrip(t *testing.T, openTest opener) {
	ctx := context.Background()
	src, _ := openTest(t)
	t0 := now()
	if _, _, err := src.Greylist(ctx, "192.0.2.0/24|a@example.org|b@example.net", "192.0.2.1", t0, testParams); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Refresh(ctx, "2001:db8::1", "delivered", "greylist", t0, time.Hour); err != nil {
		t.Fatal(err)
	}
	for _, e := range []Entry{
		{Kind: White, Key: "10.0.0.0/8", Reason: "office <lan> & \"vpn\"", Source: "db", Created: t0, Updated: t0},
		{Kind: Black, Key: "198.51.100.0/24", Reason: "spam", Created: t0, Updated: t0, Expires: t0.Add(time.Hour), Count: 7},
		{Kind: Trap, Key: "trap@example.org", Created: t0, Updated: t0},
		{Kind: Black, Key: "203.0.113.1", Expires: t0.Add(-time.Minute)}, // expired: not dumped
	} {
		mustPut(t, src, e)
	}

	var dump bytes.Buffer
	if err := Dump(ctx, src, &dump); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(dump.String(), "\n"), "\n")
	if len(lines) != 6 || lines[0] != `{"type":"greypit-dump","version":2}` {
		t.Fatalf("dump has %d lines, want a header and 5 entries:\n%s", len(lines), dump.String())
	}
	if strings.Contains(dump.String(), "203.0.113.1") {
		t.Errorf("expired entry dumped:\n%s", dump.String())
	}

	dst, _ := openTest(t)
	n, err := Load(ctx, dst, bytes.NewReader(dump.Bytes()))
	if err != nil || n != 5 {
		t.Fatalf("Load = %d, %v; want 5", n, err)
	}
	a, b := listAll(t, src, ""), listAll(t, dst, "")
	if len(a) != len(b) {
		t.Fatalf("source has %d entries, copy %d", len(a), len(b))
	}
	for i := range a {
		if !sameEntry(a[i], b[i]) {
			t.Errorf("entry %d differs:\nsrc %+v\ndst %+v", i, a[i], b[i])
		}
	}
	var again bytes.Buffer
	if err := Dump(ctx, dst, &again); err != nil {
		t.Fatal(err)
	}
	if again.String() != dump.String() {
		t.Errorf("second dump differs:\n%s\nvs\n%s", again.String(), dump.String())
	}
}

func TestLoadCanonicalises(t *testing.T) { forBackends(t, testLoadCanonicalises) }

func testLoadCanonicalises(t *testing.T, openTest opener) {
	ctx := context.Background()
	s, _ := openTest(t)
	before := time.Now().Add(-time.Second)
	input := "\uFEFF" + `{"type":"white","key":"10.1.2.3/8"}
{"type":"white","key":"::ffff:192.0.2.0/120","reason":"mapped"}
{"type":"black","key":" 192.0.2.9/32 "}

   
{"type":"spamtrap","key":"Trap@Example.ORG"}
{"type":"grey","key":"Some|Tuple"}
`
	n, err := Load(ctx, s, strings.NewReader(input))
	if err != nil || n != 5 {
		t.Fatalf("Load = %d, %v; want 5", n, err)
	}
	for _, c := range []struct {
		k   Kind
		key string
	}{{White, "10.0.0.0/8"}, {White, "192.0.2.0/24"}, {Black, "192.0.2.9"}, {Trap, "trap@example.org"}, {Grey, "Some|Tuple"}} {
		e, err := s.Get(ctx, c.k, c.key)
		if err != nil {
			t.Errorf("Get(%s %q): %v", c.k, c.key, err)
			continue
		}
		if e.Created.Before(before) || !e.Updated.Equal(e.Created) {
			t.Errorf("%s %q: created %v updated %v, want both set to the load time", c.k, c.key, e.Created, e.Updated)
		}
	}
}

func TestLoadRejectsBadLine(t *testing.T) { forBackends(t, testLoadRejectsBadLine) }

func testLoadRejectsBadLine(t *testing.T, openTest opener) {
	ctx := context.Background()
	good := `{"type":"white","key":"192.0.2.1"}`
	cases := []struct {
		name string
		bad  string
		want string // in the error
	}{
		{"unknown type", `{"type":"purple","key":"192.0.2.2"}`, "purple"},
		{"missing type", `{"key":"192.0.2.2"}`, "unknown entry type"},
		{"empty key", `{"type":"white","key":""}`, "empty key"},
		{"bad address", `{"type":"black","key":"example.org"}`, "neither an IP address"},
		{"short mapped prefix", `{"type":"black","key":"::ffff:0:0/90"}`, "shorter than /96"},
		{"trap without at", `{"type":"spamtrap","key":"nobody"}`, "no '@'"},
		{"not json", `type=white key=192.0.2.2`, "bad JSON"},
		{"truncated", `{"type":"white","key":"192.0.2.2"`, "bad JSON"},
		{"misspelt field", `{"type":"white","key":"192.0.2.2","expire":"2030-01-01T00:00:00Z"}`, "expire"},
		{"two values", `{"type":"white","key":"192.0.2.2"} {"type":"white","key":"192.0.2.3"}`, "more than one"},
		{"bad time", `{"type":"white","key":"192.0.2.2","expires":"tomorrow"}`, "bad JSON"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, _ := openTest(t)
			input := good + "\n\n" + `{"type":"grey","key":"t"}` + "\n" + c.bad + "\n" + `{"type":"white","key":"192.0.2.200"}` + "\n"
			n, err := Load(ctx, s, strings.NewReader(input))
			if err == nil {
				t.Fatalf("Load succeeded (n=%d)", n)
			}
			if !strings.Contains(err.Error(), "line 4") || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %q, want line 4 and %q", err, c.want)
			}
			if n != 0 {
				t.Fatalf("n = %d, want 0: nothing of a bad file is loaded", n)
			}
			if _, err := s.Get(ctx, White, "192.0.2.1"); !errors.Is(err, ErrNotFound) {
				t.Errorf("line before the bad one loaded: %v", err)
			}
			if _, err := s.Get(ctx, White, "192.0.2.200"); !errors.Is(err, ErrNotFound) {
				t.Errorf("line after the bad one loaded: %v", err)
			}
		})
	}
}

func TestLoadLineLength(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	// Just under the limit is fine.
	long := `{"type":"white","key":"192.0.2.1","reason":"` + strings.Repeat("x", MaxLineLen-100) + `"}`
	if n, err := Load(ctx, s, strings.NewReader(long+"\n")); err != nil || n != 1 {
		t.Fatalf("Load of a %d-byte line = %d, %v", len(long), n, err)
	}
	tooLong := `{"type":"white","key":"192.0.2.2","reason":"` + strings.Repeat("x", MaxLineLen) + `"}`
	n, err := Load(ctx, s, strings.NewReader(`{"type":"white","key":"192.0.2.3"}`+"\n"+tooLong+"\n"))
	if err == nil || !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), "longer than") {
		t.Fatalf("Load of an over-long line = %d, %v; want a line 2 length error", n, err)
	}
	if n != 0 {
		t.Fatalf("n = %d, want 0", n)
	}
	if _, err := s.Get(ctx, White, "192.0.2.3"); !errors.Is(err, ErrNotFound) {
		t.Errorf("line before the over-long one loaded: %v", err)
	}
}

type failWriter struct{ after int }

func (w *failWriter) Write(p []byte) (int, error) {
	if w.after -= len(p); w.after < 0 {
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

func TestDumpWriteError(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	for i := range 300 {
		mustPut(t, s, Entry{Kind: Grey, Key: strings.Repeat("k", 50) + string(rune('a'+i%26)) + strings.Repeat("z", i)})
	}
	if err := Dump(ctx, s, &failWriter{after: 1000}); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Dump to failing writer err = %v", err)
	}
	if err := Dump(ctx, s, &failWriter{after: 0}); err == nil {
		t.Fatal("Dump to a writer that fails at once succeeded")
	}
}

func TestNormalize(t *testing.T) {
	for _, c := range []struct {
		in   Entry
		want string
		ok   bool
	}{
		{Entry{Kind: White, Key: "192.0.2.1"}, "192.0.2.1", true},
		{Entry{Kind: White, Key: "2001:DB8::1"}, "2001:db8::1", true},
		{Entry{Kind: White, Key: "2001:db8::1/128"}, "2001:db8::1", true},
		{Entry{Kind: Black, Key: "2001:db8::1/32"}, "2001:db8::/32", true},
		{Entry{Kind: White, Key: "fe80::1%eth0"}, "", false},
		{Entry{Kind: Trap, Key: " A@B.c "}, "a@b.c", true},
		{Entry{Kind: Grey, Key: "K"}, "K", true},
		{Entry{Kind: "", Key: "K"}, "", false},
	} {
		got, err := Normalize(c.in)
		if (err == nil) != c.ok || (c.ok && got.Key != c.want) {
			t.Errorf("Normalize(%+v) = %q, %v; want %q ok=%v", c.in, got.Key, err, c.want, c.ok)
		}
	}
}

// fillAll puts one or more of every kind of record a dump carries into s.
func fillAll(t *testing.T, s Store) {
	t.Helper()
	ctx := context.Background()
	t0 := now().Add(-time.Hour)
	if _, _, err := s.Greylist(ctx, "192.0.2.0/24 a@example.org b@example.net", "192.0.2.1", t0, testParams); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Refresh(ctx, "2001:db8::1", "delivered", "greylist", t0, time.Hour*2); err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, Entry{Kind: Black, Key: "198.51.100.0/24", Reason: "spam <x> & y", Created: t0, Updated: t0, Expires: t0.Add(48 * time.Hour), Count: 7})
	mustPut(t, s, Entry{Kind: Trap, Key: "trap@example.org", Created: t0, Updated: t0})
	for i, net := range []string{"192.0.2.0/24", "198.51.100.0/24"} {
		if _, err := s.AddCandidateEvidence(ctx, "gone@example.org", net, Evidence{Time: t0.Add(time.Duration(i) * time.Minute), Client: "192.0.2.9", Source: "maillog", Note: "maillog:12"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.DecideCandidate(ctx, "never@example.org", CandidateRejected, "cli", t0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CountPass(ctx, "192.0.2.1", t0, time.Minute, 30*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CountPass(ctx, "192.0.2.1", t0.Add(time.Hour), time.Minute, 30*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	hv := Harvest{Address: "x1y2@traps.example.org", Visitor: "203.0.113.5", UserAgent: "harvester/1.0", Time: t0, Expires: t0.Add(90 * 24 * time.Hour)}
	if err := s.PutHarvest(ctx, hv); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		h := TrapHit{Time: t0.Add(time.Duration(i) * time.Second), Client: "192.0.2.77", Helo: "bot", From: "a@b.example", Field: "rcpt",
			Address: hv.Address, Rule: "traps.web_domain", Harvest: &hv, Expires: t0.Add(7 * 24 * time.Hour)}
		if _, err := s.AddTrapHit(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	evs := []Event{
		{Time: t0, Client: "192.0.2.1", Path: "grey", Outcome: "greylisted"},
		{Time: t0.Add(time.Microsecond), Client: "192.0.2.2", Path: "black", Outcome: "tarpitted", Tarpit: 12.5, Trap: true},
		{Time: t0.Add(time.Microsecond), Client: "192.0.2.1", Path: "grey", Outcome: "b"}, // a tie, out of order
		{Time: t0.Add(time.Second), Client: "192.0.2.3", Path: "white", Outcome: "spliced"},
		{Time: t0.Add(time.Second), Client: "192.0.2.3", Path: "white", Outcome: "spliced"}, // an exact duplicate
	}
	if err := s.AddEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
}

func dumpString(t *testing.T, s Store) string {
	t.Helper()
	var b bytes.Buffer
	if err := Dump(context.Background(), s, &b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func mustLoad(t *testing.T, s Store, dump string) int {
	t.Helper()
	n, err := Load(context.Background(), s, strings.NewReader(dump))
	if err != nil {
		t.Fatalf("Load: %v (after %d records)", err, n)
	}
	return n
}

// TestDumpEverything: a dump carries every kind of record, loads into an
// empty store as the same state (the dump of the copy is byte-identical),
// and loading it again changes nothing.
func TestDumpEverything(t *testing.T) { forBackends(t, testDumpEverything) }

func testDumpEverything(t *testing.T, openTest opener) {
	src, _ := openTest(t)
	fillAll(t, src)
	dump := dumpString(t, src)
	for _, typ := range []string{"greypit-dump", "white", "grey", "black", "spamtrap", "candidate", "awl", "harvest", "traphit", "event"} {
		if !strings.Contains(dump, `{"type":"`+typ+`"`) {
			t.Errorf("no %s line in the dump:\n%s", typ, dump)
		}
	}
	if got := strings.Count(dump, "\n"); got != 1+4+2+1+1+2+5 {
		t.Errorf("dump has %d lines, want 16:\n%s", got, dump)
	}
	dst, _ := openTest(t)
	if n := mustLoad(t, dst, dump); n != 15 {
		t.Errorf("Load stored %d records, want 15", n)
	}
	if again := dumpString(t, dst); again != dump {
		t.Fatalf("dump of the copy differs:\n%s\nwant\n%s", again, dump)
	}
	mustLoad(t, dst, dump)
	if again := dumpString(t, dst); again != dump {
		t.Fatalf("after a second Load the dump differs (not idempotent):\n%s\nwant\n%s", again, dump)
	}
	// Loading into the store the dump came from changes nothing either.
	mustLoad(t, src, dump)
	if again := dumpString(t, src); again != dump {
		t.Fatalf("loading a store's own dump changed it:\n%s\nwant\n%s", again, dump)
	}
	// What was restored still works: the trap hit count and the awl
	// counter go on from the loaded state.
	ctx := context.Background()
	prior, err := dst.AddTrapHit(ctx, TrapHit{Time: now(), Client: "192.0.2.77", From: "x@y", Field: "from", Address: "trap@example.org", Rule: "db"})
	if err != nil || prior != 2 {
		t.Errorf("AddTrapHit after load: prior %d, %v; want 2", prior, err)
	}
	if n, err := dst.CountPass(ctx, "192.0.2.1", now().Add(time.Hour), time.Minute, 30*24*time.Hour); err != nil || n != 3 {
		t.Errorf("CountPass after load = %d, %v; want 3", n, err)
	}
	if c, err := dst.GetCandidate(ctx, "gone@example.org"); err != nil || c.Count != 2 || len(c.Networks) != 2 {
		t.Errorf("candidate after load: %+v, %v", c, err)
	}
	if h, err := dst.GetHarvest(ctx, "x1y2@traps.example.org"); err != nil || h.Visitor != "203.0.113.5" {
		t.Errorf("harvest after load: %+v, %v", h, err)
	}
}

// TestDumpAcrossBackends: bolt → dump → Redis → dump → bolt keeps the
// state exactly: all three dumps are byte-identical.
func TestDumpAcrossBackends(t *testing.T) {
	b1, _ := openTest(t)
	fillAll(t, b1)
	d1 := dumpString(t, b1)
	r, _ := openRedisTest(t)
	mustLoad(t, r, d1)
	d2 := dumpString(t, r)
	if d2 != d1 {
		t.Fatalf("Redis dump differs from the bolt dump it was loaded from:\n%s\nwant\n%s", d2, d1)
	}
	b2, _ := openTest(t)
	mustLoad(t, b2, d2)
	if d3 := dumpString(t, b2); d3 != d1 {
		t.Fatalf("bolt dump after the Redis round trip differs:\n%s\nwant\n%s", d3, d1)
	}
	// And the other way: a Redis store's own state through bolt.
	r2, _ := openRedisTest(t)
	fillAll(t, r2)
	d4 := dumpString(t, r2)
	b3, _ := openTest(t)
	mustLoad(t, b3, d4)
	if d5 := dumpString(t, b3); d5 != d4 {
		t.Fatalf("bolt copy of a Redis dump differs:\n%s\nwant\n%s", d5, d4)
	}
}

// TestLoadVersion1: a dump written by greypit before the format had a
// header (testdata/dump-v1.jsonl, entries only) still loads, to the same
// entries.
func TestLoadVersion1(t *testing.T) { forBackends(t, testLoadVersion1) }

func testLoadVersion1(t *testing.T, openTest opener) {
	v1, err := os.ReadFile("testdata/dump-v1.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	s, _ := openTest(t)
	if n := mustLoad(t, s, string(v1)); n != 7 {
		t.Fatalf("Load of the v1 dump stored %d, want 7", n)
	}
	want := `{"type":"greypit-dump","version":2}` + "\n" + string(v1)
	if got := dumpString(t, s); got != want {
		t.Fatalf("dump after loading v1:\n%s\nwant\n%s", got, want)
	}
}

func TestLoadHeader(t *testing.T) {
	s, _ := openTest(t)
	entry := `{"type":"white","key":"192.0.2.1"}`
	for _, c := range []struct{ in, want string }{
		{`{"type":"greypit-dump","version":3}` + "\n" + entry, "line 1: dump format version 3 is not supported"},
		{`{"type":"greypit-dump","version":0}`, "version 0"},
		{`{"type":"greypit-dump","version":2,"x":1}`, "unknown field"},
		{entry + "\n" + `{"type":"greypit-dump","version":2}`, "line 2: the dump header must be the first line"},
	} {
		n, err := Load(context.Background(), s, strings.NewReader(c.in))
		if err == nil || !strings.Contains(err.Error(), c.want) || n != 0 {
			t.Errorf("Load(%q) = %d, %v; want an error with %q", c.in, n, err, c.want)
		}
	}
	if len(listAll(t, s, "")) != 0 {
		t.Error("a refused file left entries behind")
	}
	if n, err := Load(context.Background(), s, strings.NewReader("\n"+`{"type":"greypit-dump","version":1}`+"\n"+entry+"\n")); err != nil || n != 1 {
		t.Errorf("header after a blank line: %d, %v", n, err)
	}
}

func TestLoadRejectsBadRecord(t *testing.T) {
	ts := `"time":"2026-01-01T00:00:00Z"`
	for _, c := range []struct{ line, want string }{
		{`{"type":"candidate","address":"nobody","state":"pending"}`, "not a mail address"},
		{`{"type":"candidate","address":"a@b.example","state":"maybe"}`, "unknown state"},
		{`{"type":"candidate","address":"a@b.example","state":"pending","colour":1}`, "unknown field"},
		{`{"type":"awl","key":"example.org","count":1,"last":"2026-01-01T00:00:00Z","expires":"2099-01-01T00:00:00Z"}`, "neither an IP"},
		{`{"type":"awl","key":"192.0.2.1","count":0,"last":"2026-01-01T00:00:00Z","expires":"2099-01-01T00:00:00Z"}`, "count >= 1"},
		{`{"type":"harvest","address":"a@b.example","visitor":"somebody",` + ts + `}`, "visitor"},
		{`{"type":"harvest","address":"a@b.example","visitor":"192.0.2.1"}`, "no time"},
		{`{"type":"traphit","client":"192.0.2.1","field":"to","address":"a@b.example",` + ts + `}`, "field"},
		{`{"type":"traphit","client":"bot","field":"rcpt","address":"a@b.example",` + ts + `}`, "client"},
		{`{"type":"traphit","client":"192.0.2.1","field":"rcpt","address":"a@b.example",` + ts + `,"harvest":{"address":"x"}}`, "harvest"},
		{`{"type":"event","c":"192.0.2.1"}`, "without a time"},
		{`{"type":"event","t":"2026-01-01T00:00:00Z","x":1}`, "unknown field"},
		{`{"type":5}`, "bad JSON"},
	} {
		s, _ := openTest(t)
		in := `{"type":"greypit-dump","version":2}` + "\n" + `{"type":"white","key":"192.0.2.1"}` + "\n" + c.line + "\n"
		n, err := Load(context.Background(), s, strings.NewReader(in))
		if err == nil || !strings.Contains(err.Error(), "line 3") || !strings.Contains(err.Error(), c.want) || n != 0 {
			t.Errorf("Load of %s = %d, %v; want a line 3 error with %q", c.line, n, err, c.want)
		}
		if len(listAll(t, s, "")) != 0 {
			t.Errorf("%s: entries before the bad line were loaded", c.line)
		}
	}
}
