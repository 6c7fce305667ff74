// Command policy measures Postfix policy servers side by side: greypit
// policy, Debian's postgrey, and a server that only parses a request and
// answers DUNNO (the limit of the protocol on this machine). N kept-alive
// connections each send one request, wait for the answer, and send the
// next; a mix is either all new tuples or 90% repeats of tuples already
// sent. It reports requests per second and latency percentiles, and for
// greypit the memory per stored tuple after -fill tuples. See
// docs/benchmarks.md.
//
//	go run ./bench/policy -duration 5s -conc 1,8,64 -fill 1000000
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	servers := flag.String("servers", "dunno,greypit,postgrey", "servers to measure, in order")
	concs := flag.String("conc", "1,8,64", "concurrencies (kept-alive connections)")
	mixes := flag.String("mix", "new,repeat90", "request mixes: new (every tuple new), repeat90 (90% repeats)")
	dur := flag.Duration("duration", 5*time.Second, "measuring time per case")
	fill := flag.Int("fill", 0, "after the cases, store this many tuples in greypit and report memory per tuple")
	greypit := flag.String("greypit", "", "greypit binary (default: built from this repository)")
	serveDunno := flag.String("serve-dunno", "", "internal: run the DUNNO server on this address")
	flag.Var(&greypitSets, "set", "extra greypit `section.key=value` override (repeatable)")
	procs := flag.Int("client-procs", 1, "GOMAXPROCS of the load generator itself (the servers keep theirs)")
	flag.Parse()
	if *serveDunno != "" {
		runDunno(*serveDunno)
		return
	}
	runtime.GOMAXPROCS(*procs)
	if err := run(*servers, *concs, *mixes, *dur, *fill, *greypit); err != nil {
		fmt.Fprintln(os.Stderr, "bench/policy:", err)
		os.Exit(1)
	}
}

// greypitSets are extra -set overrides for greypit (experiments).
var greypitSets setList

type setList []string

func (s *setList) String() string     { return strings.Join(*s, " ") }
func (s *setList) Set(v string) error { *s = append(*s, v); return nil }

type target struct {
	name string
	addr string
	cmd  *exec.Cmd
	dir  string
}

