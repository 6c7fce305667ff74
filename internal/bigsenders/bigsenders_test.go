package bigsenders

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/greypit/greypit/internal/dnsx"
	"github.com/greypit/greypit/internal/testenv"
)

func TestBuiltin(t *testing.T) {
	f, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	if f.Version < 1 || len(f.Provider) < 5 {
		t.Fatalf("built-in list: version %d, %d providers", f.Version, len(f.Provider))
	}
	seen := map[string]bool{}
	for _, p := range f.Provider {
		if p.Domain == "" || p.SPF == "" || p.Source == "" || p.Added == "" {
			t.Errorf("entry without provenance: %+v", p)
		}
		if seen[p.Domain] {
			t.Errorf("%s listed twice", p.Domain)
		}
		seen[p.Domain] = true
	}
	for _, d := range []string{"gmail.com", "outlook.com", "amazonses.com"} {
		if !seen[d] {
			t.Errorf("%s missing", d)
		}
	}
	ps := Providers(f, []string{"gmail.com"}, []string{"outlook.com=spf.example.test", "extra.test"})
	for _, p := range ps {
		switch p.Domain {
		case "gmail.com":
			t.Error("disabled provider kept")
		case "outlook.com":
			if p.SPF != "spf.example.test" || p.Source != "config bigsenders.add" {
				t.Errorf("override: %+v", p)
			}
		}
	}
	if last := ps[len(ps)-1]; last.Domain != "extra.test" || last.SPF != "extra.test" {
		t.Errorf("addition: %+v", last)
	}
}

func spfServer(t *testing.T) *testenv.DNSServer {
	s := testenv.StartDNS(t, "big.test")
	s.Add(t,
		`big.test. 300 IN TXT "v=spf1 redirect=_spf.big.test"`,
		`_spf.big.test. 300 IN TXT "v=spf1 include:_n1.big.test include:_n2.big.test ~all"`,
		`_spf.big.test. 300 IN TXT "google-site-verification=xyz"`,
		`_n1.big.test. 300 IN TXT "v=spf1 ip4:127.0.9.0/24 ip4:192.0.2.7 -ip4:10.0.0.0/8 a mx ~all"`,
		`_n2.big.test. 300 IN TXT "v=spf1 ip6:2001:db8:9::/48 include:_n1.big.test include:%{i}.x.big.test ?all"`,
		`loop.big.test. 300 IN TXT "v=spf1 include:loop.big.test ip4:198.51.100.0/24"`,
		`two.big.test. 300 IN TXT "v=spf1 ip4:1.2.3.4" "" `,
		`two.big.test. 300 IN TXT "v=spf1 ip4:1.2.3.5"`,
		`bad.big.test. 300 IN TXT "v=spf1 ip4:1.2.3.4/33"`,
	)
	// A chain of 11 includes: over RFC 7208's limit of 10 lookups.
	for i := range 11 {
		s.Add(t, fmt.Sprintf(`c%d.big.test. 300 IN TXT "v=spf1 include:c%d.big.test"`, i, i+1))
	}
	s.Add(t, `c11.big.test. 300 IN TXT "v=spf1 ip4:1.2.3.4"`)
	return s
}

func TestResolve(t *testing.T) {
	s := spfServer(t)
	r := dnsx.NetResolver(s.Addr)
	ctx := context.Background()
	srcs, err := Resolve(ctx, r, Provider{Domain: "big.test", SPF: "big.test"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range srcs {
		got = append(got, s.Prefix.String()+"@"+s.Record)
	}
	want := "127.0.9.0/24@_n1.big.test 192.0.2.7/32@_n1.big.test 2001:db8:9::/48@_n2.big.test"
	if strings.Join(got, " ") != want {
		t.Errorf("resolved %v, want %s", got, want)
	}
	for _, tc := range []struct{ spf, err string }{
		{"loop.big.test", ""},
		{"two.big.test", "2 SPF records"},
		{"bad.big.test", "bad prefix length"},
		{"c0.big.test", "more than 10 DNS lookups"},
		{"none.big.test", "no such name"},
		{"example.com", "example.com"},
	} {
		_, err := Resolve(ctx, r, Provider{Domain: tc.spf, SPF: tc.spf})
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("Resolve(%s) error %v, want %q", tc.spf, err, tc.err)
		}
	}
	if _, err := Resolve(ctx, r, Provider{Domain: "c0", SPF: "c0.big.test"}); !errors.Is(err, ErrLookupLimit) {
		t.Errorf("lookup limit: %v", err)
	}
	if _, err := Resolve(ctx, r, Provider{Domain: "c1", SPF: "c1.big.test"}); err != nil {
		t.Errorf("10 lookups are allowed: %v", err)
	}
}

// A refresh that fails keeps the provider's previous networks.
func TestSetRefresh(t *testing.T) {
	s := spfServer(t)
	r := dnsx.NetResolver(s.Addr)
	var set Set
	if _, ok := set.Lookup(netip.MustParseAddr("127.0.9.5")); ok {
		t.Fatal("empty set has an entry")
	}
	ps := []Provider{{Domain: "big.test", SPF: "big.test", Source: "test"}, {Domain: "gone.test", SPF: "gone.big.test"}}
	res := set.Refresh(context.Background(), r, ps, 5*time.Second)
	if res[0].Err != "" || len(res[0].Prefixes) != 3 || res[1].Err == "" {
		t.Fatalf("refresh: %+v", res)
	}
	src, ok := set.Lookup(netip.MustParseAddr("::ffff:127.0.9.5"))
	if !ok || src.Provider.Domain != "big.test" || src.Prefix.String() != "127.0.9.0/24" {
		t.Errorf("lookup 127.0.9.5: %+v %v", src, ok)
	}
	if _, ok := set.Lookup(netip.MustParseAddr("127.0.10.5")); ok {
		t.Error("127.0.10.5 is listed")
	}
	s.Remove("big.test", "TXT")
	res = set.Refresh(context.Background(), r, ps, 5*time.Second)
	if res[0].Err == "" || len(res[0].Prefixes) != 3 {
		t.Errorf("failed refresh: %+v", res[0])
	}
	if _, ok := set.Lookup(netip.MustParseAddr("2001:db8:9::1")); !ok {
		t.Error("networks lost when a refresh failed")
	}
	if rep := set.Report(ps); len(rep) != 2 || rep[0].Provider.Source != "test" {
		t.Errorf("report %+v", rep)
	}
	var nilSet *Set
	if _, ok := nilSet.Lookup(netip.MustParseAddr("127.0.9.5")); ok {
		t.Error("nil set has an entry")
	}
}
