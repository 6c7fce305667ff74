package lists

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Listing is one block list covering an address: which list, its
// listing message (for the client's reply and `db why`) and the entry.
type Listing struct {
	Key     string `json:"key"`     // config key: lists.block, lists.drop or lists.spamd_conf
	List    string `json:"list"`    // the list's name: "block", "drop", or the spamd.conf entry name
	Message string `json:"message"` // the listing message, "%A" expanded
	Source  Source `json:"source"`
}

// blocklist is one list of lists.drop or lists.spamd_conf.
type blocklist struct {
	key, name string
	msg       string // spamd msg= ("%A" kept); "" for DROP, whose message names the SBL id
	black     *List
	except    *List // the spamd white list that follows it in "all", if any
}

// Default listing messages.
const (
	BlockMessage = "listed in local block list"
	DROPMessage  = "listed in Spamhaus DROP"
)

// Blocked returns every block list covering a, in config order: the plain
// block list first, then lists.drop, then the spamd.conf lists.
func (s *Set) Blocked(a netip.Addr) []Listing {
	if !a.IsValid() {
		return nil
	}
	a = a.Unmap()
	p := s.cur.Load()
	var out []Listing
	if src, ok := p.block.Lookup(a); ok {
		out = append(out, Listing{Key: "lists.block", List: "block", Message: BlockMessage, Source: src})
	}
	for _, b := range p.extra {
		src, ok := b.black.Lookup(a)
		if !ok {
			continue
		}
		if _, white := b.except.Lookup(a); white {
			continue
		}
		msg := FormatMessage(b.msg, a.String())
		if b.msg == "" {
			msg = DROPMessage
			if src.Note != "" {
				msg += " (" + src.Note + ")"
			}
		}
		out = append(out, Listing{Key: b.key, List: b.name, Message: msg, Source: src})
	}
	return out
}

// Counts returns the number of prefixes per list, for the reload log.
func (s *Set) Counts() map[string]int {
	p := s.cur.Load()
	m := map[string]int{"allow": p.allow.Len(), "block": p.block.Len()}
	for _, b := range p.extra {
		m[b.name] += b.black.Len()
	}
	return m
}

// loader reads list files and remembers what it read, so Poll can tell
// when one changes.
type loader struct{ sig signature }

// signature is what Poll compares: the state of every file read.
type signature map[string]fileState

type fileState struct {
	size  int64
	mtime time.Time
	ino   uint64
	err   string
}

func (s signature) equal(o signature) bool {
	if len(s) != len(o) {
		return false
	}
	for k, v := range s {
		if w, ok := o[k]; !ok || v != w {
			return false
		}
	}
	return true
}

// note records file's state before it is read: a change while it is read
// then shows at the next poll.
func (l *loader) note(file string) { l.sig[file] = statFile(file) }

func statFile(file string) fileState {
	fi, err := os.Stat(file)
	if err != nil {
		return fileState{err: err.Error()}
	}
	return fileState{size: fi.Size(), mtime: fi.ModTime(), ino: inode(fi)}
}

func (l *loader) plain(name string, files []string) (*List, error) {
	for _, f := range files {
		l.note(f)
	}
	return LoadFiles(name, files)
}

func (l *loader) extra(f Files) ([]blocklist, error) {
	var out []blocklist
	if len(f.DROP) > 0 {
		for _, file := range f.DROP {
			l.note(file)
		}
		drop, err := loadDROP("drop", f.DROP)
		if err != nil {
			return nil, err
		}
		out = append(out, blocklist{key: "lists.drop", name: "drop", black: drop})
	}
	for _, conf := range f.SpamdConf {
		bs, err := l.spamdConf(conf)
		if err != nil {
			return nil, fmt.Errorf("lists.spamd_conf %s: %w", conf, err)
		}
		out = append(out, bs...)
	}
	return out, nil
}

func (l *loader) spamdConf(conf string) ([]blocklist, error) {
	l.note(conf)
	text, err := os.ReadFile(conf)
	if err != nil {
		return nil, err
	}
	readMsg := func(name string) (string, error) {
		l.note(name)
		return readMsgFile(name)
	}
	sls, err := parseSpamdConf(string(text), filepath.Dir(conf), readMsg)
	if err != nil {
		return nil, err
	}
	var out []blocklist
	for _, sl := range sls {
		l.note(sl.file)
		tbl, err := loadSpamdFile(sl.name, sl.file)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", sl.name, err)
		}
		if sl.black {
			out = append(out, blocklist{key: "lists.spamd_conf", name: sl.name, msg: sl.msg, black: tbl})
		} else {
			// parseSpamdConf made sure a black list comes first.
			out[len(out)-1].except = tbl
		}
	}
	return out, nil
}

// Poll reloads the lists if a file changed (size, modification time or
// inode) since the last Reload or Poll tried. It reports whether it
// reloaded; on error the previous lists stay in force, and the same broken
// file is not retried until it changes again.
func (s *Set) Poll() (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := signature{}
	for f := range s.tried {
		now[f] = statFile(f)
	}
	if now.equal(s.tried) {
		return false, nil
	}
	return true, s.reload()
}

// Describe names a listing as `db why` and the verdict line show it:
// "lists.drop /etc/greypit/drop.txt:12 (1.10.16.0/20)".
func (l Listing) Describe() string {
	s := l.Key
	if l.Key == "lists.spamd_conf" {
		s += " " + l.List
	}
	return fmt.Sprintf("%s %s:%d (%s)", s, l.Source.File, l.Source.Line, l.Source.Text)
}

// Messages joins the listing messages of ls for one reply line.
func Messages(ls []Listing) string {
	var ms []string
	for _, l := range ls {
		ms = append(ms, l.Message)
	}
	return cleanMessage(strings.Join(ms, "; "))
}

func inode(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}
