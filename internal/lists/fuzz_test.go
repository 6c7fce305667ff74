package lists

import (
	"net/netip"
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

func FuzzParseDROPLine(f *testing.F) {
	for _, s := range []string{
		"; Spamhaus DROP List", "1.10.16.0/20 ; SBL256894", "2001:db8::/32;SBL1", "  203.0.113.0/24",
		`{"cidr":"1.10.16.0/20","sblid":"SBL256894","rir":"apnic"}`, `{"type":"metadata","timestamp":1}`,
		`{"asn":245}`, `{"cidr":"::ffff:1.2.3.0/120"}`, "1.2.3.4/33 ; x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		p, text, note, ok, err := parseDROPLine(line)
		if err != nil || !ok {
			if ok || p.IsValid() || note != "" {
				t.Fatalf("%q: no entry but %v %q %q %v", line, p, text, note, ok)
			}
			return
		}
		if !p.IsValid() || p != p.Masked() || p.Addr().Is4In6() {
			t.Fatalf("%q: bad prefix %v", line, p)
		}
		if strings.ContainsAny(note, "\r\n\x00") {
			t.Fatalf("%q: note %q", line, note)
		}
		if p2, err := parsePrefix(text); err != nil || p2 != p {
			t.Fatalf("%q: text %q reparses as %v %v", line, text, p2, err)
		}
	})
}

func FuzzParseSpamdLine(f *testing.F) {
	for _, s := range []string{
		"# c", "192.168.20.0/24", "192.168.21.0 - 192.168.21.255", "192.168.23.1 some text",
		"10.0.0.1-10.0.0.9", "2001:db8::1 - 2001:db8::ff", "10.0.0.9 - 10.0.0.1", "1.2.3.4 - ::1", " \t1.2.3.4",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		ps, text, ok, err := parseSpamdLine(line)
		if err != nil || !ok {
			if ok || len(ps) > 0 {
				t.Fatalf("%q: no entry but %v", line, ps)
			}
			return
		}
		if len(ps) == 0 || len(ps) > 256 || text == "" {
			t.Fatalf("%q: %d prefixes, text %q", line, len(ps), text)
		}
		// The prefixes are disjoint, ascending and adjacent.
		for i, p := range ps {
			if !p.IsValid() || p != p.Masked() || p.Addr().Is4In6() {
				t.Fatalf("%q: bad prefix %v", line, p)
			}
			if i > 0 {
				last := lastAddr(ps[i-1])
				if next := last.Next(); next != p.Addr() {
					t.Fatalf("%q: %v does not follow %v", line, p, ps[i-1])
				}
			}
		}
	})
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func FuzzParseSpamdConf(f *testing.F) {
	f.Add("all:\\\n\t:a:w:\na:\\\n\t:black:\\\n\t:msg=\"x %A \\\" y\":\\\n\t:method=file:\\\n\t:file=a.txt:\nw:\\\n\t:white:method=file:file=/w:\n")
	f.Add("all:\n  :a:\na:\n  :black:\n  :msg=\"m\":\n  :method=file:\n  :file=a:\n")
	f.Add("# c\nall|x:a\n")
	f.Add("all::a:\na:black:msg=file:method=http:file=u")
	f.Fuzz(func(t *testing.T, text string) {
		ls, err := parseSpamdConf(text, "/etc", nil)
		if err != nil {
			return
		}
		for i, l := range ls {
			if !strings.HasPrefix(l.file, "/") || l.name == "" {
				t.Fatalf("list %+v", l)
			}
			if i == 0 && !l.black {
				t.Fatal("white list first")
			}
			if len(l.msg) > maxMessage || strings.ContainsAny(l.msg, "\r\n") {
				t.Fatalf("msg %q", l.msg)
			}
		}
	})
}
