package lists

import (
	"bytes"
	"compress/gzip"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func write(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRangePrefixes(t *testing.T) {
	for _, c := range []struct{ from, to, want string }{
		{"192.168.21.0", "192.168.21.255", "192.168.21.0/24"},
		{"10.0.0.1", "10.0.0.1", "10.0.0.1/32"},
		{"10.0.0.1", "10.0.0.6", "10.0.0.1/32 10.0.0.2/31 10.0.0.4/31 10.0.0.6/32"},
		{"1.1.1.2", "1.1.1.255", "1.1.1.2/31 1.1.1.4/30 1.1.1.8/29 1.1.1.16/28 1.1.1.32/27 1.1.1.64/26 1.1.1.128/25"},
		{"0.0.0.0", "255.255.255.255", "0.0.0.0/0"},
		{"::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "::/0"},
		{"2001:db8::", "2001:db8:0:1:ffff:ffff:ffff:ffff", "2001:db8::/63"},
		{"2001:db8::ffff:ffff:ffff:ffff", "2001:db8:0:1::", "2001:db8::ffff:ffff:ffff:ffff/128 2001:db8:0:1::/128"},
		{"::ffff:10.0.0.0", "10.0.0.255", "10.0.0.0/24"},
		{"10.0.0.2", "10.0.0.1", ""},
		{"10.0.0.1", "::1", ""},
	} {
		var got []string
		for _, p := range RangePrefixes(netip.MustParseAddr(c.from), netip.MustParseAddr(c.to)) {
			got = append(got, p.String())
		}
		if strings.Join(got, " ") != c.want {
			t.Errorf("%s - %s: %v, want %s", c.from, c.to, got, c.want)
		}
	}
}

const dropText = `; Spamhaus DROP List 2026/12/01 - (c) 2026 The Spamhaus Project SLU
; https://www.spamhaus.org/drop/drop.txt
1.10.16.0/20 ; SBL256894
2001:db8:bad::/48 ; SBL300001
  203.0.113.0/24;SBL9
; EOF
`

const dropJSONText = `{"cidr":"198.51.100.0/25","sblid":"SBL1000","rir":"arin"}
{"cidr":"2001:db8:beef::/48","sblid":"SBL1001","rir":"ripencc"}
{"type":"metadata","timestamp":1741743474,"size":82716,"records":2,"copyright":"(c) 2025 The Spamhaus Project SLU"}
`

func TestDROPFormats(t *testing.T) {
	dir := t.TempDir()
	s, err := NewSetFiles(Files{DROP: []string{write(t, dir, "drop.txt", dropText), write(t, dir, "drop_v4.json", dropJSONText)}})
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]string{
		"1.10.31.255":     "listed in Spamhaus DROP (SBL256894)",
		"2001:db8:bad::9": "listed in Spamhaus DROP (SBL300001)",
		"203.0.113.7":     "listed in Spamhaus DROP (SBL9)",
		"198.51.100.127":  "listed in Spamhaus DROP (SBL1000)",
		"2001:db8:beef::": "listed in Spamhaus DROP (SBL1001)",
		"198.51.100.128":  "",
		"1.10.32.0":       "",
	} {
		ls := s.Blocked(netip.MustParseAddr(addr))
		if got := Messages(ls); got != want {
			t.Errorf("%s: %q, want %q", addr, got, want)
		}
		if want != "" && (ls[0].Key != "lists.drop" || ls[0].Source.Line == 0) {
			t.Errorf("%s: listing %+v", addr, ls[0])
		}
	}
	for _, bad := range []string{"1.2.3.0/33 ; SBL1\n", `{"asn":245,"rir":"arin"}` + "\n", "{\"cidr\":\n", "not-an-address ; SBL1\n"} {
		_, err := NewSetFiles(Files{DROP: []string{write(t, dir, "bad", bad)}})
		if err == nil || !strings.Contains(err.Error(), "bad:1:") {
			t.Errorf("%q: error %v, want one naming bad:1", bad, err)
		}
	}
}

func TestSpamdConf(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "traps.txt", "# uatraps\n192.168.20.0/24 spamtrap hits\n192.168.21.0 - 192.168.21.255\n192.168.23.1\n2001:db8:7::/48\n")
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("10.9.0.0/16\n"))
	zw.Close()
	write(t, dir, "nix.txt.gz", gz.String())
	write(t, dir, "white.txt", "192.168.20.10\n")
	write(t, dir, "nixmsg", "Your address %A\nis in nixspam\n")
	conf := write(t, dir, "spamd.conf", `# spamd-setup config
all:\
	:uatraps:mywhite:nixspam:

uatraps:\
	:black:\
	:msg="SPAM. Your address %A has sent spam: see \"http://x.example/q\" (100%%)":\
	:method=file:\
	:file=traps.txt:
mywhite:\
	:white:\
	:method=file:\
	:file=white.txt:

nixspam:
	:black:
	:msg=nixmsg:
	:method=file:
	:file=`+dir+`/nix.txt.gz:
unused:\
	:black:msg="x":method=http:file=www.example.org/list:
`)
	s, err := NewSetFiles(Files{SpamdConf: []string{conf}})
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]string{
		"192.168.20.9":   `SPAM. Your address 192.168.20.9 has sent spam: see "http://x.example/q" (100%)`,
		"192.168.21.200": `SPAM. Your address 192.168.21.200 has sent spam: see "http://x.example/q" (100%)`,
		"192.168.23.1":   `SPAM. Your address 192.168.23.1 has sent spam: see "http://x.example/q" (100%)`,
		"2001:db8:7::1":  `SPAM. Your address 2001:db8:7::1 has sent spam: see "http://x.example/q" (100%)`,
		"10.9.1.1":       "Your address 10.9.1.1 is in nixspam",
		"192.168.20.10":  "", // white-listed out of uatraps
		"192.168.22.1":   "",
	} {
		ls := s.Blocked(netip.MustParseAddr(addr))
		if got := Messages(ls); got != want {
			t.Errorf("%s: %q, want %q", addr, got, want)
		}
	}
	if ls := s.Blocked(netip.MustParseAddr("192.168.21.5")); len(ls) != 1 || ls[0].Describe() != "lists.spamd_conf uatraps "+dir+"/traps.txt:3 (192.168.21.0 - 192.168.21.255)" {
		t.Errorf("listing: %+v", ls)
	}

	for name, text := range map[string]string{
		"no all":       "x:\\\n\t:black:msg=\"m\":method=file:file=traps.txt:\n",
		"http":         "all:\\\n\t:x:\nx:\\\n\t:black:msg=\"m\":method=http:file=www.example.org/l:\n",
		"no msg":       "all:\\\n\t:x:\nx:\\\n\t:black:method=file:file=traps.txt:\n",
		"missing list": "all:\\\n\t:x:y:\nx:\\\n\t:black:msg=\"m\":method=file:file=traps.txt:\n",
		"white first":  "all:\\\n\t:w:\nw:\\\n\t:white:method=file:file=traps.txt:\n",
		"open quote":   "all:\\\n\t:x:\nx:\\\n\t:black:msg=\"m:method=file:file=traps.txt:\n",
		"no file":      "all:\\\n\t:x:\nx:\\\n\t:black:msg=\"m\":method=file:file=nope.txt:\n",
	} {
		_, err := NewSetFiles(Files{SpamdConf: []string{write(t, dir, "bad.conf", text)}})
		if err == nil || !strings.Contains(err.Error(), "lists.spamd_conf") {
			t.Errorf("%s: error %v", name, err)
		}
	}
}

