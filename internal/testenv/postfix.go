package testenv

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Modes for PostfixOptions.Mode: how the instance's smtpd learns the
// client's address.
const (
	// ModePlain: the TCP peer is the client.
	ModePlain = "plain"
	// ModeProxy: the smtpd expects a HAProxy PROXY (v1 or v2) header before
	// anything else (smtpd_upstream_proxy_protocol = haproxy on that service
	// only) and treats its source address as the client.
	ModeProxy = "proxy"
	// ModeXClient: the smtpd lets loopback clients send XCLIENT
	// (smtpd_authorized_xclient_hosts = 127.0.0.0/8, [::1]/128 on that
	// service only).
	ModeXClient = "xclient"
)

// Timeouts for instance start-up, shut-down and postfix commands.
const (
	StartTimeout   = 30 * time.Second
	StopTimeout    = 15 * time.Second
	CommandTimeout = 60 * time.Second
)

// KeepEnv, when set to a true value, keeps instance directories after the
// test for post-mortem inspection (their paths are logged).
const KeepEnv = "GREYPIT_TESTENV_KEEP"

// PostfixOptions configures a private Postfix instance.
type PostfixOptions struct {
	// Listen is the smtpd listen address, "127.0.0.1:PORT" or "[::1]:PORT".
	// Empty means 127.0.0.1 on a FreePort.
	Listen string
	// Mode is ModePlain (also ""), ModeProxy or ModeXClient.
	Mode string

	// Relay, if set ("host:port", normally greypit's address), makes this a
	// SENDING MTA: it accepts mail from loopback (mynetworks) for any
	// domain and relays all of it to relayhost = [host]:port, retrying
	// deferred mail about every second. If empty the instance is a backend
	// that delivers mail for Domains into one maildir (see Messages).
	Relay string
	// BindAddress is the source address the sending MTA's smtp client uses
	// (smtp_bind_address, or smtp_bind_address6 for IPv6), e.g. "127.0.0.9",
	// so greypit sees a distinct client address.
	BindAddress string
	// TLS makes the smtpd offer STARTTLS with a self-signed certificate the
	// harness generates (see CertFile).
	TLS bool
	// SenderTLS makes the smtp client use STARTTLS when offered
	// (smtp_tls_security_level = may); otherwise it never does (none).
	SenderTLS bool

	// Domains are the backend's virtual_mailbox_domains. Default
	// ["example.test"]. Ignored for senders.
	Domains []string
	// Hostname is myhostname; default a unique pfN-PID.greypit.test. The
	// maillog shows its first label as the host name.
	Hostname string

	// ExtraMain sets or overrides main.cf parameters, applied last.
	ExtraMain map[string]string
	// ExtraSMTPD adds "-o name=value" overrides to the listening smtpd
	// service only (values must not contain spaces).
	ExtraSMTPD map[string]string
}

// Postfix is a running private Postfix instance. Its methods must be called
// from the test's goroutine (they may call t.Fatal).
type Postfix struct {
	t    testing.TB
	opts PostfixOptions

	dir, confDir, queueDir, dataDir, mailDir, logPath string
	certFile, keyFile                                 string
	certPEM                                           []byte
	addr, hostname                                    string

	postfixBin, postqueueBin string

	mu        sync.Mutex
	masterPID int // 0 when not running
}

var instanceSeq atomic.Int64

