package policy

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/greypit/greypit/internal/testenv"
)

// matchScript runs postgrey's own whitelist readers, cut out of the
// installed /usr/sbin/postgrey, and its matching loops (from
// smtpd_access_policy), over "name address recipient" lines on stdin,
// printing "client recipient" as 0 or 1.
const matchScript = `
use strict; use NetAddr::IP;
my $self = { postgrey => { whitelist_clients_files => [$ARGV[0]], whitelist_recipients_files => [$ARGV[1]] } };
%s
%s
read_clients_whitelists($self); read_recipients_whitelists($self);
$| = 1;
while (<STDIN>) {
  chomp; my ($name, $addr, $rcpt) = split / /;
  my ($c, $r) = (0, 0);
  for my $w (@{$self->{postgrey}{whitelist_clients}}) { $c = 1 if $name =~ $w }
  my $ip = NetAddr::IP->new($addr);
  for my $w (@{$self->{postgrey}{whitelist_ips}}) { $c = 1 if $ip->within($w) }
  for my $w (@{$self->{postgrey}{whitelist_recipients}}) { $r = 1 if $rcpt =~ $w }
  print "$c $r\n";
}
`

var perlSub = regexp.MustCompile(`(?ms)^sub (read_clients_whitelists|read_recipients_whitelists)\(\$\)\n\{.*?^\}\n`)

// Every entry of Debian's whitelist files, and near misses of each, are
// matched by greypit exactly as by postgrey's own code.
func TestWhitelistsAgainstPostgrey(t *testing.T) {
	testenv.Require(t, "postgrey", "perl")
	src, err := os.ReadFile(testenv.LookBin("postgrey"))
	if err != nil {
		t.Fatal(err)
	}
	subs := perlSub.FindAllString(string(src), -1)
	if len(subs) != 2 {
		t.Fatalf("found %d whitelist readers in postgrey, want 2", len(subs))
	}
	script := fmt.Sprintf(matchScript, strings.ReplaceAll(subs[0], "($)", ""), strings.ReplaceAll(subs[1], "($)", ""))
	cf, rf := "testdata/postgrey/whitelist_clients", "testdata/postgrey/whitelist_recipients"
	w, err := LoadWhitelist([]string{cf}, []string{rf})
	if err != nil {
		t.Fatal(err)
	}

	// Candidates: each host name, a name under it, one that only ends
	// like it, and one with more after it; each address or network, its
	// first and last address and the ones just outside; a few names for
	// the regexes; recipients in every form.
	var names []string
	var addrs []netip.Addr
	add := func(a netip.Addr) {
		if a.IsValid() {
			addrs = append(addrs, a)
		}
	}
	for line := range strings.SplitSeq(string(must(os.ReadFile(cf))), "\n") {
		line, _, _ = strings.Cut(line, "#")
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if p, err := netip.ParsePrefix(line); err == nil {
			p = p.Masked()
			first := p.Addr()
			last := lastAddr(p)
			add(first)
			add(last)
			add(first.Prev())
			add(last.Next())
			continue
		}
		if a, err := netip.ParseAddr(line); err == nil {
			add(a)
			add(a.Next())
			continue
		}
		if strings.HasPrefix(line, "/") {
			continue
		}
		if o := strings.Split(line, "."); len(o) <= 3 && allNum(o) {
			a := netip.MustParseAddr(padIP(o))
			add(a)
			add(lastAddr(netip.PrefixFrom(a, 24)).Next())
			continue
		}
		names = append(names, line, "mx1."+line, "x"+line, line+".example")
	}
	names = append(names, "unknown", "ms-smtp-01.nyroc.rr.com", "mail42.telekom.de", "smtp3.tiscali.dk",
		"fmr12.intel.com", "mail-in-7.arcor-online.net", "smtp12.orange.fr", "postfix12-g3.free.fr",
		"m15-22.126.com", "mx3.foo.inode.at", "mail2.pi.ws", "outmail4.sctm.tfbnw.net")
	rcpts := []string{"postmaster@example.org", "Postmaster@Example.org", "postmaster+x@example.org", "abuse@x.test",
		"xabuse@x.test", "kim@example.org", "post@master"}

	cmd := exec.Command(testenv.LookBin("perl"), "-e", script, cf, rf)
	var in strings.Builder
	type cand struct {
		name string
		addr netip.Addr
		rcpt string
	}
	var cands []cand
	for i, n := range names {
		cands = append(cands, cand{n, netip.MustParseAddr("192.0.2.1"), rcpts[i%len(rcpts)]})
	}
	for i, a := range addrs {
		cands = append(cands, cand{"unknown", a, rcpts[i%len(rcpts)]})
	}
	for _, c := range cands {
		fmt.Fprintf(&in, "%s %s %s\n", c.name, c.addr, c.rcpt)
	}
	cmd.Stdin = strings.NewReader(in.String())
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("perl: %v", err)
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	matched, i := 0, 0
	for ; sc.Scan(); i++ {
		c := cands[i]
		var pc, pr int
		fmt.Sscanf(sc.Text(), "%d %d", &pc, &pr)
		_, gc := w.MatchClient(c.name, c.addr)
		_, gr := w.MatchRecipient(c.rcpt)
		if gc != (pc == 1) {
			t.Errorf("client %s [%s]: greypit %v, postgrey %v", c.name, c.addr, gc, pc == 1)
		}
		if gr != (pr == 1) {
			t.Errorf("recipient %s: greypit %v, postgrey %v", c.rcpt, gr, pr == 1)
		}
		if gc {
			matched++
		}
	}
	if i != len(cands) {
		t.Fatalf("postgrey answered %d of %d candidates", i, len(cands))
	}
	t.Logf("%d candidates compared with postgrey's code, %d whitelisted clients", len(cands), matched)
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func allNum(o []string) bool {
	for _, s := range o {
		if s == "" || strings.Trim(s, "0123456789") != "" {
			return false
		}
	}
	return true
}

func padIP(o []string) string {
	p := append([]string{}, o...)
	for len(p) < 4 {
		p = append(p, "0")
	}
	return strings.Join(p, ".")
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 1 << (7 - i%8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}