// Several lists covering one address all show, in config order.
func TestBlockedAllLists(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "l.txt", "203.0.113.0/24\n")
	s, err := NewSetFiles(Files{
		Block:     []string{write(t, dir, "block", "203.0.113.5\n")},
		DROP:      []string{write(t, dir, "drop", "203.0.113.0/24 ; SBL7\n")},
		SpamdConf: []string{write(t, dir, "spamd.conf", "all:\\\n\t:l:\nl:\\\n\t:black:msg=\"in l\":method=file:file=l.txt:\n")},
	})
	if err != nil {
		t.Fatal(err)
	}
	ls := s.Blocked(netip.MustParseAddr("::ffff:203.0.113.5"))
	var keys []string
	for _, l := range ls {
		keys = append(keys, l.Key)
	}
	if !slices.Equal(keys, []string{"lists.block", "lists.drop", "lists.spamd_conf"}) {
		t.Errorf("keys %v", keys)
	}
	if got := Messages(ls); got != "listed in local block list; listed in Spamhaus DROP (SBL7); in l" {
		t.Errorf("messages %q", got)
	}
}

// Poll reloads a changed file, keeps the old set for a broken one without
// retrying it, and picks up the repaired file.
func TestPoll(t *testing.T) {
	dir := t.TempDir()
	drop := write(t, dir, "drop.txt", "192.0.2.0/24 ; SBL1\n")
	s, err := NewSetFiles(Files{DROP: []string{drop}})
	if err != nil {
		t.Fatal(err)
	}
	listed := func(a string) bool { return len(s.Blocked(netip.MustParseAddr(a))) > 0 }
	if changed, err := s.Poll(); changed || err != nil {
		t.Fatalf("unchanged file: %v %v", changed, err)
	}
	replace := func(text string) {
		tmp := write(t, dir, "tmp", text)
		if err := os.Rename(tmp, drop); err != nil {
			t.Fatal(err)
		}
	}
	replace("198.51.100.0/24 ; SBL2\n")
	if changed, err := s.Poll(); !changed || err != nil || !listed("198.51.100.1") || listed("192.0.2.1") {
		t.Fatalf("after a change: %v %v", changed, err)
	}
	replace("198.51.100.0/24 ; SBL2\nbroken\n")
	if changed, err := s.Poll(); !changed || err == nil || !strings.Contains(err.Error(), "drop.txt:2") {
		t.Fatalf("broken file: %v %v", changed, err)
	}
	if !listed("198.51.100.1") {
		t.Error("a broken file emptied the list")
	}
	if changed, err := s.Poll(); changed || err != nil {
		t.Errorf("the same broken file was retried: %v %v", changed, err)
	}
	// Same size, new time: still noticed.
	os.WriteFile(drop, []byte("203.0.113.0/24 ; SBL3\n"), 0o644)
	os.Chtimes(drop, time.Now(), time.Now().Add(time.Second))
	if changed, err := s.Poll(); !changed || err != nil || !listed("203.0.113.1") {
		t.Errorf("repaired file: %v %v", changed, err)
	}
	os.Remove(drop)
	if changed, err := s.Poll(); !changed || err == nil || !listed("203.0.113.1") {
		t.Errorf("removed file: %v %v", changed, err)
	}
}