// StartPostfix creates, starts and returns a private Postfix instance. It
// skips the test (fails under CI=true) if Postfix is missing or the test is
// not root. The instance is stopped and its directory removed when the
// test ends.
func StartPostfix(t testing.TB, o PostfixOptions) *Postfix {
	t.Helper()
	Require(t, "postfix", "postconf", "postqueue")
	RequireRoot(t)

	switch o.Mode {
	case "":
		o.Mode = ModePlain
	case ModePlain, ModeProxy, ModeXClient:
	default:
		t.Fatalf("testenv: unknown Postfix mode %q", o.Mode)
	}
	if o.Listen == "" {
		o.Listen = net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t)))
	}
	host, port, err := net.SplitHostPort(o.Listen)
	if err != nil || net.ParseIP(host) == nil {
		t.Fatalf("testenv: Listen %q must be IP:PORT", o.Listen)
	}
	if len(o.Domains) == 0 {
		o.Domains = []string{"example.test"}
	}
	seq := instanceSeq.Add(1)
	if o.Hostname == "" {
		o.Hostname = fmt.Sprintf("pf%d-%d.greypit.test", seq, os.Getpid())
	}

	// Not t.TempDir: its parents are mode 0700, which the postfix user and
	// the delivery uid cannot traverse, and Postfix wants root-owned paths.
	dir, err := os.MkdirTemp("/tmp", "greypit-postfix-")
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() {
		if v, _ := strconv.ParseBool(os.Getenv(KeepEnv)); v {
			t.Logf("testenv: keeping Postfix instance directory %s", dir)
			return
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("testenv: removing %s: %v", dir, err)
		}
	})

	p := &Postfix{
		t:            t,
		opts:         o,
		dir:          dir,
		confDir:      filepath.Join(dir, "etc"),
		queueDir:     filepath.Join(dir, "queue"),
		dataDir:      filepath.Join(dir, "data"),
		mailDir:      filepath.Join(dir, "mail"),
		logPath:      filepath.Join(dir, "maillog"),
		addr:         net.JoinHostPort(host, port),
		hostname:     o.Hostname,
		postfixBin:   bin(t, "postfix"),
		postqueueBin: bin(t, "postqueue"),
	}
	// Who made this directory, for anyone finding it left behind by a
	// test binary that was killed before its cleanups ran.
	owner := fmt.Sprintf("pid=%d test=%s addr=%s\n", os.Getpid(), t.Name(), p.addr)
	if err := os.WriteFile(filepath.Join(dir, "owner"), []byte(owner), 0o644); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	if err := p.layout(); err != nil {
		t.Fatalf("testenv: setting up Postfix in %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("testenv: maillog of %s (%s):\n%s", p.addr, p.logPath, tail(p.Log(), 40))
		}
		if err := p.stop(); err != nil {
			t.Errorf("testenv: stopping Postfix %s: %v", p.addr, err)
		}
	})
	p.Start()
	return p
}

// layout creates the instance directory tree and configuration.
func (p *Postfix) layout() error {
	if err := os.Chmod(p.dir, 0o755); err != nil {
		return err
	}
	for _, d := range []string{p.confDir, p.queueDir, p.dataDir, p.mailDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return err
		}
	}
	if owner, err := lookupIDs("postfix", -1, -1); err != nil {
		return err
	} else if err := os.Chown(p.dataDir, owner[0], owner[1]); err != nil {
		return err
	}
	// virtual(8) delivers as nobody (static uid/gid maps below).
	nobody, err := lookupIDs("nobody", 65534, 65534)
	if err != nil {
		return err
	}
	if err := os.Chown(p.mailDir, nobody[0], nobody[1]); err != nil {
		return err
	}
	if p.opts.TLS {
		tlsDir := filepath.Join(p.dir, "tls")
		if err := os.Mkdir(tlsDir, 0o755); err != nil {
			return err
		}
		p.certFile = filepath.Join(tlsDir, "cert.pem")
		p.keyFile = filepath.Join(tlsDir, "key.pem")
		if p.certPEM, err = writeSelfSigned(p.hostname, p.certFile, p.keyFile); err != nil {
			return err
		}
	}
	return p.writeConfig(map[string][]byte{
		"main.cf":   p.mainCF(nobody),
		"master.cf": p.masterCF(),
	})
}

// writeConfig writes configuration files and backdates them: Postfix
// (dict_load_file) re-reads a file whose mtime is within the last second
// or so in 300 ms naps until it "cools down", which made every start of a
// fresh instance take ~2.5 s.
func (p *Postfix) writeConfig(files map[string][]byte) error {
	past := time.Now().Add(-time.Hour)
	for name, data := range files {
		path := filepath.Join(p.confDir, name)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return err
		}
		if err := os.Chtimes(path, past, past); err != nil {
			return err
		}
	}
	return nil
}

