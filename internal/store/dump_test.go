package store

import (
	"bytes"
	"context"
	"errors"
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
	if len(lines) != 5 {
		t.Fatalf("dump has %d lines, want 5:\n%s", len(lines), dump.String())
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
			if n != 2 {
				t.Fatalf("n = %d, want 2", n)
			}
			if _, err := s.Get(ctx, White, "192.0.2.1"); err != nil {
				t.Errorf("line before the bad one not kept: %v", err)
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
	if n != 1 {
		t.Fatalf("n = %d, want 1", n)
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
