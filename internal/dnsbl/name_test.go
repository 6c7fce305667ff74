package dnsbl

import (
	"net/netip"
	"testing"
)

func TestQueryName(t *testing.T) {
	for _, tc := range []struct{ addr, want string }{
		{"192.168.42.23", "23.42.168.192.bl.example."},
		{"::ffff:192.0.2.1", "1.2.0.192.bl.example."},
		{"2001:db8::1", "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.example."},
	} {
		if got := QueryName(netip.MustParseAddr(tc.addr), "bl.example."); got != tc.want {
			t.Errorf("QueryName(%s) = %s, want %s", tc.addr, got, tc.want)
		}
		a, ok, err := ParseQueryName(tc.want, "BL.example")
		if err != nil || !ok || a != netip.MustParseAddr(tc.addr).Unmap() {
			t.Errorf("ParseQueryName(%s) = %v %v %v", tc.want, a, ok, err)
		}
	}
	// The IPv6 test entry ::FFFF:7F00:2 in nibbles (RFC 5782 §5).
	if got := queryName16(netip.AddrFrom16(testListed.As16()), "bl.example"); got != "2.0.0.0.0.0.f.7.f.f.f.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.bl.example." {
		t.Errorf("IPv6 test entry name %s", got)
	}
}

func TestParseQueryNameErrors(t *testing.T) {
	for _, n := range []string{"1.2.3.bl.example", "1.2.3.4.5.bl.example", "01.2.3.4.bl.example", "a.2.3.4.bl.example",
		"256.2.3.4.bl.example", "1.2.3.4.other.example", "10.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.bl.example", ".bl.example"} {
		if a, ok, err := ParseQueryName(n, "bl.example"); err == nil {
			t.Errorf("ParseQueryName(%q) = %v %v, want an error", n, a, ok)
		}
	}
	if _, ok, err := ParseQueryName("BL.example.", "bl.example"); ok || err != nil {
		t.Errorf("apex: ok %v err %v", ok, err)
	}
}

// Whatever name a client sends, parsing never panics, and an address it
// yields gives the same name back.
func FuzzParseQueryName(f *testing.F) {
	for _, s := range []string{"2.0.0.127.bl.example.", "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.example", "bl.example", "x.bl.example", "1.2.3.4.other."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		a, ok, err := ParseQueryName(name, "bl.example")
		if err != nil || !ok {
			return
		}
		back := queryName16(a, "bl.example")
		if a.Is4() {
			back = QueryName(a, "bl.example")
		}
		a2, ok2, err2 := ParseQueryName(back, "bl.example")
		if err2 != nil || !ok2 || a2 != a {
			t.Fatalf("%q -> %v -> %q -> %v %v %v", name, a, back, a2, ok2, err2)
		}
	})
}
