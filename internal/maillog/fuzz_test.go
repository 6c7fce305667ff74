package maillog

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// FuzzParse feeds arbitrary lines to one parser, so join state carries
// over between them as it does in a followed log. Every line must give
// events or a reason, and every event must be usable as it stands.
func FuzzParse(f *testing.F) {
	for _, name := range sampleFiles {
		for _, l := range sampleLines(f, name) {
			f.Add(l)
		}
	}
	p := NewParser()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	p.Now = func() time.Time { return now }
	f.Fuzz(func(t *testing.T, line string) {
		r := p.Parse(line)
		if (len(r.Events) == 0) == (r.Ignored == "") {
			t.Fatalf("%q: events %v and ignored %q", line, r.Events, r.Ignored)
		}
		for _, e := range r.Events {
			if e.Client == "" {
				t.Fatalf("%q: event without client: %+v", line, e)
			}
			if a, err := netip.ParseAddr(e.Client); err != nil || a.String() != e.Client {
				t.Fatalf("%q: bad client %q", line, e.Client)
			}
			if e.Kind == TrapCandidate && (!strings.Contains(e.Address, "@") || e.Address != strings.ToLower(e.Address)) {
				t.Fatalf("%q: bad address %q", line, e.Address)
			}
			if len(e.Reason) > maxReason {
				t.Fatalf("%q: reason too long: %d", line, len(e.Reason))
			}
		}
		if p.joinLen() > 2*joinSize {
			t.Fatal("join tables over their bound")
		}
	})
}
