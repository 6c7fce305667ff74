package bigsenders

import (
	"context"
	"testing"
)

// fakeTXT answers every name with the same records.
type fakeTXT []string

func (f fakeTXT) LookupTXT(context.Context, string) ([]string, error) { return f, nil }

// Whatever a provider publishes, resolving it never panics or loops, and
// every network it yields is masked and of the right family.
func FuzzResolve(f *testing.F) {
	for _, s := range []string{
		"v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 include:x redirect=y ~all",
		"v=spf1 +ip4:1.2.3.4 -ip6:: ?a mx:%{d} exists:%{i}.x all",
		"v=spf1 ip4:1.2.3.4/33 ip4:01.2.3.4",
		"v=spf1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, rec string) {
		srcs, _ := Resolve(context.Background(), fakeTXT{rec}, Provider{Domain: "fuzz", SPF: "fuzz.test"})
		for _, s := range srcs {
			if !s.Prefix.IsValid() || s.Prefix != s.Prefix.Masked() {
				t.Fatalf("%q gave network %v", rec, s.Prefix)
			}
		}
	})
}
