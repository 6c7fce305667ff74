// Package logfollow reads log files as they grow, the way `tail -F` does:
// it notices rotation (the file renamed and a new one created) and
// truncation (logrotate's copytruncate), hands on only complete lines,
// bounds the length of a line, and can remember how far it got so that a
// restart neither re-reads a whole log nor skips what was written while it
// was down.
//
// It polls with stat(2) rather than inotify: that needs nothing beyond the
// standard library, works on every file system, and a delay of a poll
// interval is nothing for the verdicts it feeds.
package logfollow

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Line is one line of a followed file.
type Line struct {
	File string // the path as configured
	N    int64  // line number in the file, from 1; restarts after rotation or truncation
	Text string // without the line ending; at most MaxLine bytes
	// TooLong reports that the line was longer than MaxLine and Text holds
	// only its start.
	TooLong bool
}

// Follower follows a set of files.
type Follower struct {
	Files []string
	// Poll is how often the files are checked; zero means one second.
	Poll time.Duration
	// MaxLine bounds a line; zero means 16 KiB.
	MaxLine int
	// StateFile keeps the read positions across restarts; "" keeps none,
	// and then every start begins at the end of the files.
	StateFile string
	// FromStart reads the files from the beginning instead of from the
	// saved position (or the end).
	FromStart bool
	// Once reads what is there and returns; a last line without a line
	// ending is handed on too.
	Once bool
	Log  *slog.Logger
	// Ready, if set, is called once every file that exists is opened and
	// placed; lines written after it are seen.
	Ready func()
}

type position struct {
	Dev    uint64 `json:"dev"`
	Ino    uint64 `json:"ino"`
	Offset int64  `json:"offset"` // just after the last complete line handed on
	Line   int64  `json:"line"`
}

type file struct {
	path    string
	f       *os.File
	id      [2]uint64 // device and inode of f
	pos     position
	partial []byte // bytes after the last line ending
	long    bool   // discarding the rest of a line longer than MaxLine
	longN   int64  // line number of that line
	warned  bool   // missing file logged once
}

// Run follows the files and calls fn for every line, in order within a
// file, until ctx is done (or, with Once, until every file is read).
func (fl *Follower) Run(ctx context.Context, fn func(Line)) error {
	if fl.Poll <= 0 {
		fl.Poll = time.Second
	}
	if fl.MaxLine <= 0 {
		fl.MaxLine = 16 << 10
	}
	if fl.Log == nil {
		fl.Log = slog.New(slog.DiscardHandler)
	}
	saved := map[string]position{}
	if fl.StateFile != "" && !fl.FromStart {
		var err error
		if saved, err = loadState(fl.StateFile); err != nil {
			return err
		}
	}
	files := make([]*file, len(fl.Files))
	for i, p := range fl.Files {
		files[i] = &file{path: p}
		if err := fl.open(files[i], saved); err != nil {
			if fl.Once {
				return err
			}
			fl.Log.Warn("follow: cannot open log yet", "file", p, "err", err)
			files[i].warned = true
		}
	}
	defer func() {
		for _, f := range files {
			if f.f != nil {
				f.f.Close()
			}
		}
	}()
	if fl.Ready != nil {
		fl.Ready()
	}
	t := time.NewTicker(fl.Poll)
	defer t.Stop()
	buf := make([]byte, 64<<10)
	for {
		changed := false
		for _, f := range files {
			moved, err := fl.poll(f, saved, buf, fn)
			if err != nil && fl.Once {
				return err
			}
			if err != nil {
				fl.Log.Warn("follow: reading log failed", "file", f.path, "err", err)
			}
			changed = changed || moved
		}
		if changed && fl.StateFile != "" && !fl.Once {
			if err := fl.save(files); err != nil {
				fl.Log.Warn("follow: saving positions failed", "file", fl.StateFile, "err", err)
			}
		}
		if fl.Once {
			for _, f := range files {
				fl.flushPartial(f, fn)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			// What was handed on is saved, so a restart does not repeat it.
			if fl.StateFile != "" {
				if err := fl.save(files); err != nil {
					fl.Log.Warn("follow: saving positions failed", "file", fl.StateFile, "err", err)
				}
			}
			return nil
		case <-t.C:
		}
	}
}

func fileID(fi fs.FileInfo) [2]uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return [2]uint64{uint64(st.Dev), uint64(st.Ino)}
	}
	return [2]uint64{}
}

// open opens f.path and places it: at the saved position if it is the same
// file and not shorter, else at the start (a new file, or FromStart) or the
// end (first start without a saved position).
func (fl *Follower) open(f *file, saved map[string]position) error {
	h, err := os.Open(f.path)
	if err != nil {
		return err
	}
	fi, err := h.Stat()
	if err != nil {
		h.Close()
		return err
	}
	f.f, f.id, f.partial, f.long = h, fileID(fi), nil, false
	f.pos = position{Dev: f.id[0], Ino: f.id[1]}
	if saved == nil { // a file that appeared after a rotation: all of it is new
		return nil
	}
	if fl.FromStart || fl.Once {
		return nil
	}
	if p, ok := saved[f.path]; ok {
		if p.Dev == f.id[0] && p.Ino == f.id[1] && p.Offset <= fi.Size() {
			f.pos = p
		}
		// A different file: the log rotated while greypit was down; read
		// the new one from its start.
	} else {
		// First start: do not act on old history. Count its lines so
		// that line numbers stay true.
		n, err := countLines(h, fi.Size())
		if err != nil {
			h.Close()
			return err
		}
		f.pos.Offset, f.pos.Line = fi.Size(), n
	}
	if _, err := h.Seek(f.pos.Offset, io.SeekStart); err != nil {
		return err
	}
	return nil
}

