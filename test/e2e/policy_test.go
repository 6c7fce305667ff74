package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/greypit/greypit/internal/greylist"
	"github.com/greypit/greypit/internal/testenv"
)

// policyProc is a policy server under test: greypit policy or postgrey,
// started with the same postgrey command line.
type policyProc struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

func startPolicyProc(t *testing.T, name, addr string, argv ...string) *policyProc {
	t.Helper()
	p := &policyProc{t: t, name: name, done: make(chan struct{}), log: filepath.Join(t.TempDir(), name+".log")}
	f, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); f.Close(); close(p.done) }()
	t.Cleanup(p.Stop)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return p
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited during start-up:\n%s", name, p.Log())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not listen on %s in 20s:\n%s", name, addr, p.Log())
		}
	}
}

func (p *policyProc) Log() string { b, _ := os.ReadFile(p.log); return string(b) }

func (p *policyProc) Stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
		p.t.Errorf("%s did not stop within 20s of SIGTERM", p.name)
	}
	if p.t.Failed() {
		p.t.Logf("%s log:\n%s", p.name, p.Log())
	}
}

// TestPolicyDropIn: one real Postfix with check_policy_service pointing at
// a port, and the same postgrey command line run first as `greypit
// policy`, then as Debian's postgrey, then greypit again on postgrey's
// imported database. Each time a first message is deferred (4xx at the
// sender), its retry after the delay is delivered with an X-Greylist
// header, and a whitelisted client and a whitelisted recipient pass at
// once.
func TestPolicyDropIn(t *testing.T) {
	testenv.Require(t, "postfix", "swaks", "postgrey", "db_dump")
	testenv.RequireRoot(t)
	port := testenv.FreePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	pf := testenv.StartPostfix(t, testenv.PostfixOptions{ExtraMain: map[string]string{
		// DEFER_IF_PERMIT defers when the rest would permit: permit_mynetworks does.
		"smtpd_recipient_restrictions": "check_policy_service inet:" + addr + ", permit_mynetworks, reject_unauth_destination",
		"smtpd_policy_service_timeout": "10s",
	}})

	dir, err := os.MkdirTemp("", "greypit-policy-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	wc := filepath.Join(dir, "whitelist_clients")
	wr := filepath.Join(dir, "whitelist_recipients")
	os.WriteFile(wc, []byte("# test\n127.0.0.77\n"), 0o644)
	os.WriteFile(wr, []byte("postmaster@\n"), 0o644)
	flags := []string{"--inet=" + addr, "--delay=3", "--whitelist-clients=" + wc, "--whitelist-recipients=" + wr}

	send := func(src, rcpt, subject string) testenv.SwaksResult {
		return testenv.Swaks(t, "--server", "127.0.0.1", "--port", portOf(pf.Addr()), "--local-interface", src,
			"--helo", "client.example.org", "--from", "sender@example.org", "--to", rcpt,
			"--h-Subject", subject, "--timeout", "30s")
	}
	delivered := 0
	expectDelivered := func(subject string) testenv.Message {
		t.Helper()
		delivered++
		ms := pf.WaitMessages(t, delivered, 20*time.Second)
		for _, m := range ms {
			if m.Subject == subject {
				return m
			}
		}
		t.Fatalf("%q not delivered", subject)
		return testenv.Message{}
	}
	scenario := func(name, src, hdr string) {
		t.Helper()
		rcpt := "kim-" + name + "@example.test"
		r := send(src, rcpt, name+" first")
		if rep := replyTo(r, "RCPT TO"); r.Code != 24 || !strings.HasPrefix(rep, "450 4.2.0 ") || !strings.Contains(rep, "Greylisted") {
			t.Fatalf("%s: first attempt not greylisted (exit %d, %q):\n%s", name, r.Code, rep, r)
		}
		time.Sleep(4 * time.Second) // the pass delay of --delay=3 (whole seconds in postgrey)
		if r := send(src, rcpt, name+" retry"); r.Code != 0 {
			t.Fatalf("%s: retry after the delay:\n%s", name, r)
		}
		m := expectDelivered(name + " retry")
		if h := m.Header.Get("X-Greylist"); !strings.Contains(h, hdr) || !strings.Contains(h, "delayed") {
			t.Errorf("%s: X-Greylist %q, want it to mention %q", name, h, hdr)
		}
		if r := send("127.0.0.77", "ann-"+name+"@example.test", name+" white client"); r.Code != 0 {
			t.Errorf("%s: whitelisted client:\n%s", name, r)
		} else {
			expectDelivered(name + " white client")
		}
		if r := send("127.0.0.78", "postmaster@example.test", name+" white rcpt"); r.Code != 0 {
			t.Errorf("%s: whitelisted recipient:\n%s", name, r)
		} else {
			expectDelivered(name + " white rcpt")
		}
	}

	gdir := filepath.Join(dir, "greypit")
	// SPF keying and big senders ask a loopback DNS server with no zones,
	// never the machine's resolver (see startGreypit).
	greypitArgs := append([]string{binPath, "policy", "--dbdir=" + gdir, "-set", "smtp.hostname=greypit.test", "-set", "log.level=debug",
		"-set", "dnsbl.resolver=" + testenv.StartDNS(t).Addr}, flags...)
	g := startPolicyProc(t, "greypit", addr, greypitArgs...)
	scenario("greypit", "127.0.0.21", "greypit-dev at greypit.test")
	g.Stop()

	pdir := filepath.Join(dir, "postgrey")
	os.Mkdir(pdir, 0o700)
	if u, err := user.Lookup("postgrey"); err == nil {
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		os.Chown(pdir, uid, gid)
	}
	pg := startPolicyProc(t, "postgrey", addr, append([]string{testenv.LookBin("postgrey"), "--dbdir=" + pdir}, flags...)...)
	scenario("postgrey", "127.0.0.31", "postgrey-1.37")
	pg.Stop()

	// Switching: postgrey's database imported, greypit passes the tuple
	// postgrey had passed at once.
	dump, err := exec.Command(testenv.LookBin("db_dump"), "-p", "-h", pdir, filepath.Join(pdir, "postgrey.db")).Output()
	if err != nil {
		t.Fatalf("db_dump: %v", err)
	}
	df := filepath.Join(dir, "postgrey.dump")
	os.WriteFile(df, dump, 0o644)
	out, err := exec.Command(binPath, "policy", "import-postgrey", "--dbdir="+gdir, "--delay=3", df).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "imported 1 passed") {
		t.Fatalf("import-postgrey: %v\n%s\ndump:\n%s", err, out, dump)
	}
	startPolicyProc(t, "greypit-imported", addr, greypitArgs...)
	if r := send("127.0.0.31", "kim-postgrey@example.test", "imported"); r.Code != 0 {
		t.Fatalf("tuple passed under postgrey, after import:\n%s", r)
	}
	expectDelivered("imported")
	if r := send("127.0.0.32", "other@example.test", "imported new"); r.Code != 24 {
		t.Errorf("a new tuple after import was not greylisted:\n%s", r)
	}
}

