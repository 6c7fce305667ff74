package lists

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func writeFile(t *testing.T, dir, name, data string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const sample = "\uFEFF# allow list\n" +
	"\n" +
	"192.0.2.0/24\n" +
	"  192.0.2.128/25   # more specific\n" +
	"\t198.51.100.7\t\r\n" +
	"2001:db8::/32 # documentation\n" +
	"2001:db8:1::1\n" +
	"::ffff:203.0.113.9\n" +
	"::ffff:203.0.113.0/120\n" +
	"10.1.2.3/8\n" +
	"   # indented comment\n" +
	"192.0.2.0/24 # duplicate, first one kept\n"

func TestLoadAndLookup(t *testing.T) {
	p := writeFile(t, t.TempDir(), "allow", sample)
	l, err := LoadFiles("allow", []string{p})
	if err != nil {
		t.Fatal(err)
	}
	if l.Name() != "allow" || l.Len() != 8 {
		t.Errorf("Name %q Len %d, want allow 8", l.Name(), l.Len())
	}
	for _, tc := range []struct {
		addr string
		line int
		text string
	}{
		{"192.0.2.1", 3, "192.0.2.0/24"},
		{"192.0.2.200", 4, "192.0.2.128/25"},
		{"::ffff:192.0.2.1", 3, "192.0.2.0/24"}, // mapped client, IPv4 entry
		{"198.51.100.7", 5, "198.51.100.7"},
		{"198.51.100.8", 0, ""},
		{"2001:db8:ffff::1", 6, "2001:db8::/32"},
		{"2001:db8:1::1", 7, "2001:db8:1::1"},
		{"2001:db8:1::2", 6, "2001:db8::/32"},
		{"2001:db9::1", 0, ""},
		{"203.0.113.9", 8, "::ffff:203.0.113.9"},      // mapped entry, IPv4 client
		{"203.0.113.10", 9, "::ffff:203.0.113.0/120"}, // mapped prefix is /24
		{"10.200.0.1", 10, "10.1.2.3/8"},              // host bits masked
		{"fe80::1%eth0", 0, ""},
		{"203.0.113.9", 8, "::ffff:203.0.113.9"},
	} {
		a := netip.MustParseAddr(tc.addr)
		src, ok := l.Lookup(a)
		if ok != (tc.line != 0) || src.Line != tc.line || src.Text != tc.text {
			t.Errorf("Lookup(%s) = %+v, %v; want line %d %q", tc.addr, src, ok, tc.line, tc.text)
		}
		if ok && src.File != p {
			t.Errorf("Lookup(%s).File = %q", tc.addr, src.File)
		}
	}
	if _, ok := l.Lookup(netip.Addr{}); ok {
		t.Error("zero address matched")
	}

	var got []string
	for pfx := range l.All() {
		got = append(got, pfx.String())
	}
	want := "10.0.0.0/8 192.0.2.0/24 192.0.2.128/25 198.51.100.7/32 203.0.113.0/24 203.0.113.9/32 2001:db8::/32 2001:db8:1::1/128"
	if strings.Join(got, " ") != want {
		t.Errorf("All() = %v", got)
	}
}

func TestNilList(t *testing.T) {
	var l *List
	if _, ok := l.Lookup(netip.MustParseAddr("192.0.2.1")); ok || l.Len() != 0 {
		t.Error("nil list matched")
	}
	for range l.All() {
		t.Error("nil list yielded")
	}
}

func TestMultipleFilesAndEmpty(t *testing.T) {
	dir := t.TempDir()
	a := writeFile(t, dir, "a", "192.0.2.0/24\n")
	b := writeFile(t, dir, "b", "# nothing but comments\n\n192.0.2.0/24\n2001:db8::1\n")
	l, err := LoadFiles("block", []string{a, b})
	if err != nil {
		t.Fatal(err)
	}
	if l.Len() != 2 {
		t.Errorf("Len = %d, want 2", l.Len())
	}
	if src, _ := l.Lookup(netip.MustParseAddr("192.0.2.9")); src.File != a {
		t.Errorf("duplicate across files: got %+v, want the first file", src)
	}
	if src, _ := l.Lookup(netip.MustParseAddr("2001:db8::1")); src.File != b || src.Line != 4 {
		t.Errorf("got %+v", src)
	}
	empty, err := LoadFiles("allow", nil)
	if err != nil || empty.Len() != 0 {
		t.Errorf("no files: %v, %d", err, empty.Len())
	}
}

func TestBadLine(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ line, want string }{
		{"192.0.2.256", `"192.0.2.256" is neither an IP address nor a CIDR prefix`},
		{"192.0.2.0/33", `"192.0.2.0/33" is not a CIDR prefix`},
		{"192.0.2.1 192.0.2.2", `"192.0.2.1 192.0.2.2" is neither`},
		{"example.org # a name", `"example.org" is neither`},
		{"fe80::1%eth0", `"fe80::1%eth0": zoned addresses are not allowed`},
		{"::ffff:0.0.0.0/95", `"::ffff:0.0.0.0/95": IPv4-mapped prefix shorter than /96`},
		{"192.0.2.0/", `"192.0.2.0/" is not a CIDR prefix`},
	} {
		p := writeFile(t, dir, "list", "# header\n192.0.2.1\n"+tc.line+"\n")
		_, err := LoadFiles("block", []string{p})
		if err == nil {
			t.Errorf("%q: no error", tc.line)
			continue
		}
		if want := "block list: " + p + ":3: " + tc.want; !strings.HasPrefix(err.Error(), want) {
			t.Errorf("error %q, want prefix %q", err, want)
		}
	}

	_, err := LoadFiles("allow", []string{filepath.Join(dir, "missing")})
	if err == nil || !strings.Contains(err.Error(), "allow list: open ") {
		t.Errorf("missing file: %v", err)
	}

	long := writeFile(t, dir, "long", "192.0.2.1\n"+strings.Repeat("1", 100000)+"\n")
	_, err = LoadFiles("allow", []string{long})
	if err == nil || !strings.Contains(err.Error(), long+":2: ") {
		t.Errorf("overlong line: %v", err)
	}
}