func (t *target) stop() {
	if t.cmd != nil {
		t.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { t.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.cmd.Process.Kill()
			<-done
		}
	}
	os.RemoveAll(t.dir)
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func start(name, greypitBin string) (*target, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "bench-policy-")
	if err != nil {
		return nil, err
	}
	os.Chmod(dir, 0o755)
	t := &target{name: name, addr: addr, dir: dir}
	switch name {
	case "dunno":
		self, _ := os.Executable()
		t.cmd = exec.Command(self, "-serve-dunno", addr)
	case "greypit":
		// postgrey's command line; log.level=warn because greypit logs
		// every deferral at info (postgrey's log goes to its stderr file
		// below, like greypit's).
		//
		// No lookup may leave the machine (and the machine's resolver
		// answers nothing or slowly: SPF keying waited its 2 s timeout
		// per new sender): the resolver is a loopback port nobody
		// listens on, so big senders resolve nothing at once, and SPF
		// keying, which postgrey does not do, is off (-set
		// greylist.spf=true measures it against that resolver).
		args := []string{"policy", "--inet=" + addr, "--dbdir=" + dir, "--delay=300", "-set", "log.level=warn",
			"-set", "dnsbl.resolver=" + closedPort(), "-set", "greylist.spf=false"}
		for _, s := range greypitSets {
			args = append(args, "-set", s)
		}
		t.cmd = exec.Command(greypitBin, args...)
	case "postgrey":
		if u, err := user.Lookup("postgrey"); err == nil {
			uid, _ := strconv.Atoi(u.Uid)
			gid, _ := strconv.Atoi(u.Gid)
			os.Chown(dir, uid, gid)
		}
		t.cmd = exec.Command("/usr/sbin/postgrey", "--inet="+addr, "--dbdir="+dir, "--delay=300")
	default:
		return nil, fmt.Errorf("unknown server %q", name)
	}
	logf, err := os.Create(filepath.Join(dir, "log"))
	if err != nil {
		return nil, err
	}
	t.cmd.Stdout, t.cmd.Stderr = logf, logf
	if err := t.cmd.Start(); err != nil {
		return nil, err
	}
	for deadline := time.Now().Add(20 * time.Second); ; {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return t, nil
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "log"))
			t.stop()
			return nil, fmt.Errorf("%s did not start:\n%s", name, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func run(servers, concs, mixes string, dur time.Duration, fill int, greypitBin string) error {
	if greypitBin == "" {
		dir, err := os.MkdirTemp("", "bench-policy-bin-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		greypitBin = filepath.Join(dir, "greypit")
		b := exec.Command("go", "build", "-o", greypitBin, "github.com/greypit/greypit/cmd/greypit")
		b.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := b.CombinedOutput(); err != nil {
			return fmt.Errorf("building greypit: %v\n%s", err, out)
		}
	}
	fmt.Printf("# %s, %d CPUs, load average %s", time.Now().UTC().Format(time.RFC3339), numCPU(), loadavg())
	fmt.Printf("%-9s %4s %-9s %9s %10s %9s %9s %9s %10s\n", "server", "conc", "mix", "requests", "req/s", "p50", "p99", "max", "cpu/req")
	seq := &atomic.Int64{}
	for _, s := range strings.Split(servers, ",") {
		t, err := start(s, greypitBin)
		if err != nil {
			return err
		}
		for _, c := range ints(concs) {
			for _, m := range strings.Split(mixes, ",") {
				cpu0 := cpuTime(t.cmd.Process.Pid)
				r, err := load(t.addr, c, m, dur, 0, seq)
				if err != nil {
					t.stop()
					return fmt.Errorf("%s c=%d %s: %w", s, c, m, err)
				}
				cpu := cpuTime(t.cmd.Process.Pid) - cpu0
				fmt.Printf("%-9s %4d %-9s %9d %10.0f %9s %9s %9s %8.1fµs\n", s, c, m, r.n, float64(r.n)/r.elapsed.Seconds(),
					r.pct(0.50), r.pct(0.99), r.pct(1), float64(cpu)/float64(max(r.n, 1))/1e3)
			}
		}
		t.stop()
	}
	if fill > 0 {
		return memory(greypitBin, fill, seq)
	}
	return nil
}

// memory stores fill new tuples in a fresh greypit and reports its RSS
// and file size per tuple.
func memory(bin string, fill int, seq *atomic.Int64) error {
	t, err := start("greypit", bin)
	if err != nil {
		return err
	}
	defer t.stop()
	base := rss(t.cmd.Process.Pid)
	r, err := load(t.addr, 64, "new", 0, fill, seq)
	if err != nil {
		return err
	}
	time.Sleep(3 * time.Second) // two flush intervals: every tuple is in the file
	after := rss(t.cmd.Process.Pid)
	fi, err := os.Stat(filepath.Join(t.dir, "greypit.db"))
	if err != nil {
		return err
	}
	fmt.Printf("# greypit with %d tuples stored (%.0f req/s while filling): RSS %d MiB -> %d MiB, %.0f B per tuple; file %d MiB, %.0f B per tuple\n",
		fill, float64(r.n)/r.elapsed.Seconds(), base>>20, after>>20, float64(after-base)/float64(fill), fi.Size()>>20, float64(fi.Size())/float64(fill))
	return nil
}

type result struct {
	n       int
	elapsed time.Duration
	lat     []time.Duration // sorted
}

func (r result) pct(p float64) string {
	if len(r.lat) == 0 {
		return "-"
	}
	i := min(int(p*float64(len(r.lat))), len(r.lat)-1)
	d := r.lat[i]
	if d < time.Millisecond {
		return fmt.Sprintf("%.0fµs", float64(d)/1e3)
	}
	return fmt.Sprintf("%.2fms", float64(d)/1e6)
}

// load runs conc connections for dur (or until total requests are done)
// and returns every request's latency.
func load(addr string, conc int, mix string, dur time.Duration, total int, seq *atomic.Int64) (result, error) {
	if mix != "new" && mix != "repeat90" {
		return result{}, fmt.Errorf("unknown mix %q", mix)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if dur > 0 {
		ctx, cancel = context.WithTimeout(ctx, dur)
		defer cancel()
	}
	var (
		mu    sync.Mutex
		lats  []time.Duration
		first error
		wg    sync.WaitGroup
		left  atomic.Int64
	)
	left.Store(int64(total))
	begin := time.Now()
	for i := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ls, err := conn(ctx, addr, i, mix, seq, total > 0, &left)
			mu.Lock()
			lats = append(lats, ls...)
			if err != nil && first == nil {
				first = err
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(begin)
	slices.Sort(lats)
	return result{n: len(lats), elapsed: elapsed, lat: lats}, first
}

func conn(ctx context.Context, addr string, id int, mix string, seq *atomic.Int64, counted bool, left *atomic.Int64) ([]time.Duration, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	br := bufio.NewReader(c)
	rng := rand.New(rand.NewPCG(uint64(id), uint64(time.Now().UnixNano())))
	var (
		lats []time.Duration
		seen []int64 // tuples this connection sent, for repeats
		buf  []byte
	)
	for ctx.Err() == nil {
		if counted && left.Add(-1) < 0 {
			break
		}
		var n int64
		if mix == "repeat90" && len(seen) > 0 && rng.IntN(10) != 0 {
			n = seen[rng.IntN(len(seen))]
		} else {
			n = seq.Add(1)
			if len(seen) < 1000 {
				seen = append(seen, n)
			} else {
				seen[rng.IntN(len(seen))] = n
			}
		}
		buf = request(buf[:0], n)
		t0 := time.Now()
		if _, err := c.Write(buf); err != nil {
			return lats, err
		}
		if err := readReply(br); err != nil {
			return lats, err
		}
		lats = append(lats, time.Since(t0))
	}
	return lats, nil
}

// request is what Postfix 3.7 sends for a RCPT (the attributes of
// SMTPD_POLICY_README, with typical values). Tuple n has its own client
// network, sender and recipient.
func request(b []byte, n int64) []byte {
	a, bb, cc := byte(n>>16), byte(n>>8), byte(n)
	b = append(b, "request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\nhelo_name=mail.example.org\nqueue_id=\n"...)
	b = fmt.Appendf(b, "sender=user%d@example.org\nrecipient=rcpt%d@example.test\nrecipient_count=0\n", n, n%5000)
	b = fmt.Appendf(b, "client_address=10.%d.%d.%d\nclient_name=unknown\nreverse_client_name=unknown\n", a, bb, cc)
	b = fmt.Appendf(b, "instance=%x.%x\n", n, n)
	b = append(b, "sasl_method=\nsasl_username=\nsasl_sender=\nsize=0\nccert_subject=\nccert_issuer=\nccert_fingerprint=\n"+
		"ccert_pubkey_fingerprint=\nencryption_protocol=\nencryption_cipher=\nencryption_keysize=0\netrn_domain=\n"+
		"stress=\nclient_port=41234\npolicy_context=\nserver_address=127.0.0.1\nserver_port=25\ncompatibility_level=3.6\n"+
		"mail_version=3.7.11\n\n"...)
	return b
}

func readReply(br *bufio.Reader) error {
	l, err := br.ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(l, "action=") {
		return fmt.Errorf("reply %q", l)
	}
	if e, err := br.ReadString('\n'); err != nil || e != "\n" {
		return fmt.Errorf("reply %q not followed by an empty line", l)
	}
	return nil
}

// runDunno is the reference server: it reads attribute lines to the empty
// line and answers DUNNO, nothing else.
func runDunno(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			continue
		}
		go func() {
			defer c.Close()
			br := bufio.NewReader(c)
			for {
				l, err := br.ReadSlice('\n')
				if err != nil {
					return
				}
				if len(l) == 1 {
					if _, err := io.WriteString(c, "action=DUNNO\n\n"); err != nil {
						return
					}
				}
			}
		}()
	}
}

func ints(s string) []int {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err == nil && n > 0 {
			out = append(out, n)
		}
	}
	return out
}

func rss(pid int) int64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			f := strings.Fields(l)
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// cpuTime is the user+system CPU the process used so far
// (/proc/PID/stat utime and stime, in clock ticks of 10 ms).
func cpuTime(pid int) time.Duration {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	s := string(b)
	i := strings.LastIndexByte(s, ')') // the command name may hold spaces
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+st) * 10 * time.Millisecond
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	return string(b)
}

func numCPU() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(b), "processor\t:")
}

// closedPort is a loopback UDP address nothing listens on: a query there
// is refused at once.
func closedPort() string {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return "127.0.0.1:9"
	}
	defer pc.Close()
	return pc.LocalAddr().String()
}