// lookupIDs returns the uid and gid of a user, or the defaults if the user
// does not exist and defaults are given (>= 0).
func lookupIDs(name string, defUID, defGID int) ([2]int, error) {
	u, err := user.Lookup(name)
	if err != nil {
		if defUID >= 0 {
			return [2]int{defUID, defGID}, nil
		}
		return [2]int{}, fmt.Errorf("user %s: %w", name, err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return [2]int{}, fmt.Errorf("user %s: non-numeric ids %s:%s", name, u.Uid, u.Gid)
	}
	return [2]int{uid, gid}, nil
}

// mainCF renders main.cf. The package comment explains the settings that
// are not obvious.
func (p *Postfix) mainCF(nobody [2]int) []byte {
	o := p.opts
	m := map[string]string{
		"compatibility_level": "3.6",
		"config_directory":    p.confDir,
		"queue_directory":     p.queueDir,
		"data_directory":      p.dataDir,
		// Log through postlogd (the postlog service in master.cf) into a
		// file; maillog_file_prefixes must allow the path (default /var,
		// /dev/stdout).
		"maillog_file":          p.logPath,
		"maillog_file_prefixes": p.dir,

		"myhostname":           p.hostname,
		"mydomain":             "greypit.test",
		"myorigin":             "$myhostname",
		"mydestination":        "",
		"inet_interfaces":      "loopback-only",
		"inet_protocols":       "all",
		"mynetworks":           "127.0.0.0/8 [::1]/128",
		"alias_maps":           "",
		"alias_database":       "",
		"local_recipient_maps": "",
		"biff":                 "no",
		"append_dot_mydomain":  "no",
		"smtpd_banner":         "$myhostname ESMTP Postfix",

		// No DNS anywhere: clients show up as unknown[ADDR] at once, and
		// the smtp client reaches [ip]:port literally.
		"smtpd_peername_lookup":  "no",
		"smtp_dns_support_level": "disabled",
		"smtp_host_lookup":       "native",

		"smtpd_relay_restrictions":     "permit_mynetworks, reject_unauth_destination",
		"smtpd_recipient_restrictions": "permit_mynetworks, reject_unauth_destination",

		// Retry deferred mail quickly: 1s is the minimum Postfix accepts
		// for each (0 is a fatal configuration error).
		"minimal_backoff_time": "1s",
		"maximal_backoff_time": "2s",
		"queue_run_delay":      "1s",

		"smtpd_tls_security_level": "none",
		"smtp_tls_security_level":  "none",
	}
	if o.TLS {
		m["smtpd_tls_security_level"] = "may"
		m["smtpd_tls_cert_file"] = p.certFile
		m["smtpd_tls_key_file"] = p.keyFile
		m["smtpd_tls_loglevel"] = "1"
	}
	if o.SenderTLS {
		m["smtp_tls_security_level"] = "may"
		m["smtp_tls_loglevel"] = "1"
	}
	if o.Relay != "" {
		h, port, err := net.SplitHostPort(o.Relay)
		if err != nil {
			p.t.Fatalf("testenv: Relay %q must be host:port", o.Relay)
		}
		m["relayhost"] = "[" + h + "]:" + port
		m["default_transport"] = "smtp"
		m["relay_transport"] = "relay"
		if o.BindAddress != "" {
			ip := net.ParseIP(o.BindAddress)
			switch {
			case ip == nil:
				p.t.Fatalf("testenv: BindAddress %q is not an IP", o.BindAddress)
			case ip.To4() != nil:
				m["smtp_bind_address"] = o.BindAddress
			default:
				m["smtp_bind_address6"] = o.BindAddress
			}
		}
	} else {
		m["virtual_mailbox_domains"] = strings.Join(o.Domains, ", ")
		m["virtual_mailbox_base"] = p.mailDir
		m["virtual_mailbox_maps"] = "static:box/"
		m["virtual_uid_maps"] = "static:" + strconv.Itoa(nobody[0])
		m["virtual_gid_maps"] = "static:" + strconv.Itoa(nobody[1])
	}
	for k, v := range o.ExtraMain {
		m[k] = v
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b bytes.Buffer
	b.WriteString("# Generated by greypit internal/testenv for one test. Do not edit.\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "%s = %s\n", k, m[k])
	}
	return b.Bytes()
}

// masterCF renders master.cf: the stock Debian services minus the pipe
// transports, nothing chrooted (a chroot would need copies of /etc files),
// the postlog service for maillog_file, and one smtpd on Listen.
func (p *Postfix) masterCF() []byte {
	var b bytes.Buffer
	b.WriteString("# Generated by greypit internal/testenv for one test. Do not edit.\n")
	fmt.Fprintf(&b, "%s inet n - n - - smtpd\n", p.addr)
	opts := map[string]string{}
	switch p.opts.Mode {
	case ModeProxy:
		opts["smtpd_upstream_proxy_protocol"] = "haproxy"
	case ModeXClient:
		opts["smtpd_authorized_xclient_hosts"] = "127.0.0.0/8,[::1]/128"
	}
	for k, v := range p.opts.ExtraSMTPD {
		opts[k] = v
	}
	keys := make([]string, 0, len(opts))
	for k := range opts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "  -o %s=%s\n", k, opts[k])
	}
	b.WriteString(`pickup     unix  n - n 60    1 pickup
cleanup    unix  n - n -     0 cleanup
qmgr       unix  n - n 300   1 qmgr
tlsmgr     unix  - - n 1000? 1 tlsmgr
rewrite    unix  - - n -     - trivial-rewrite
bounce     unix  - - n -     0 bounce
defer      unix  - - n -     0 bounce
trace      unix  - - n -     0 bounce
verify     unix  - - n -     1 verify
flush      unix  n - n 1000? 0 flush
proxymap   unix  - - n -     - proxymap
proxywrite unix  - - n -     1 proxymap
smtp       unix  - - n -     - smtp
relay      unix  - - n -     - smtp
  -o syslog_name=postfix/$service_name
showq      unix  n - n -     - showq
error      unix  - - n -     - error
retry      unix  - - n -     - error
discard    unix  - - n -     - discard
local      unix  - n n -     - local
virtual    unix  - n n -     - virtual
lmtp       unix  - - n -     - lmtp
anvil      unix  - - n -     1 anvil
scache     unix  - - n -     1 scache
postlog    unix-dgram n - n - 1 postlogd
`)
	return b.Bytes()
}

