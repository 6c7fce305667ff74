package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/greypit/greypit/internal/testenv"
)

// The store's file system fills up under a running daemon: nothing that
// was acknowledged is lost and nothing is let through that has not been
// written. New tuples are still greylisted (from memory), a retry whose
// pass cannot be written gets 451 4.3.0 instead of the backend's 250, a
// white host's mail is still spliced to Postfix; once space is back the
// retry passes, and after kill -9 and a restart every white entry
// acknowledged before is there.
func TestDiskFull(t *testing.T) {
	testenv.RequireRoot(t) // mounting a small tmpfs
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount a 1 MiB tmpfs for the store: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v\n%s", mnt, err, out)
		}
	})
	pf := backend(t, testenv.ModeProxy)
	paddr := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	g := startGreypit(t, greypitOpts{backend: pf.Addr(),
		extra: "\n[policy]\nlisten = \"" + paddr + "\"\n", state: mnt, sets: []string{"log.level=info"}})

	// A passes greylisting while there is space: its client is white.
	r := g.swaks("127.0.0.61", "alice@example.test", "before")
	firstA := time.Now()
	if got := replyTo(r, "RCPT TO"); !strings.HasPrefix(got, "451 4.7.1") {
		t.Fatalf("A's first attempt: %q\n%s", got, r)
	}
	// B's first attempt too, and its sighting reaches the file (the
	// flush runs every second; db list writes pending sightings first).
	r = g.swaks("127.0.0.62", "bob@example.test", "blocked pass")
	firstB := time.Now()
	if got := replyTo(r, "RCPT TO"); !strings.HasPrefix(got, "451 4.7.1") {
		t.Fatalf("B's first attempt: %q\n%s", got, r)
	}
	if out, code := g.DB("list", "-type", "grey"); code != 0 || !strings.Contains(out, "bob@example.test") {
		t.Fatalf("B's sighting not listed (exit %d):\n%s", code, out)
	}
	waitUntil(firstA.Add(passDelay))
	if r = g.swaks("127.0.0.61", "alice@example.test", "before"); r.Code != 0 {
		t.Fatalf("A's retry was not delivered:\n%s", r)
	}
	pf.WaitMessages(t, 1, 20*time.Second)

	fill := fillFS(t, mnt)

	// New tuples over the policy listener, until a flush has to grow the
	// file and fails for want of space. Every answer defers; none lets a
	// new tuple through.
	c, err := net.Dial("tcp", paddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	flushFailed := regexp.MustCompile(`greylist flush failed.*no space left on device`)
	for i := 0; ; i++ {
		if i%500 == 0 && flushFailed.MatchString(g.Log()) {
			t.Logf("a flush failed for want of space after %d new tuples", i)
			break
		}
		if i == 200000 {
			t.Fatalf("%d new tuples on a full file system and no flush failed:\n%s", i, g.Log())
		}
		req := fmt.Sprintf("request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=10.9.%d.%d\n"+
			"client_name=unknown\nsender=%s@example.org\nrecipient=kim@example.test\n\n", i>>8&255, i&255, letters(i))
		if l := askPolicy(t, c, br, req); !strings.HasPrefix(l, "action=DEFER_IF_PERMIT") {
			t.Fatalf("new tuple %d on a full disk answered %q", i, l)
		}
	}

	// B's retry is due, but its pass cannot be written: a temporary
	// failure, not the backend's 250.
	waitUntil(firstB.Add(passDelay))
	r = g.swaks("127.0.0.62", "bob@example.test", "blocked pass")
	if got := replyTo(r, "RCPT TO"); !strings.HasPrefix(got, "451 4.3.0") || r.Code == 0 {
		t.Fatalf("B's retry on a full disk: RCPT %q (exit %d), want 451 4.3.0\n%s", got, r.Code, r)
	}
	// The white host is only read: its mail still reaches Postfix.
	if r = g.swaks("127.0.0.61", "carol@example.test", "white on a full disk"); r.Code != 0 {
		t.Fatalf("white host on a full disk:\n%s", r)
	}
	pf.WaitMessages(t, 2, 20*time.Second)

	// Space again: the pending sightings are written and B's retry passes.
	if err := os.Remove(fill); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		r = g.swaks("127.0.0.62", "bob@example.test", "blocked pass")
		if r.Code == 0 {
			break
		}
		if got := replyTo(r, "RCPT TO"); !strings.HasPrefix(got, "451 4.3.0") || time.Now().After(deadline) {
			t.Fatalf("B's retry with space again: %q\n%s\n%s", got, r, g.Log())
		}
	}
	pf.WaitMessages(t, 3, 20*time.Second)

	g.Kill9()
	g.Start()
	for _, host := range []string{"127.0.0.61", "127.0.0.62"} {
		if out, code := g.DB("why", host); code != 0 || !strings.Contains(out, "WHITE") {
			t.Errorf("after kill -9 and restart, %s (exit %d):\n%s", host, code, out)
		}
	}
	if n := len(pf.Messages()); n != 3 {
		t.Errorf("backend has %d messages, want the 3 that got a 250", n)
	}
}

// fillFS writes zeros to a file in dir until the file system is full and
// returns the file's name.
func fillFS(t *testing.T, dir string) string {
	t.Helper()
	name := filepath.Join(dir, "filler")
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for i := 0; ; i++ {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling %s: %v", dir, err)
			}
			return name
		}
		if i > 1<<20 {
			t.Fatalf("%s never filled up", dir)
		}
	}
}