// The policy server inside `greypit serve`: the same store as the SMTP
// front line, and `greypit db` sees a sighting not yet flushed.
func TestPolicyInServe(t *testing.T) {
	paddr := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	g := startGreypit(t, greypitOpts{backend: testenv.ClosedPort(t), extra: "\n[policy]\nlisten = \"" + paddr + "\"\n",
		sets: []string{"store.grey_flush_every=1h"}})
	c := testenv.Dial(t, "", paddr)
	br := bufio.NewReader(c)
	ask := func(req string) string { t.Helper(); return askPolicy(t, c, br, req) }
	req := "request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=127.0.0.44\nclient_name=unknown\n" +
		"sender=bob@example.org\nrecipient=kim@example.test\netrn_domain=\n\n"
	if got := ask(req); !strings.HasPrefix(got, "action=DEFER_IF_PERMIT 4.2.0 Greylisted") {
		t.Fatalf("first request: %q", got)
	}
	if got := ask("request=other\n\n"); got != "action=DUNNO\n" {
		t.Errorf("unknown request: %q", got)
	}
	if out, code := g.DB("list", "-type", "grey"); code != 0 || !strings.Contains(out, "127.0.0.0/24 bob@example.org kim@example.test") {
		t.Errorf("db list -type grey (exit %d):\n%s", code, out)
	}
	// The SMTP front line greylists the same tuple key: its first attempt
	// is an early retry of the policy server's sighting.
	r := g.swaks("127.0.0.44", "kim@example.test", "via smtp", "--from", "bob@example.org")
	if !strings.Contains(r.Out, "451") {
		t.Errorf("SMTP attempt:\n%s", r)
	}
	if out, _ := g.DB("list", "-type", "grey", "-json"); !strings.Contains(out, `"count":2`) {
		t.Errorf("grey entries after the SMTP attempt:\n%s", out)
	}
}