// run runs a Postfix command with -c pointing at this instance.
func (p *Postfix) run(binPath string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), CommandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, append([]string{"-c", p.confDir}, args...)...)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("%s %s: timed out after %v", filepath.Base(binPath), strings.Join(args, " "), CommandTimeout)
	}
	return string(out), err
}

// Start starts the instance (again) and waits until its smtpd answers with
// a 220 banner. StartPostfix already calls it; use it after Stop.
func (p *Postfix) Start() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.masterPID != 0 {
		return
	}
	logStart := len(p.Log())
	if out, err := p.run(p.postfixBin, "start"); err != nil {
		p.t.Fatalf("testenv: postfix -c %s start: %v\n%s\nmaillog:\n%s", p.confDir, err, out, tail(p.Log(), 30))
	}
	pid, err := p.readMasterPID()
	if err != nil {
		p.t.Fatalf("testenv: Postfix %s started but %v", p.addr, err)
	}
	p.masterPID = pid
	// Ready means: smtpd answers with 220, and the queue manager is up. A
	// daemon that dies on a fatal configuration error (say qmgr on
	// minimal_backoff_time = 0) does not make `postfix start` fail and
	// does not stop smtpd from answering; it only shows in the log, so
	// watch the log too and fail fast.
	var lastErr error
	var qmgrPID, qmgrSeen int
	ready := poll(StartTimeout, 25*time.Millisecond, func() bool {
		if p.startFatal(logStart) {
			return true
		}
		if lastErr != nil || qmgrSeen == 0 {
			lastErr = p.probe()
			if lastErr != nil {
				return false
			}
		}
		// qmgr must be seen alive twice, 25 ms apart, with the same pid:
		// a qmgr with a fatal setting dies within milliseconds of exec.
		q := groupProcs(pid)["qmgr"]
		if q == 0 || q != qmgrPID {
			qmgrPID, qmgrSeen = q, 0
			return false
		}
		qmgrSeen++
		return qmgrSeen >= 2
	})
	if p.startFatal(logStart) {
		p.t.Fatalf("testenv: Postfix %s started with errors:\n%s", p.addr, tail(p.Log()[logStart:], 30))
	}
	if !ready {
		p.t.Fatalf("testenv: Postfix %s not ready within %v (banner: %v; qmgr pid %d)\nmaillog:\n%s",
			p.addr, StartTimeout, lastErr, qmgrPID, tail(p.Log(), 30))
	}
}

