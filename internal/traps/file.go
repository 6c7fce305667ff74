package traps

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/greypit/greypit/internal/lists"
)

// Source is where a trap address was written.
type Source struct {
	File string
	Line int
}

// Files is the current set of trap addresses from the traps.files. Readers
// never block; Reload swaps the whole set at once and keeps the old one
// when a file is broken, so a typo never empties the traps.
type Files struct {
	files []string
	mu    sync.Mutex // serialises Reload
	cur   atomic.Pointer[fileSet]
}

type fileSet struct {
	addrs map[string]Source
	stamp string // sizes and modification times, to notice changes
}

// LoadFiles reads the trap files.
func LoadFiles(files []string) (*Files, error) {
	f := &Files{files: append([]string(nil), files...)}
	f.cur.Store(&fileSet{})
	if err := f.Reload(); err != nil {
		return nil, err
	}
	return f, nil
}

// Reload reads every file again. On error the current set stays.
func (f *Files) Reload() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	set := &fileSet{addrs: map[string]Source{}, stamp: stamp(f.files)}
	var errs []error
	for _, name := range f.files {
		if err := set.load(name); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("traps.files: %w", err)
	}
	f.cur.Store(set)
	return nil
}

func (s *fileSet) load(name string) error {
	return lists.ScanFile(name, func(n int, line string) error {
		addr, ok, err := ParseLine(line)
		if _, dup := s.addrs[addr]; ok && !dup {
			s.addrs[addr] = Source{File: name, Line: n}
		}
		return err
	})
}

// ParseLine parses one line of a trap file: a mail address, "#" starts a
// comment, blank lines hold none (ok false). The address is returned in
// its canonical form (see Canonical).
func ParseLine(line string) (addr string, ok bool, err error) {
	text, _, _ := strings.Cut(line, "#")
	text = strings.TrimSpace(text)
	if text == "" {
		return "", false, nil
	}
	addr, err = Canonical(text)
	if err != nil {
		return "", false, err
	}
	return addr, true, nil
}

// Lookup reports where addr (canonical) is listed.
func (f *Files) Lookup(addr string) (Source, bool) {
	if f == nil {
		return Source{}, false
	}
	src, ok := f.cur.Load().addrs[addr]
	return src, ok
}

// Len is the number of distinct addresses.
func (f *Files) Len() int {
	if f == nil {
		return 0
	}
	return len(f.cur.Load().addrs)
}

// stamp summarises the files' sizes and modification times.
func stamp(files []string) string {
	var b strings.Builder
	for _, name := range files {
		fi, err := os.Stat(name)
		if err != nil {
			fmt.Fprintf(&b, "%s:missing;", name)
			continue
		}
		fmt.Fprintf(&b, "%s:%d:%d;", name, fi.Size(), fi.ModTime().UnixNano())
	}
	return b.String()
}

// Watch reloads the files when one of them changes (polled every interval)
// and whenever hup delivers, until ctx is done. A change is read once it
// has held still for one interval, so a file caught between truncation and
// rewrite does not empty the traps. A failed reload is logged and keeps
// the previous set; it is not retried until the files change again.
func (f *Files) Watch(ctx context.Context, every time.Duration, hup <-chan os.Signal, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	failed, seen := "", ""
	var seenAt time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		case <-t.C:
			st := stamp(f.files)
			if st == f.cur.Load().stamp || st == failed {
				continue
			}
			if st != seen || time.Since(seenAt) < every { // just changed, or still changing
				if st != seen {
					seen, seenAt = st, time.Now()
				}
				continue
			}
		}
		st := stamp(f.files)
		if err := f.Reload(); err != nil {
			failed = st
			log.Error("trap files reload failed; keeping the previous traps", "err", err)
			continue
		}
		failed = ""
		log.Info("reloaded trap files", "traps", f.Len())
	}
}