func TestSetReload(t *testing.T) {
	dir := t.TempDir()
	allow := writeFile(t, dir, "allow", "192.0.2.0/24\n")
	block := writeFile(t, dir, "block", "198.51.100.0/24\n")
	s, err := NewSet([]string{allow}, []string{block})
	if err != nil {
		t.Fatal(err)
	}
	a1, b1 := s.Lists()
	if a1 != s.Allow() || b1 != s.Block() || a1.Name() != "allow" || b1.Name() != "block" {
		t.Fatal("Lists() disagrees with Allow()/Block()")
	}
	if _, ok := s.Allow().Lookup(netip.MustParseAddr("192.0.2.1")); !ok {
		t.Error("allow lookup failed")
	}
	if _, ok := s.Block().Lookup(netip.MustParseAddr("198.51.100.1")); !ok {
		t.Error("block lookup failed")
	}

	// A good allow file but a broken block file: both old lists stay.
	writeFile(t, dir, "allow", "203.0.113.0/24\n")
	writeFile(t, dir, "block", "198.51.100.0/24\nnot-an-address\n")
	err = s.Reload()
	if err == nil || !strings.Contains(err.Error(), block+":2: ") {
		t.Fatalf("Reload error %v, want one naming %s:2", err, block)
	}
	if s.Allow() != a1 || s.Block() != b1 {
		t.Error("broken reload replaced the lists")
	}

	// Fixed: both are replaced.
	writeFile(t, dir, "block", "2001:db8::/32\n")
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Allow().Lookup(netip.MustParseAddr("203.0.113.1")); !ok {
		t.Error("new allow list not in use")
	}
	if _, ok := s.Allow().Lookup(netip.MustParseAddr("192.0.2.1")); ok {
		t.Error("old allow list still in use")
	}
	if _, ok := s.Block().Lookup(netip.MustParseAddr("2001:db8::1")); !ok {
		t.Error("new block list not in use")
	}
	// The old lists are unchanged for anyone still holding them.
	if _, ok := a1.Lookup(netip.MustParseAddr("192.0.2.1")); !ok {
		t.Error("old list mutated")
	}

	// A file that disappears also keeps the current lists.
	cur := s.Allow()
	os.Remove(allow)
	if err := s.Reload(); err == nil || s.Allow() != cur {
		t.Errorf("reload with a missing file: %v", err)
	}
}

func TestNewSetError(t *testing.T) {
	p := writeFile(t, t.TempDir(), "allow", "300.0.0.1\n")
	if _, err := NewSet([]string{p}, nil); err == nil || !strings.Contains(err.Error(), p+":1: ") {
		t.Errorf("NewSet error %v", err)
	}
}

func TestSetConcurrent(t *testing.T) {
	dir := t.TempDir()
	allow := writeFile(t, dir, "allow", "192.0.2.0/24\n")
	s, err := NewSet([]string{allow}, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddr("192.0.2.1")
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 1000 {
				if _, ok := s.Allow().Lookup(a); !ok {
					t.Error("lookup failed during reload")
					return
				}
			}
		})
	}
	for range 20 {
		if err := s.Reload(); err != nil {
			t.Error(err)
		}
	}
	wg.Wait()
}