// startFatal reports whether the log since offset has a fatal or panic.
func (p *Postfix) startFatal(offset int) bool {
	log := p.Log()
	if len(log) < offset {
		return false
	}
	for _, l := range strings.Split(log[offset:], "\n") {
		if fatalLine.MatchString(l) {
			return true
		}
	}
	return false
}

func (p *Postfix) readMasterPID() (int, error) {
	b, err := os.ReadFile(filepath.Join(p.queueDir, "pid", "master.pid"))
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return 0, fmt.Errorf("bad master.pid %q", b)
	}
	return pid, nil
}

var fatalLine = regexp.MustCompile(`postfix/[\w/-]+\[\d+\]: (fatal|panic):`)

// proxyV2Local is a PROXY protocol v2 header with the LOCAL command: "no
// proxied client, use the connection's own addresses". The readiness probe
// of a proxy-mode smtpd sends it, since such an smtpd sends no banner
// before it has a header (and rejects v1 "PROXY UNKNOWN").
var proxyV2Local = []byte("\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00")

// probe connects once and expects a 220 banner.
func (p *Postfix) probe() error {
	c, err := net.DialTimeout("tcp", p.addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	if p.opts.Mode == ModeProxy {
		if _, err := c.Write(proxyV2Local); err != nil {
			return err
		}
	}
	line, err := readLine(c)
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "220") {
		return fmt.Errorf("banner %q", line)
	}
	// Be polite, but do not wait for the 221.
	c.Write([]byte("QUIT\r\n"))
	return nil
}

// readLine reads one line byte by byte (so nothing is over-read).
func readLine(c net.Conn) (string, error) {
	var b []byte
	one := make([]byte, 1)
	for len(b) < 1024 {
		if _, err := c.Read(one); err != nil {
			return string(b), err
		}
		if one[0] == '\n' {
			return strings.TrimRight(string(b), "\r"), nil
		}
		b = append(b, one[0])
	}
	return string(b), errors.New("line too long")
}

// Stop stops the instance and waits until all of its processes are gone
// (so the port is free and Start can be called again). It is a no-op if
// the instance is not running.
func (p *Postfix) Stop() {
	p.t.Helper()
	if err := p.stop(); err != nil {
		p.t.Fatalf("testenv: stopping Postfix %s: %v", p.addr, err)
	}
}

func (p *Postfix) stop() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	pid := p.masterPID
	if pid == 0 {
		return nil
	}
	out, err := p.run(p.postfixBin, "stop")
	// master(8) runs as a session leader (its pid is the process group id)
	// and takes its children down with it on SIGTERM; wait for all of
	// them, since a lingering smtpd still holds the listening socket.
	if poll(StopTimeout, 20*time.Millisecond, func() bool { return !groupAlive(pid) }) {
		p.masterPID = 0
		return nil
	}
	// Last resort, aimed only at this instance's own process group.
	syscall.Kill(-pid, syscall.SIGKILL)
	if poll(5*time.Second, 20*time.Millisecond, func() bool { return !groupAlive(pid) }) {
		p.masterPID = 0
		return fmt.Errorf("had to SIGKILL process group %d (postfix stop: %v: %s)", pid, err, out)
	}
	return fmt.Errorf("process group %d survives SIGKILL (postfix stop: %v: %s)", pid, err, out)
}

