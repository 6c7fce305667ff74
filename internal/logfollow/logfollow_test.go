package logfollow

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// run starts a follower and returns a channel of its lines.
func run(t *testing.T, fl *Follower) (<-chan Line, func()) {
	t.Helper()
	if fl.Poll == 0 {
		fl.Poll = 10 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan Line, 1000)
	done := make(chan error, 1)
	ready := make(chan struct{})
	fl.Ready = func() { close(ready) }
	go func() { done <- fl.Run(ctx, func(l Line) { ch <- l }) }()
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatal("follower not ready within 10s")
	}
	stop := func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
	t.Cleanup(func() {
		if ctx.Err() == nil {
			stop()
		}
	})
	return ch, stop
}

// next waits (bounded) for the next line.
func next(t *testing.T, ch <-chan Line) Line {
	t.Helper()
	select {
	case l := <-ch:
		return l
	case <-time.After(10 * time.Second):
		t.Fatal("no line within 10s")
	}
	return Line{}
}

func expect(t *testing.T, ch <-chan Line, n int64, text string) {
	t.Helper()
	l := next(t, ch)
	if l.N != n || l.Text != text {
		t.Fatalf("got line %d %q, want %d %q", l.N, l.Text, n, text)
	}
}

func appendTo(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

// A follower started on an existing log begins at its end; what is
// written later arrives, and a partial line waits for its end.
func TestFollowFromEndAndPartial(t *testing.T) {
	p := filepath.Join(t.TempDir(), "maillog")
	appendTo(t, p, "old 1\nold 2\n")
	ch, _ := run(t, &Follower{Files: []string{p}})
	appendTo(t, p, "new 3\npart")
	expect(t, ch, 3, "new 3")
	appendTo(t, p, "ial 4\r\n")
	expect(t, ch, 4, "partial 4")
}

// logrotate's default: the file is renamed and a new one created. Lines
// written to the old file before the writer reopened are not lost.
func TestRotation(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "maillog")
	appendTo(t, p, "")
	ch, _ := run(t, &Follower{Files: []string{p}})
	appendTo(t, p, "a 1\n")
	expect(t, ch, 1, "a 1")

	// The writer still has the old file open while it is renamed.
	old, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(p, p+".1"); err != nil {
		t.Fatal(err)
	}
	old.WriteString("a 2 after rename\n")
	old.Close()
	appendTo(t, p, "b 1\nb 2\n")
	expect(t, ch, 2, "a 2 after rename")
	expect(t, ch, 1, "b 1")
	expect(t, ch, 2, "b 2")
}

// copytruncate: the file is copied and cut to zero in place.
func TestTruncation(t *testing.T) {
	p := filepath.Join(t.TempDir(), "maillog")
	appendTo(t, p, "")
	ch, _ := run(t, &Follower{Files: []string{p}})
	appendTo(t, p, "first line that is long\nsecond\n")
	expect(t, ch, 1, "first line that is long")
	expect(t, ch, 2, "second")
	if err := os.Truncate(p, 0); err != nil {
		t.Fatal(err)
	}
	appendTo(t, p, "x\n") // shorter than before: seen as a truncation
	expect(t, ch, 1, "x")
	appendTo(t, p, "after truncation\n")
	expect(t, ch, 2, "after truncation")
}

// A line longer than MaxLine is handed on cut short, once, and the lines
// after it are intact; an endless line costs bounded memory.
func TestLongLine(t *testing.T) {
	p := filepath.Join(t.TempDir(), "maillog")
	appendTo(t, p, "")
	ch, _ := run(t, &Follower{Files: []string{p}, MaxLine: 100})
	appendTo(t, p, strings.Repeat("x", 250))
	l := next(t, ch)
	if !l.TooLong || len(l.Text) != 100 || l.N != 1 {
		t.Fatalf("long line: %d %v %d bytes", l.N, l.TooLong, len(l.Text))
	}
	appendTo(t, p, strings.Repeat("y", 1000)+"\nshort\n")
	expect(t, ch, 2, "short")
}

// The saved position makes a restart continue where the last run stopped,
// including lines written while it was down; a log rotated meanwhile is
// read from its start.
func TestRestartPosition(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "maillog")
	state := filepath.Join(dir, "follow.state")
	appendTo(t, p, "")
	ch, stop := run(t, &Follower{Files: []string{p}, StateFile: state})
	appendTo(t, p, "one\n")
	expect(t, ch, 1, "one")
	// The state is saved after the poll that read the line.
	deadline := time.Now().Add(10 * time.Second)
	for {
		data, _ := os.ReadFile(state)
		if strings.Contains(string(data), `"offset":4`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("state not saved: %s", data)
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	appendTo(t, p, "two\n")
	ch, stop = run(t, &Follower{Files: []string{p}, StateFile: state})
	expect(t, ch, 2, "two")
	stop()

	os.Rename(p, p+".1")
	appendTo(t, p, "fresh\n")
	ch, _ = run(t, &Follower{Files: []string{p}, StateFile: state})
	expect(t, ch, 1, "fresh")
}

// Once reads from the start, hands on a last line without a line ending,
// and returns.
func TestOnce(t *testing.T) {
	p := filepath.Join(t.TempDir(), "maillog")
	appendTo(t, p, "1\n\n3\x00\xff\nlast")
	var got []string
	err := (&Follower{Files: []string{p}, Once: true}).Run(context.Background(), func(l Line) {
		got = append(got, fmt.Sprintf("%d:%q", l.N, l.Text))
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `[1:"1" 2:"" 3:"3\x00\xff" 4:"last"]`
	if fmt.Sprint(got) != want {
		t.Fatalf("got %v, want %s", got, want)
	}
	if err := (&Follower{Files: []string{p + ".missing"}, Once: true}).Run(context.Background(), func(Line) {}); err == nil {
		t.Fatal("missing file: no error")
	}
}