// poll reads what was added to f since the last poll, following a rotation
// or truncation. It reports whether the position moved.
func (fl *Follower) poll(f *file, saved map[string]position, buf []byte, fn func(Line)) (bool, error) {
	if f.f == nil {
		if err := fl.open(f, saved); err != nil {
			return false, nil // still missing: wait for it
		}
		fl.Log.Info("follow: log opened", "file", f.path)
	}
	moved := false
	fi, statErr := os.Stat(f.path)
	if statErr == nil {
		if id := fileID(fi); id != f.id {
			// Rotated: finish the old file (the writer may have added to it
			// until it reopened), then start on the new one.
			m, err := fl.read(f, buf, fn)
			if err != nil {
				return m, err
			}
			fl.flushPartial(f, fn)
			f.f.Close()
			f.f = nil
			fl.Log.Info("follow: log rotated", "file", f.path)
			if err := fl.open(f, nil); err != nil {
				return true, err
			}
			moved = true
		} else if cur, err := f.f.Stat(); err == nil && cur.Size() < f.pos.Offset {
			// Truncated in place (copytruncate): start again at the top.
			fl.Log.Info("follow: log truncated", "file", f.path)
			if _, err := f.f.Seek(0, io.SeekStart); err != nil {
				return moved, err
			}
			f.pos.Offset, f.pos.Line, f.partial, f.long = 0, 0, nil, false
			moved = true
		}
	}
	m, err := fl.read(f, buf, fn)
	return moved || m, err
}

// read hands on the complete lines from f's current offset to its end.
func (fl *Follower) read(f *file, buf []byte, fn func(Line)) (bool, error) {
	moved := false
	for {
		n, err := f.f.Read(buf)
		if n > 0 {
			moved = true
			fl.consume(f, buf[:n], fn)
		}
		if errors.Is(err, io.EOF) || (err == nil && n == 0) {
			return moved, nil
		}
		if err != nil {
			return moved, err // *PathError: names the file
		}
	}
}

func (f *file) nextLine() int64 {
	f.pos.Line++
	return f.pos.Line
}

// countLines counts the line endings in the first size bytes of r.
func countLines(r io.Reader, size int64) (int64, error) {
	buf := make([]byte, 64<<10)
	var n int64
	lr := io.LimitReader(r, size)
	for {
		m, err := lr.Read(buf)
		n += int64(bytes.Count(buf[:m], []byte{'\n'}))
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

func (fl *Follower) consume(f *file, b []byte, fn func(Line)) {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			fl.addPartial(f, b, fn)
			return
		}
		chunk := b[:i]
		b = b[i+1:]
		if f.long {
			f.long = false
			f.pos.Offset += int64(i + 1)
			continue
		}
		f.pos.Offset += int64(len(f.partial) + i + 1) // the line's earlier bytes came in an earlier read
		text := append(f.partial, chunk...)
		f.partial = nil
		text = bytes.TrimSuffix(text, []byte("\r"))
		if len(text) > fl.MaxLine {
			fn(Line{File: f.path, N: f.nextLine(), Text: string(text[:fl.MaxLine]), TooLong: true})
			continue
		}
		fn(Line{File: f.path, N: f.nextLine(), Text: string(text)})
	}
}

// addPartial keeps the start of an unfinished line. Beyond MaxLine the line
// is handed on cut short and the rest, up to its end, is dropped, so an
// endless line costs bounded memory.
func (fl *Follower) addPartial(f *file, b []byte, fn func(Line)) {
	if f.long {
		f.pos.Offset += int64(len(b))
		return
	}
	f.partial = append(f.partial, b...)
	if len(f.partial) > fl.MaxLine {
		fn(Line{File: f.path, N: f.nextLine(), Text: string(f.partial[:fl.MaxLine]), TooLong: true})
		f.pos.Offset += int64(len(f.partial))
		f.partial, f.long = nil, true
	}
}

// flushPartial hands on a last line that has no line ending: at the end of
// a -once run, or of a rotated file that will not grow any more.
func (fl *Follower) flushPartial(f *file, fn func(Line)) {
	if len(f.partial) > 0 {
		fn(Line{File: f.path, N: f.nextLine(), Text: string(bytes.TrimSuffix(f.partial, []byte("\r")))})
		f.pos.Offset += int64(len(f.partial))
	}
	f.partial, f.long = nil, false
}

func loadState(path string) (map[string]position, error) {
	m := map[string]position{}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return nil, fmt.Errorf("follow state: %w", err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return m, nil
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("follow state %s: %w (delete it to start at the end of the logs)", path, err)
	}
	return m, nil
}

// save writes every file's position atomically (temporary file, fsync,
// rename), so a crash leaves the old state or the new one.
func (fl *Follower) save(files []*file) error {
	m := map[string]position{}
	for _, f := range files {
		if f.f != nil {
			m[f.path] = f.pos
		}
	}
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(fl.StateFile), ".follow-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), fl.StateFile)
}
