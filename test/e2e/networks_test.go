package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/greypit/greypit/internal/networks"
	"github.com/greypit/greypit/internal/testenv"
)

// replaceFile swaps in new contents atomically, as a cron job fetching a
// list should.
func replaceFile(t *testing.T, path, text string) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// waitWhy polls `db why addr` until its output contains want.
func (g *Greypit) waitWhy(addr, want string, timeout time.Duration) string {
	g.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		out, code := g.DB("why", addr)
		if code == 0 && strings.Contains(out, want) {
			return out
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("db why %s never showed %q within %v; last (exit %d):\n%s", addr, want, timeout, code, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// tarpitFinal sends one message from src (through swaks) and returns the
// tarpit's final reply.
func tarpitFinal(t *testing.T, g *Greypit, src string) string {
	t.Helper()
	r := g.swaks(src, "victim@foreign.example", "listed")
	final := replyTo(r, ".")
	if !strings.HasPrefix(final, "451 4.7.1") {
		t.Fatalf("final reply from %s: %q, want the tarpit's 451\n%s", src, final, r)
	}
	return final
}

// Block lists in every format: a listed client gets the list's message in
// the tarpit's final reply and in `db why`; a changed file is picked up
// without a restart; a broken one keeps the old set.
func TestBlocklistFormats(t *testing.T) {
	pf := backend(t, testenv.ModeProxy)
	dir := t.TempDir()
	drop := filepath.Join(dir, "drop.txt")
	os.WriteFile(drop, []byte("; Spamhaus DROP List (test copy)\n127.0.0.88/30 ; SBL123\n; EOF\n"), 0o644)
	dropJSON := filepath.Join(dir, "drop_v6.json")
	os.WriteFile(dropJSON, []byte(`{"cidr":"::1/128","sblid":"SBL600","rir":"ripencc"}`+"\n"+`{"type":"metadata","timestamp":1741743474,"records":1}`+"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "traps.txt"), []byte("# mytraps\n127.0.0.100 - 127.0.0.103 trap hits\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "spamd.conf"), []byte(`all:\
	:mytraps:
mytraps:\
	:black:\
	:msg="Your address %A is listed in mytraps":\
	:method=file:\
	:file=traps.txt:
`), 0o644)
	g := startGreypit(t, greypitOpts{backend: pf.Addr(), block: []string{"127.0.0.110/32"}, sets: []string{
		"lists.drop=" + drop + "," + dropJSON, "lists.spamd_conf=" + filepath.Join(dir, "spamd.conf"),
		"lists.poll_every=200ms", "tarpit.stutter=2ms",
	}})
	before := quietBackend(t, pf, 0)

	for src, want := range map[string]string{
		"127.0.0.90":  "client 127.0.0.90 is listed here: listed in Spamhaus DROP (SBL123)",
		"127.0.0.101": "Your address 127.0.0.101 is listed in mytraps",
		"::1":         "client ::1 is listed here: listed in Spamhaus DROP (SBL600)",
		"127.0.0.110": "listed in local block list",
	} {
		if got := tarpitFinal(t, g, src); !strings.Contains(got, want) {
			t.Errorf("final reply to %s: %q, want %q", src, got, want)
		}
	}
	out := g.waitWhy("127.0.0.90", "BLACK", time.Second)
	for _, want := range []string{"because: lists.drop " + drop + ":2 (127.0.0.88/30)", "reason: listed in Spamhaus DROP (SBL123)",
		"listed: lists.drop " + drop + ":2 (127.0.0.88/30): listed in Spamhaus DROP (SBL123)"} {
		if !strings.Contains(out, want) {
			t.Errorf("db why 127.0.0.90 lacks %q:\n%s", want, out)
		}
	}
	if out := g.waitWhy("127.0.0.102", "BLACK", time.Second); !strings.Contains(out, "lists.spamd_conf mytraps") ||
		!strings.Contains(out, "Your address 127.0.0.102 is listed in mytraps") {
		t.Errorf("db why 127.0.0.102:\n%s", out)
	}

	// A new DROP file, no SIGHUP: the poll picks it up.
	replaceFile(t, drop, "127.0.0.120/32 ; SBL124\n")
	g.waitWhy("127.0.0.120", "listed in Spamhaus DROP (SBL124)", 10*time.Second)
	if out := g.waitWhy("127.0.0.90", "127.0.0.90: GREY", time.Second); !strings.Contains(out, "no entry") {
		t.Errorf("127.0.0.90 after the change:\n%s", out)
	}
	// A broken file: an error is logged and the old set stays.
	replaceFile(t, drop, "127.0.0.130/32 ; SBL125\nthis is not a prefix\n")
	g.WaitLog(regexpMust(`list file changed but does not load.*drop\.txt:2`), 10*time.Second)
	g.waitWhy("127.0.0.120", "SBL124", time.Second)
	if out, _ := g.DB("why", "127.0.0.130"); !strings.Contains(out, "GREY") {
		t.Errorf("a broken file was half loaded:\n%s", out)
	}
	if n := connectCount(pf); n != before {
		t.Errorf("the backend saw %d connection(s) from listed clients", n-before)
	}
}

// report runs `greypit report networks` with the daemon's config.
func (g *Greypit) report(args ...string) (string, int) {
	a := []string{"report", "networks", "-config", g.Config}
	for _, s := range g.Sets {
		a = append(a, "-set", s)
	}
	return runGreypit(append(a, args...)...)
}

// pregreetFrom makes src black the way a bot does: it talks before the
// banner. It waits for the session's verdict.
func pregreetFrom(t *testing.T, g *Greypit, src string, verdicts int) {
	t.Helper()
	c := testenv.DialSMTP(t, src+":0", g.Addr)
	c.Send("EHLO eager.example")
	if r := c.ReadReply(); r.Code != 220 {
		t.Fatalf("%s: banner after pregreet: %s", src, r)
	}
	c.ReadReply()
	c.Close()
	g.WaitVerdicts(verdicts)
}

// Escalation: three distinct black hosts turn their /24 black; a white
// host in a network prevents it, a never-escalate network never does, and
// the escalation ends with its evidence. `greypit report networks` then
// attributes the blocked sessions to the right ASes.
func TestNetworkEscalation(t *testing.T) {
	pf := backend(t, testenv.ModeProxy)
	asnFile := filepath.Join(t.TempDir(), "ip2asn-v4.tsv")
	// iptoasn rows for loopback ranges, made up for this test.
	os.WriteFile(asnFile, []byte("127.0.1.0\t127.0.1.255\t64501\tZZ\tEXAMPLE-BAD-NET\n127.0.5.0\t127.0.5.255\t64502\tZZ\tEXAMPLE-OTHER\n127.0.6.0\t127.0.6.255\t0\tNone\tNot routed\n"), 0o644)
	g := startGreypit(t, greypitOpts{backend: pf.Addr(), sets: []string{
		"networks.escalate_hosts=3", "networks.evaluate_every=300ms", "networks.never_escalate=127.0.2.0/24,AS64502",
		"networks.asn_db=" + asnFile, "tarpit.stutter=2ms",
	}})

	// Pregreet from three hosts of 127.0.1.0/24.
	for i, src := range []string{"127.0.1.1", "127.0.1.2", "127.0.1.3"} {
		if i == 2 {
			if out, _ := g.DB("why", "127.0.1.50"); !strings.Contains(out, "GREY") || !strings.Contains(out, "2 black host(s)") {
				t.Errorf("before the third host:\n%s", out)
			}
		}
		pregreetFrom(t, g, src, i+1)
	}
	g.WaitLog(regexpMust(`msg="network escalated" network=127\.0\.1\.0/24 black_hosts=3 as="AS64501 EXAMPLE-BAD-NET"`), 5*time.Second)
	out := g.waitWhy("127.0.1.50", "127.0.1.50: BLACK", time.Second)
	for _, want := range []string{"store black 127.0.1.0/24, source networks", "network 127.0.1.0/24 escalated: 3 black hosts",
		"network 127.0.1.0/24, AS64501 EXAMPLE-BAD-NET: 3 black host(s)", "network escalated since", "black host 127.0.1.2 since"} {
		if !strings.Contains(out, want) {
			t.Errorf("db why 127.0.1.50 lacks %q:\n%s", want, out)
		}
	}
	// A clean host of that network is now tarpitted, with the reason.
	final := tarpitFinal(t, g, "127.0.1.50")
	if !strings.Contains(final, "network 127.0.1.0/24 escalated") {
		t.Errorf("final reply %q", final)
	}
	// One pregreet from a never-escalate AS, for the report.
	pregreetFrom(t, g, "127.0.5.1", 5)

	// A white host in the network keeps it from escalating.
	for _, c := range [][]string{{"add", "-type", "white", "127.0.3.9"}, {"add", "-type", "black", "127.0.3.1", "127.0.3.2", "127.0.3.3"},
		{"add", "-type", "black", "127.0.2.1", "127.0.2.2", "127.0.2.3"}, {"add", "-type", "black", "127.0.5.2", "127.0.5.3"}} {
		if out, code := g.DB(c...); code != 0 {
			t.Fatalf("db %v: exit %d\n%s", c, code, out)
		}
	}
	for addr, want := range map[string]string{
		"127.0.3.50": "network not escalated: white host 127.0.3.9",
		"127.0.2.50": "network not escalated: networks.never_escalate 127.0.2.0/24",
		"127.0.5.50": "network not escalated: networks.never_escalate AS64502",
	} {
		// db add returns after its entries' network was evaluated.
		if out := g.waitWhy(addr, want, time.Second); !strings.Contains(out, addr+": GREY") || !strings.Contains(out, "3 black host(s)") {
			t.Errorf("db why %s:\n%s", addr, out)
		}
	}

	// Evidence that expires takes the escalation with it.
	if out, code := g.DB("add", "-type", "black", "-ttl", "3s", "127.0.4.1", "127.0.4.2", "127.0.4.3"); code != 0 {
		t.Fatalf("db add: %s", out)
	}
	g.waitWhy("127.0.4.50", "127.0.4.50: BLACK", time.Second)
	g.waitWhy("127.0.4.50", "127.0.4.50: GREY", 15*time.Second)

	// The McColo view: 5 blocked sessions, 4 of them from AS64501.
	var rep networks.Report
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, code := g.report("-since", "1h", "-json")
		if code != 0 {
			t.Fatalf("report networks: exit %d\n%s", code, out)
		}
		rep = networks.Report{}
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("report JSON: %v\n%s", err, out)
		}
		if rep.Blocked >= 5 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if rep.Blocked != 5 || len(rep.ByAS) != 2 || rep.ByAS[0].Key != "AS64501" || rep.ByAS[0].Blocked != 4 || rep.ByAS[0].BlockedShare != 0.8 ||
		rep.ByAS[0].Hosts != 4 || rep.ByAS[1].Key != "AS64502" || rep.ByAS[1].Blocked != 1 {
		t.Errorf("report: %+v", rep)
	}
	if len(rep.ByNetwork) != 2 || rep.ByNetwork[0].Key != "127.0.1.0/24" || rep.ByNetwork[0].TarpitSeconds <= 0 {
		t.Errorf("report by network: %+v", rep.ByNetwork)
	}
	text, code := g.report("-since", "1h")
	if code != 0 || !strings.Contains(text, "sessions 5, blocked 5") || !strings.Contains(text, "EXAMPLE-BAD-NET") || !strings.Contains(text, "80.0%") {
		t.Errorf("text report (exit %d):\n%s", code, text)
	}
	if out, code := g.report("-since", "forever"); code == 0 || !strings.Contains(out, "greypit: report networks -since") {
		t.Errorf("bad -since: exit %d\n%s", code, out)
	}

	// With the daemon stopped, the report and db why read the store file:
	// the history and the escalation were kept.
	g.Stop()
	if out, code := g.report("-since", "1h"); code != 0 || !strings.Contains(out, "sessions 5, blocked 5") {
		t.Errorf("report without the daemon (exit %d):\n%s", code, out)
	}
	if out, code := g.DB("why", "127.0.1.77"); code != 0 || !strings.Contains(out, "127.0.1.77: BLACK") || !strings.Contains(out, "network escalated since") ||
		!strings.Contains(out, "AS64501 EXAMPLE-BAD-NET: 3 black host(s)") {
		t.Errorf("db why without the daemon (exit %d):\n%s", code, out)
	}
}

// With polling off, SIGHUP alone reloads a spamd list.
func TestBlocklistSIGHUP(t *testing.T) {
	pf := backend(t, testenv.ModeProxy)
	dir := t.TempDir()
	list := filepath.Join(dir, "nixspam.txt")
	os.WriteFile(list, []byte("127.0.0.140\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "spamd.conf"), []byte("all:\\\n\t:nixspam:\nnixspam:\\\n\t:black:\\\n\t:msg=\"listed in nixspam\":\\\n\t:method=file:\\\n\t:file=nixspam.txt:\n"), 0o644)
	g := startGreypit(t, greypitOpts{backend: pf.Addr(), sets: []string{
		"lists.spamd_conf=" + filepath.Join(dir, "spamd.conf"), "lists.poll_every=0s",
	}})
	g.waitWhy("127.0.0.140", "listed in nixspam", time.Second)
	replaceFile(t, list, "127.0.0.141\n")
	if out, _ := g.DB("why", "127.0.0.141"); !strings.Contains(out, "GREY") {
		t.Fatalf("reloaded without SIGHUP and with polling off:\n%s", out)
	}
	if err := g.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	g.WaitLog(regexpMust(`msg="reloaded lists and certificate".*nixspam:1`), 10*time.Second)
	g.waitWhy("127.0.0.141", "listed in nixspam", time.Second)
	g.waitWhy("127.0.0.140", "GREY", time.Second)
}
