package traps

import (
	"strings"
	"testing"
)

func FuzzParseLine(f *testing.F) {
	for _, s := range []string{
		"", "# comment", "bait@example.org", " <Bait@Example.ORG.> # x", "bait", "@x", "a@", "a b@c",
		"a@b@c.example", "postmaster@example.org", "\uFEFFbait@example.org", "a@[192.0.2.1]", "x@.y", "x@y..z",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		addr, ok, err := ParseLine(line)
		if err != nil {
			if ok || addr != "" {
				t.Fatalf("%q: error %v with %q %v", line, err, addr, ok)
			}
			return
		}
		if !ok {
			if addr != "" {
				t.Fatalf("%q: no entry but %q", line, addr)
			}
			return
		}
		at := strings.LastIndexByte(addr, '@')
		if at <= 0 || at == len(addr)-1 || addr != strings.ToLower(addr) || strings.ContainsAny(addr, " \t\r\n<>#") || len(addr) > 254 {
			t.Fatalf("%q: bad address %q", line, addr)
		}
		// Canonical is idempotent: the file and the SMTP path meet.
		if again, err := Canonical(addr); err != nil || again != addr {
			t.Fatalf("%q: Canonical(%q) = %q, %v", line, addr, again, err)
		}
		if k := keys(addr); k[0] != addr || len(k) > 2 {
			t.Fatalf("%q: keys %q", line, k)
		}
	})
}