// groupAlive reports whether any non-zombie process is in process group
// pgid.
func groupAlive(pgid int) bool {
	if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	// kill(2) also "finds" zombies; look closer in /proc.
	return len(groupProcs(pgid)) > 0
}

// groupProcs maps command name to pid for the live (non-zombie) processes
// in process group pgid, read from /proc. With several processes of one
// name it keeps the lowest pid.
func groupProcs(pgid int) map[string]int {
	procs := map[string]int{}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return procs
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// "pid (comm) state ppid pgrp ..."; comm may contain spaces.
		i, j := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
		if i < 0 || j < i {
			continue
		}
		f := strings.Fields(string(b[j+1:]))
		if len(f) < 3 || f[0] == "Z" || f[0] == "X" {
			continue
		}
		if g, _ := strconv.Atoi(f[2]); g != pgid {
			continue
		}
		comm := string(b[i+1 : j])
		if old, ok := procs[comm]; !ok || pid < old {
			procs[comm] = pid
		}
	}
	return procs
}

// Addr is the smtpd's listen address, "127.0.0.1:PORT".
func (p *Postfix) Addr() string { return p.addr }

// Dir is the instance's root directory (etc/, queue/, data/, mail/,
// maillog).
func (p *Postfix) Dir() string { return p.dir }

// ConfigDir is the instance's config_directory, for `postfix -c`.
func (p *Postfix) ConfigDir() string { return p.confDir }

// Hostname is the instance's myhostname (it appears in its banner).
func (p *Postfix) Hostname() string { return p.hostname }

// Running reports whether the instance is started.
func (p *Postfix) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.masterPID != 0
}

// CertFile is the PEM certificate the smtpd presents with TLS ("" without).
func (p *Postfix) CertFile() string { return p.certFile }

// CertPEM is the certificate CertFile holds (nil without TLS).
func (p *Postfix) CertPEM() []byte { return p.certPEM }

// LogPath is the instance's maillog_file.
func (p *Postfix) LogPath() string { return p.logPath }

// Log returns the maillog as it is now ("" if it does not exist yet).
func (p *Postfix) Log() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

// Grep returns the maillog lines that match re now.
func (p *Postfix) Grep(re *regexp.Regexp) []string {
	var out []string
	for _, l := range strings.Split(p.Log(), "\n") {
		if l != "" && re.MatchString(l) {
			out = append(out, l)
		}
	}
	return out
}

// WaitLog polls the maillog until a line matches re and returns the first
// such line; on timeout it fails the test, showing the log's tail.
func (p *Postfix) WaitLog(t testing.TB, re *regexp.Regexp, timeout time.Duration) string {
	t.Helper()
	return p.WaitLogN(t, re, 1, timeout)[0]
}

// WaitLogN polls the maillog until at least n lines match re and returns
// all matching lines; on timeout it fails the test.
func (p *Postfix) WaitLogN(t testing.TB, re *regexp.Regexp, n int, timeout time.Duration) []string {
	t.Helper()
	var got []string
	if !poll(timeout, 50*time.Millisecond, func() bool {
		got = p.Grep(re)
		return len(got) >= n
	}) {
		t.Fatalf("testenv: %s: %d/%d maillog lines match %q after %v; maillog tail:\n%s",
			p.addr, len(got), n, re, timeout, tail(p.Log(), 40))
	}
	return got
}

