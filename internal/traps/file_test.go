package traps

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseLine(t *testing.T) {
	for _, tt := range []struct {
		line, addr string
		ok, err    bool
	}{
		{"", "", false, false},
		{"   # only a comment", "", false, false},
		{"Bait@Example.ORG", "bait@example.org", true, false},
		{"  <bait@example.org>  # published on /contact", "bait@example.org", true, false},
		{"bait", "", false, true},
		{"two words@example.org", "", false, true},
		{"@example.org", "", false, true},
	} {
		addr, ok, err := ParseLine(tt.line)
		if addr != tt.addr || ok != tt.ok || (err != nil) != tt.err {
			t.Errorf("ParseLine(%q) = %q %v %v", tt.line, addr, ok, err)
		}
	}
}

func TestFilesLoad(t *testing.T) {
	a := writeFile(t, "a", "\uFEFFone@example.org\ntwo@example.org\n")
	b := writeFile(t, "b", "# b\nTWO@example.org\nthree@example.org")
	f, err := LoadFiles([]string{a, b})
	if err != nil {
		t.Fatal(err)
	}
	if f.Len() != 3 {
		t.Errorf("Len %d", f.Len())
	}
	if src, ok := f.Lookup("two@example.org"); !ok || src.File != a || src.Line != 2 {
		t.Errorf("two: %+v %v (the first listing wins)", src, ok)
	}
	if src, ok := f.Lookup("one@example.org"); !ok || src.Line != 1 {
		t.Errorf("one after a BOM: %+v %v", src, ok)
	}
	bad := writeFile(t, "bad", "ok@example.org\nnot an address\n")
	if _, err := LoadFiles([]string{bad}); err == nil || !strings.Contains(err.Error(), bad+":2:") || !strings.Contains(err.Error(), "traps.files") {
		t.Errorf("broken file: %v", err)
	}
	if _, err := LoadFiles([]string{bad + ".missing"}); err == nil {
		t.Error("missing file loaded")
	}
	var none *Files
	if _, ok := none.Lookup("one@example.org"); ok || none.Len() != 0 {
		t.Error("nil Files")
	}
}

// waitTraps polls f until cond holds; reloads happen on Watch's goroutine.
func waitTraps(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Watch reloads a changed file, keeps the old set when the file breaks,
// and reloads on a hang-up signal.
func TestWatch(t *testing.T) {
	p := writeFile(t, "traps", "one@example.org\n")
	f, err := LoadFiles([]string{p})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	hup := make(chan os.Signal, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.Watch(ctx, 5*time.Millisecond, hup, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}()
	defer func() { cancel(); <-done }()

	os.WriteFile(p, []byte("one@example.org\ntwo@example.org\n"), 0o644)
	waitTraps(t, "the change", func() bool { _, ok := f.Lookup("two@example.org"); return ok })

	os.WriteFile(p, []byte("three@example.org\nbroken line\n"), 0o644)
	// Let several polls see the broken file.
	time.Sleep(50 * time.Millisecond) // no event to await: nothing may change
	if _, ok := f.Lookup("two@example.org"); !ok || f.Len() != 2 {
		t.Fatalf("a broken file replaced the traps: %d %v", f.Len(), f.cur.Load().addrs)
	}

	// A signal re-reads even an unchanged stamp (an edit within the
	// file system's timestamp granularity).
	os.WriteFile(p, []byte("four@example.org\n"), 0o644)
	hup <- os.Interrupt
	waitTraps(t, "the reload after the signal", func() bool { _, ok := f.Lookup("four@example.org"); return ok && f.Len() == 1 })
}
