package cli

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/greypit/greypit/internal/store"
	"github.com/greypit/greypit/internal/testenv"
)

// `greypit check` reports every problem of a configuration's files at
// once, each naming its file and line, and exits 1; with the problems
// fixed it exits 0 and says what it found, including a store held by a
// running daemon and the backend's greeting.
func TestCheck(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	block := write("block.list", "192.0.2.0/24\nnot-an-address\n")
	trapsFile := write("traps.txt", "trap@example.test\n")
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if _, err := testenv.WriteSelfSigned("mx.example.test", cert, key); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			// A greeting over two lines, then EHLO, then QUIT.
			fmt.Fprint(c, "220-mx.example.test first line\r\n220 mx.example.test ESMTP ready\r\n")
			br := bufio.NewReader(c)
			if l, _ := br.ReadString('\n'); strings.HasPrefix(l, "EHLO ") {
				fmt.Fprint(c, "250-mx.example.test\r\n250-PIPELINING\r\n250-SIZE 1000000\r\n250 8BITMIME\r\n")
			}
			br.ReadString('\n')
			fmt.Fprint(c, "221 bye\r\n")
			c.Close()
		}
	}()
	dbPath := filepath.Join(dir, "state", "greypit.db")
	conf := write("greypit.toml", fmt.Sprintf(`
[smtp]
tls_cert = %q
tls_key = %q
[backend]
address = %q
handoff = "plain"
[store]
path = %q
[lists]
block = %q
[traps]
files = [%q, %q]
`, cert, write("garbage-key.pem", "not a key\n"), ln.Addr().String(), dbPath, block, trapsFile, filepath.Join(dir, "gone.txt")))

	run := func(args ...string) (string, int) {
		var out, errb bytes.Buffer
		code := Main(append([]string{"check", "-config", conf}, args...), nil, &out, &errb)
		return out.String() + errb.String(), code
	}
	out, code := run()
	if code != 1 {
		t.Errorf("exit %d with three broken files, want 1\n%s", code, out)
	}
	for _, want := range []string{
		"PROBLEM  lists      ", "block.list:2",
		"PROBLEM  traps      ", "gone.txt",
		"PROBLEM  tls        smtp.tls_cert/smtp.tls_key",
		"check: 3 problem(s) in " + conf,
		"ok       backend    " + ln.Addr().String() + " (plain): offers PIPELINING SIZE 1000000 8BITMIME",
		"ok       store      " + dbPath + " (created at the first start)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(dbPath); err == nil {
		t.Error("check created the store")
	}

	// Fixed, with the store held open as by a running daemon.
	b, err := store.OpenBolt(dbPath, store.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	out, code = run("-set", "lists.block=", "-set", "traps.files="+trapsFile, "-set", "smtp.tls_key="+key)
	if code != 0 {
		t.Errorf("exit %d for a good configuration\n%s", code, out)
	}
	for _, want := range []string{
		"ok       traps      1 addresses from 1 files",
		// testenv's certificate is valid for a week.
		"warning  tls        expires soon: mx.example.test",
		"ok       store      " + dbPath + " (in use by a running greypit)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "PROBLEM") {
		t.Errorf("a problem in a good configuration:\n%s", out)
	}

	// A config problem names its key, as serve's start would.
	out, code = run("-set", "greylist.pass_delay=-1s")
	if code != 1 || !strings.Contains(out, "greylist.pass_delay") {
		t.Errorf("bad value: exit %d\n%s", code, out)
	}
}

// The certificate's expiry is a warning ahead of time, not a problem.
func TestCheckCertExpiry(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if _, err := testenv.WriteSelfSigned("mx.example.test", cert, key); err != nil {
		t.Fatal(err)
	}
	var c configFlags
	c.sets = []string{"smtp.tls_cert=" + cert, "smtp.tls_key=" + key}
	cfg, err := c.load()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		at   time.Time
		want string
	}{
		// testenv's certificate is valid for a week from now.
		{time.Now().AddDate(0, 0, -30), "ok:mx.example.test"},
		{time.Now(), "warn:expires soon"},
		{time.Now().AddDate(10, 0, 0), "warn:expired"},
	} {
		var got string
		checkCert(cfg, tc.at, func(_, d string) { got = "ok:" + d }, func(_, d string) { got = "warn:" + d },
			func(_ string, err error) { got = "bad:" + err.Error() })
		if !strings.HasPrefix(got, tc.want) {
			t.Errorf("at %v: %q, want %s…", tc.at, got, tc.want)
		}
	}
}
