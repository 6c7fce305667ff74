package policy

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

// The files as shipped in Debian's postgrey 1.37-2 load without a skipped
// line, and match (or not) the clients postgrey's rules match. The cases
// are entries of those files, each with a neighbour that must not match.
func TestDebianWhitelists(t *testing.T) {
	w, err := LoadWhitelist([]string{"testdata/postgrey/whitelist_clients"}, []string{"testdata/postgrey/whitelist_recipients"})
	if err != nil {
		t.Fatal(err)
	}
	if len(w.Warnings) != 0 {
		t.Errorf("warnings: %q", w.Warnings)
	}
	if w.Len() < 160 {
		t.Errorf("only %d entries loaded", w.Len())
	}
	clients := []struct {
		name, addr string
		want       bool
		line       int // the file line that matches, when want
	}{
		{"debian.org", "192.0.2.1", true, 12},                 // host name itself
		{"master.debian.org", "192.0.2.1", true, 12},          // a name under it
		{"notdebian.org", "192.0.2.1", false, 0},              // suffix, but not at a dot
		{"debian.org.example", "192.0.2.1", false, 0},         // anchored at the end
		{"ms-smtp-01.nyroc.rr.com", "192.0.2.1", true, 0},     // /^ms-smtp.*\.rr\.com$/
		{"MS-SMTP-01.nyroc.RR.com", "192.0.2.1", true, 0},     // case-insensitive
		{"xms-smtp-01.rr.com", "192.0.2.1", false, 0},         // anchored regex
		{"mail42.telekom.de", "192.0.2.1", true, 0},           // /^mail\d+\.telekom\.de$/
		{"mailx.telekom.de", "192.0.2.1", false, 0},           //
		{"unknown", "66.216.126.174", true, 0},                // single address
		{"unknown", "66.216.126.175", false, 0},               //
		{"unknown", "195.235.39.200", true, 0},                // partial address: /24
		{"unknown", "195.235.40.1", false, 0},                 //
		{"unknown", "51.4.72.9", true, 0},                     // CIDR
		{"unknown", "51.4.73.9", false, 0},                    //
		{"unknown", "2a01:4180:4051:800::25", true, 0},        // IPv6 /64
		{"unknown", "2a01:4180:4051:801::25", false, 0},       //
		{"unknown", "::ffff:66.216.126.174", true, 0},         // mapped form: greypit unmaps, postgrey 1.37 does not match
		{"a1-2.smtp-out.amazonses.com", "192.0.2.1", true, 0}, // amazonses.com (github #35)
		{"outmail.facebook.com", "192.0.2.1", true, 0},        //
		{"unknown", "192.0.2.1", false, 0},                    // nothing
	}
	for _, c := range clients {
		src, got := w.MatchClient(c.name, netip.MustParseAddr(c.addr))
		if got != c.want {
			t.Errorf("MatchClient(%q, %s) = %v (%v), want %v", c.name, c.addr, got, src, c.want)
		}
		if c.line != 0 && src.Line != c.line {
			t.Errorf("MatchClient(%q): line %d, want %d", c.name, src.Line, c.line)
		}
	}
	rcpts := []struct {
		rcpt string
		want bool
	}{
		{"postmaster@example.org", true}, // postmaster@
		{"Postmaster@Example.ORG", true},
		{"postmaster+x@example.org", true}, // +extension
		{"abuse@example.net", true},
		{"xpostmaster@example.org", false},
		{"post@example.org", false},
	}
	for _, c := range rcpts {
		if src, got := w.MatchRecipient(c.rcpt); got != c.want {
			t.Errorf("MatchRecipient(%q) = %v (%v), want %v", c.rcpt, got, src, c.want)
		}
	}
}

// The other recipient forms and the .local twin.
func TestWhitelistForms(t *testing.T) {
	dir := t.TempDir()
	cf := filepath.Join(dir, "clients")
	rf := filepath.Join(dir, "rcpts")
	os.WriteFile(cf, []byte("example.com\n10.1\n"), 0o644)
	os.WriteFile(cf+".local", []byte("# local\n/^mx[0-9]+\\.local\\.test$/\nbad line here\n/(?<=x)y/\n"), 0o644)
	os.WriteFile(rf, []byte("kim@example.org\nexample.net\n/^list-.*@example\\.com$/\n"), 0o644)
	w, err := LoadWhitelist([]string{cf}, []string{rf})
	if err != nil {
		t.Fatal(err)
	}
	if len(w.Warnings) != 2 { // "bad line here" and the Perl-only look-behind
		t.Errorf("warnings %q, want 2", w.Warnings)
	}
	for _, c := range []struct {
		name, addr string
		want       bool
	}{
		{"mx12.local.test", "192.0.2.1", true},
		{"mx.local.test", "192.0.2.1", false},
		{"a.example.com", "192.0.2.1", true},
		{"unknown", "10.1.0.77", true}, // "10.1" is 10.1.0.0/24 in postgrey
		{"unknown", "10.1.1.77", false},
	} {
		if _, got := w.MatchClient(c.name, netip.MustParseAddr(c.addr)); got != c.want {
			t.Errorf("MatchClient(%q, %s) = %v, want %v", c.name, c.addr, got, c.want)
		}
	}
	for _, c := range []struct {
		rcpt string
		want bool
	}{
		{"kim@example.org", true},
		{"kim+tag@example.org", true},
		{"kim@example.org.evil", false},
		{"kim@sub.example.org", false},
		{"anyone@example.net", true},
		{"anyone@mail.example.net", true},
		{"anyone@badexample.net", false},
		{"list-dev@example.com", true},
		{"dev@example.com", false},
	} {
		if _, got := w.MatchRecipient(c.rcpt); got != c.want {
			t.Errorf("MatchRecipient(%q) = %v, want %v", c.rcpt, got, c.want)
		}
	}
	if _, err := LoadWhitelist([]string{filepath.Join(dir, "missing")}, nil); err == nil {
		t.Error("a missing whitelist file loaded")
	}
}