// kill -9 under load, then restart: every white entry acknowledged before
// the kill is there, and the greylist sightings lost are only those of the
// last flush interval (store.grey_flush_every, 1s by default) before it.
func TestPolicyCrash(t *testing.T) {
	paddr := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	g := startGreypit(t, greypitOpts{backend: testenv.ClosedPort(t), extra: "\n[policy]\nlisten = \"" + paddr + "\"\n",
		sets: []string{"log.level=warn"}})
	var (
		mu     sync.Mutex
		seen   = map[string]time.Time{} // tuple key -> when its answer arrived
		whites []string
		stop   = make(chan struct{})
		wg     sync.WaitGroup
	)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", paddr)
			if err != nil {
				return
			}
			defer c.Close()
			br := bufio.NewReader(c)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				sender := letters(w*1000000+i) + "@example.org" // digits would be normalised away
				client := fmt.Sprintf("10.%d.%d.1", w, i%256)
				req := "request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=" + client +
					"\nclient_name=unknown\nsender=" + sender + "\nrecipient=kim@example.test\n\n"
				if _, err := io.WriteString(c, req); err != nil {
					return
				}
				l, err := br.ReadString('\n')
				if err != nil {
					return
				}
				br.ReadString('\n')
				if strings.HasPrefix(l, "action=DEFER_IF_PERMIT") {
					mu.Lock()
					seen[greylist.Key(netip.MustParseAddr(client), 24, 64, sender, "kim@example.test")] = time.Now()
					mu.Unlock()
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			a := fmt.Sprintf("192.0.2.%d", i%250+1)
			if _, code := runGreypit("db", "-config", g.Config, "add", "-type", "white", a); code == 0 {
				mu.Lock()
				whites = append(whites, a)
				mu.Unlock()
			}
		}
	}()
	time.Sleep(3 * time.Second) // the load runs; nothing to wait for
	g.Kill9()
	killed := time.Now()
	close(stop)
	wg.Wait()
	g.Start()

	out, code := g.DB("list", "-json")
	if code != 0 {
		t.Fatalf("db list after restart: %s", out)
	}
	keys := map[string]bool{}
	dec := json.NewDecoder(strings.NewReader(out))
	for {
		var e struct{ Key string }
		if err := dec.Decode(&e); err != nil {
			break
		}
		keys[e.Key] = true
	}
	mu.Lock()
	defer mu.Unlock()
	for _, w := range whites {
		if !keys[w] {
			t.Errorf("white entry %s acknowledged before the kill is gone", w)
		}
	}
	window := time.Second + time.Second // one flush interval, plus a flush in progress on a loaded machine
	lost, old := 0, 0
	for k, at := range seen {
		if keys[k] {
			continue
		}
		lost++
		if killed.Sub(at) > window {
			old++
		}
	}
	t.Logf("%d sightings answered, %d lost (all within %v of the kill: %v); %d white entries acknowledged", len(seen), lost, window, old == 0, len(whites))
	if len(seen) < 200 || len(whites) == 0 {
		t.Fatalf("too little load: %d sightings, %d white entries", len(seen), len(whites))
	}
	if old > 0 {
		t.Errorf("%d sightings lost that were answered more than %v before the kill", old, window)
	}
}

// letters spells n in base 26.
func letters(n int) string {
	b := []byte{}
	for {
		b = append(b, byte('a'+n%26))
		n /= 26
		if n == 0 {
			return string(b)
		}
	}
}

// askPolicy sends one policy request on c and returns the answer's action
// line (the empty line after it is read too).
func askPolicy(t *testing.T, c net.Conn, br *bufio.Reader, req string) string {
	t.Helper()
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	l, err := br.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	br.ReadString('\n')
	return l
}
