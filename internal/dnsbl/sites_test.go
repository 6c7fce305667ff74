package dnsbl

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParseSite(t *testing.T) {
	for _, tc := range []struct {
		in     string
		zone   string
		weight int
		match  []string
		nomat  []string
	}{
		{"zen.spamhaus.org=127.0.0.[2..11]*3", "zen.spamhaus.org", 3, []string{"127.0.0.2", "127.0.0.11"}, []string{"127.0.0.1", "127.0.0.12", "127.0.1.2"}},
		{"list.dnswl.org=127.0.[0..255].[1..3]*-2", "list.dnswl.org", -2, []string{"127.0.5.1", "127.0.255.3"}, []string{"127.0.5.0", "127.0.5.4"}},
		{"bl.example", "bl.example", 1, []string{"127.0.0.2", "10.0.0.1"}, nil},
		{"BL.Example.*2", "bl.example", 2, []string{"127.0.0.9"}, nil},
		{"b.example=127.0.0.[2;4;10..12]", "b.example", 1, []string{"127.0.0.2", "127.0.0.4", "127.0.0.11"}, []string{"127.0.0.3", "127.0.0.13"}},
	} {
		s, err := ParseSite(tc.in)
		if err != nil {
			t.Errorf("ParseSite(%q): %v", tc.in, err)
			continue
		}
		if s.Zone != tc.zone || s.Weight != tc.weight {
			t.Errorf("ParseSite(%q) = zone %q weight %d, want %q %d", tc.in, s.Zone, s.Weight, tc.zone, tc.weight)
		}
		for _, a := range tc.match {
			if !s.Filter.Match(netip.MustParseAddr(a)) {
				t.Errorf("%q does not match %s", tc.in, a)
			}
		}
		for _, a := range tc.nomat {
			if s.Filter.Match(netip.MustParseAddr(a)) {
				t.Errorf("%q matches %s", tc.in, a)
			}
		}
	}
}

func TestParseSiteErrors(t *testing.T) {
	for _, in := range []string{
		"", "=127.0.0.2", "zen.spamhaus.org=127.0.0", "zen.spamhaus.org=127.0.0.256",
		"z.example=127.0.0.[3..2]", "z.example=127.0.0.[2", "z.example*x", "z.example*99999",
		"z..example", "z example", "z.example=127.0.[0.[1]].2", "z.example=1.2.3.[]",
	} {
		if s, err := ParseSite(in); err == nil {
			t.Errorf("ParseSite(%q) = %+v, want an error", in, s)
		} else if in != "" && !strings.Contains(err.Error(), in) {
			t.Errorf("ParseSite(%q) error %q does not quote the entry", in, err)
		}
	}
}

// The parser never panics, and what it accepts round-trips: the zone is a
// valid zone again, and the filter matches only IPv4 answers.
func FuzzParseSite(f *testing.F) {
	for _, s := range []string{"zen.spamhaus.org=127.0.0.[2..11]*3", "list.dnswl.org=127.0.[0..255].[1..3]*-2", "bl.example", "a.b=1.2.3.[4;5..6]*0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := ParseSite(in)
		if err != nil {
			return
		}
		if err := checkZone(s.Zone); err != nil {
			t.Fatalf("accepted %q with a bad zone: %v", in, err)
		}
		if s.Filter.Match(netip.MustParseAddr("::1")) && s.Filter != nil {
			t.Fatalf("filter of %q matches an IPv6 answer", in)
		}
	})
}
