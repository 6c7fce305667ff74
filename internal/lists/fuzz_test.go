package lists

import (
	"strings"
	"testing"
)

func FuzzParseLine(f *testing.F) {
	for _, s := range []string{
		"", "# comment", "192.0.2.1", " 192.0.2.0/24 # x", "2001:db8::/32",
		"::ffff:192.0.2.1", "::ffff:192.0.2.0/120", "fe80::1%eth0", "10.1.2.3/8", "1.2.3.4/33",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		p, text, ok, err := parseLine(line)
		if err != nil {
			if ok {
				t.Fatal("ok with an error")
			}
			return
		}
		if !ok {
			if text != "" || p.IsValid() {
				t.Fatalf("no entry but %q %v", text, p)
			}
			return
		}
		if !p.IsValid() || p != p.Masked() || p.Addr().Is4In6() || p.Addr().Zone() != "" {
			t.Fatalf("%q: bad prefix %v", line, p)
		}
		if text == "" || text != strings.TrimSpace(text) || strings.Contains(text, "#") || !strings.Contains(line, text) {
			t.Fatalf("%q: bad text %q", line, text)
		}
		// The entry as written and the canonical prefix parse the same.
		for _, again := range []string{text, p.String()} {
			p2, _, ok2, err2 := parseLine(again)
			if err2 != nil || !ok2 || p2 != p {
				t.Fatalf("%q: reparsing %q gave %v %v %v, want %v", line, again, p2, ok2, err2, p)
			}
		}
	})
}