// Messages returns the messages delivered into the backend's maildir so
// far, oldest first.
func (p *Postfix) Messages() []Message {
	p.t.Helper()
	msgs, err := readMaildir(filepath.Join(p.mailDir, "box"))
	if err != nil {
		p.t.Fatalf("testenv: reading maildir: %v", err)
	}
	return msgs
}

// WaitMessages polls until at least n messages have been delivered and
// returns them all; on timeout it fails the test.
func (p *Postfix) WaitMessages(t testing.TB, n int, timeout time.Duration) []Message {
	t.Helper()
	var msgs []Message
	if !poll(timeout, 50*time.Millisecond, func() bool {
		m, err := readMaildir(filepath.Join(p.mailDir, "box"))
		msgs = m
		return err == nil && len(m) >= n
	}) {
		t.Fatalf("testenv: %s: %d/%d messages delivered after %v; queue:\n%s\nmaillog tail:\n%s",
			p.addr, len(msgs), n, timeout, p.Queue(), tail(p.Log(), 40))
	}
	return msgs
}

// Queue returns `postqueue -c DIR -p` output ("Mail queue is empty" when
// empty).
func (p *Postfix) Queue() string {
	p.t.Helper()
	out, err := p.run(p.postqueueBin, "-p")
	if err != nil {
		p.t.Fatalf("testenv: postqueue -p: %v\n%s", err, out)
	}
	return out
}

// QueueIDs returns the ids of the messages in the instance's queues
// (incoming, active, deferred, hold), from `postqueue -j`.
func (p *Postfix) QueueIDs() []string {
	p.t.Helper()
	out, err := p.run(p.postqueueBin, "-j")
	if err != nil {
		p.t.Fatalf("testenv: postqueue -j: %v\n%s", err, out)
	}
	var ids []string
	for _, l := range strings.Split(out, "\n") {
		var m struct {
			ID string `json:"queue_id"`
		}
		if json.Unmarshal([]byte(l), &m) == nil && m.ID != "" {
			ids = append(ids, m.ID)
		}
	}
	return ids
}

// QueueEmpty reports whether the instance's queue is empty.
func (p *Postfix) QueueEmpty() bool {
	return strings.Contains(p.Queue(), "Mail queue is empty")
}

// WaitQueueEmpty polls until the queue is empty; on timeout it fails the
// test.
func (p *Postfix) WaitQueueEmpty(t testing.TB, timeout time.Duration) {
	t.Helper()
	if !poll(timeout, 100*time.Millisecond, p.QueueEmpty) {
		t.Fatalf("testenv: %s: queue not empty after %v:\n%s\nmaillog tail:\n%s", p.addr, timeout, p.Queue(), tail(p.Log(), 40))
	}
}

// Flush asks the queue manager to retry all deferred mail now
// (`postqueue -c DIR -f`).
func (p *Postfix) Flush() {
	p.t.Helper()
	if out, err := p.run(p.postqueueBin, "-f"); err != nil {
		p.t.Fatalf("testenv: postqueue -f: %v\n%s", err, out)
	}
}

// ProxyV2Header returns a PROXY protocol v2 PROXY header for a TCP
// connection from src to dst; both must be the same family.
func ProxyV2Header(src, dst *net.TCPAddr) []byte {
	b := []byte("\r\n\r\n\x00\r\nQUIT\n")
	b = append(b, 0x21) // version 2, command PROXY
	s4, d4 := src.IP.To4(), dst.IP.To4()
	var addrs []byte
	if s4 != nil && d4 != nil {
		b = append(b, 0x11) // AF_INET, STREAM
		addrs = append(append(addrs, s4...), d4...)
	} else {
		b = append(b, 0x21) // AF_INET6, STREAM
		addrs = append(append(addrs, src.IP.To16()...), dst.IP.To16()...)
	}
	addrs = binary.BigEndian.AppendUint16(addrs, uint16(src.Port))
	addrs = binary.BigEndian.AppendUint16(addrs, uint16(dst.Port))
	b = binary.BigEndian.AppendUint16(b, uint16(len(addrs)))
	return append(b, addrs...)
}
