package lists

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
)

// The block list formats besides the plain address/CIDR files:
//
//   - Spamhaus DROP (and DROPv6): text lines "1.10.16.0/20 ; SBL256894"
//     with ";" comments, or JSON lines {"cidr":…,"sblid":…} with a final
//     {"type":"metadata",…} line;
//   - spamd list files as spamd-setup(8) reads them: a CIDR prefix, a range
//     "a.b.c.d - e.f.g.h" or one address per line, optionally followed by
//     a space and text that is ignored, "#" comment lines; IPv6 as well;
//     gzip-compressed or not.

// maxLine bounds one line of a list file; DROP and spamd lines are short.
const maxLine = 64 << 10

// ScanFile calls fn for every line of an operator's file, numbered from
// 1, with a leading byte-order mark (which editors add) and a trailing CR
// removed. A gzip file (by its magic bytes) is decompressed, as
// spamd-setup does. An error from fn or from reading is returned as
// "file:line: error".
func ScanFile(file string, fn func(n int, line string) error) error {
	fh, err := os.Open(file)
	if err != nil {
		return err
	}
	defer fh.Close()
	br := bufio.NewReader(fh)
	var r io.Reader = br
	if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		defer zr.Close()
		r = zr
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), maxLine)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSuffix(sc.Text(), "\r")
		if n == 1 {
			line = strings.TrimPrefix(line, "\uFEFF")
		}
		if err := fn(n, line); err != nil {
			return fmt.Errorf("%s:%d: %w", file, n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s:%d: %w", file, n+1, err)
	}
	return nil
}

// dropJSON is one line of Spamhaus' JSON DROP files.
type dropJSON struct {
	CIDR  string `json:"cidr"`
	SBLID string `json:"sblid"`
	Type  string `json:"type"`
}

// parseDROPLine parses one line of a Spamhaus DROP file, text or JSON.
// ok is false for comments, blank lines and the JSON metadata line. note
// is the SBL id, if the line has one.
func parseDROPLine(line string) (p netip.Prefix, text, note string, ok bool, err error) {
	s := strings.TrimSpace(line)
	if s == "" || s[0] == ';' || s[0] == '#' {
		return netip.Prefix{}, "", "", false, nil
	}
	if s[0] == '{' {
		var j dropJSON
		if err := json.Unmarshal([]byte(s), &j); err != nil {
			return netip.Prefix{}, "", "", false, fmt.Errorf("bad JSON line: %v", err)
		}
		if j.Type == "metadata" {
			return netip.Prefix{}, "", "", false, nil
		}
		if j.CIDR == "" {
			return netip.Prefix{}, "", "", false, errors.New(`JSON line without "cidr" (ASN-DROP files are not prefix lists)`)
		}
		s, note = j.CIDR, j.SBLID
	} else {
		s, note, _ = strings.Cut(s, ";")
		s, note = strings.TrimSpace(s), strings.TrimSpace(note)
	}
	p, err = parsePrefix(s)
	if err != nil {
		return netip.Prefix{}, "", "", false, err
	}
	if strings.ContainsAny(note, "\r\n\x00") || len(note) > 64 {
		note = ""
	}
	return p, s, note, true, nil
}

// parseSpamdLine parses one line of a spamd list file into the prefixes it
// covers (one, or several for a range). ok is false for a line without an
// entry.
func parseSpamdLine(line string) (ps []netip.Prefix, text string, ok bool, err error) {
	s := strings.TrimLeft(line, " \t")
	if s == "" || s[0] == '#' {
		return nil, "", false, nil
	}
	// "a.b.c.d - e.f.g.h": any run of spaces and dashes between the two.
	first, rest := cutField(s)
	if i := strings.IndexByte(first, '-'); i > 0 && !strings.Contains(first, "/") {
		// "a-b" without spaces.
		first, rest = first[:i], first[i:]+" "+rest
	}
	r := strings.TrimLeft(rest, " \t-")
	if len(r) < len(rest) && strings.Contains(rest[:len(rest)-len(r)], "-") {
		second, _ := cutField(r)
		from, err1 := parseAddr(first)
		to, err2 := parseAddr(second)
		if err := errors.Join(err1, err2); err != nil {
			return nil, "", false, err
		}
		ps = RangePrefixes(from, to)
		if ps == nil {
			return nil, "", false, fmt.Errorf("%q: not a range (mixed families, or the end before the start)", first+" - "+second)
		}
		return ps, first + " - " + second, true, nil
	}
	p, err := parsePrefix(first)
	if err != nil {
		return nil, "", false, err
	}
	return []netip.Prefix{p}, first, true, nil
}

// cutField splits s at the first space or tab.
func cutField(s string) (field, rest string) {
	if i := strings.IndexAny(s, " \t"); i >= 0 {
		return s[:i], s[i+1:]
	}
	return s, ""
}

// parsePrefix parses an address or CIDR prefix the way list files are
// read: masked, IPv4-mapped IPv6 unmapped, zones refused.
func parsePrefix(s string) (netip.Prefix, error) {
	p, _, ok, err := parseLine(s)
	if err == nil && !ok {
		err = errors.New("empty entry")
	}
	return p, err
}

func parseAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("%q is not an IP address", s)
	}
	return a.Unmap(), nil
}

// loadDROP reads Spamhaus DROP files into a list.
func loadDROP(name string, files []string) (*List, error) {
	l := &List{name: name, files: append([]string(nil), files...)}
	for _, f := range files {
		err := ScanFile(f, func(n int, line string) error {
			p, text, note, ok, err := parseDROPLine(line)
			if ok {
				l.insert(p, Source{File: f, Line: n, Text: text, Note: note})
			}
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("%s list: %w", name, err)
		}
	}
	return l, nil
}

// loadSpamdFile reads one spamd list file.
func loadSpamdFile(name, file string) (*List, error) {
	l := &List{name: name, files: []string{file}}
	err := ScanFile(file, func(n int, line string) error {
		ps, text, _, err := parseSpamdLine(line)
		for _, p := range ps {
			l.insert(p, Source{File: file, Line: n, Text: text})
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return l, nil
}

// insert adds p unless an entry for it exists: the first one written wins.
func (l *List) insert(p netip.Prefix, src Source) {
	if _, dup := l.table.Get(p); !dup {
		l.table.Insert(p, src)
	}
}
