//go:build unix

package store

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The crash helper is this test binary re-executed with these variables set;
// as a normal test it does nothing.
const (
	crashDBEnv   = "GREYPIT_STORE_CRASH_DB"
	crashModeEnv = "GREYPIT_STORE_CRASH_MODE"
)

func TestCrashHelper(t *testing.T) {
	path := os.Getenv(crashDBEnv)
	if path == "" {
		return
	}
	b, err := OpenBolt(path, BoltOptions{Timeout: 5 * time.Second})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(2)
	}
	ctx := context.Background()
	switch os.Getenv(crashModeEnv) {
	case "refresh":
		if _, err := b.Refresh(ctx, "192.0.2.99", "crash test", "test", time.Now(), time.Hour); err != nil {
			fmt.Println("error:", err)
			os.Exit(2)
		}
		fmt.Println("ready")
	case "greycache":
		greyCacheLoad(b) // never returns
	case "busy":
		// Keep writing; every number printed has been committed.
		fmt.Println("ready")
		for i := 0; ; i++ {
			if _, _, err := b.Greylist(ctx, "tuple-"+strconv.Itoa(i), "c", time.Now(), testParams); err != nil {
				fmt.Println("error:", err)
				os.Exit(2)
			}
			fmt.Println(i)
		}
	}
	// Block until killed, or until the parent goes away and closes stdin.
	io.Copy(io.Discard, os.Stdin)
	os.Exit(3)
}

// startCrashHelper runs the helper and returns it with its stdout lines.
func startCrashHelper(t *testing.T, path, mode string) (*exec.Cmd, <-chan string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDBEnv+"="+path, crashModeEnv+"="+mode)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	return cmd, lines
}

func waitReady(t *testing.T, lines <-chan string) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("helper exited before it was ready")
			}
			if strings.HasPrefix(l, "error:") {
				t.Fatalf("helper: %s", l)
			}
			if l == "ready" {
				return
			}
		case <-timeout:
			t.Fatal("helper never became ready")
		}
	}
}

func kill(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("helper did not die of SIGKILL: %v", err)
	}
}

func reopenChecked(t *testing.T, path string) *Bolt {
	t.Helper()
	b, err := OpenBolt(path, BoltOptions{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("reopen after crash: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	if err := b.db.View(func(tx *bolt.Tx) error {
		var errs []error
		for err := range tx.Check() { // drain: the checker uses tx until it closes
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	}); err != nil {
		t.Fatalf("consistency check after crash: %v", err)
	}
	return b
}

func TestCrashKeepsCommittedRefresh(t *testing.T) {
	path := filepath.Join(t.TempDir(), "greypit.db")
	cmd, lines := startCrashHelper(t, path, "refresh")
	waitReady(t, lines)

	// The live helper holds the lock across processes.
	if _, err := OpenBolt(path, BoltOptions{Timeout: 200 * time.Millisecond}); !errors.Is(err, ErrLocked) {
		t.Fatalf("open while the helper runs: err = %v, want ErrLocked", err)
	}

	kill(t, cmd)
	b := reopenChecked(t, path)
	e, err := b.Get(context.Background(), White, "192.0.2.99")
	if err != nil {
		t.Fatalf("committed entry lost in crash: %v", err)
	}
	if e.Reason != "crash test" || e.Count != 1 {
		t.Fatalf("entry after crash = %+v", e)
	}
}

func TestCrashDuringWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "greypit.db")
	cmd, lines := startCrashHelper(t, path, "busy")
	waitReady(t, lines)
	last := -1
	for last < 200 {
		l, ok := <-lines
		if !ok {
			t.Fatalf("helper exited after %d writes", last+1)
		}
		if strings.HasPrefix(l, "error:") {
			t.Fatalf("helper: %s", l)
		}
		if i, err := strconv.Atoi(l); err == nil {
			last = i
		}
	}
	kill(t, cmd)
	for l := range lines { // acknowledged before the kill landed
		if i, err := strconv.Atoi(l); err == nil {
			last = i
		}
	}
	b := reopenChecked(t, path)
	ctx := context.Background()
	for i := 0; i <= last; i++ {
		if _, err := b.Get(ctx, Grey, "tuple-"+strconv.Itoa(i)); err != nil {
			t.Fatalf("acknowledged write %d of %d lost: %v", i, last, err)
		}
	}
	// The store is still writable.
	if _, o, err := b.Greylist(ctx, "tuple-0", "c", time.Now(), testParams); err != nil || o != GreyEarly {
		t.Fatalf("Greylist after crash = %v, %v", o, err)
	}
}
