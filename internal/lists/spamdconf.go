package lists

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// A spamd.conf file (spamd.conf(5), getcap(3) syntax) names lists in the
// order its "all" entry gives:
//
//	all:\
//		:mylist:mywhite:
//	mylist:\
//		:black:\
//		:msg="Your address %A is listed here":\
//		:method=file:\
//		:file=/etc/greypit/mylist.txt:
//
// Only method=file is read: greypit fetches nothing from the network, a
// cron job can. A :white: list removes its addresses from the black list
// just before it in "all", as in spamd-setup(8).

// spamdEntry is one getcap record: its names and capabilities.
type spamdEntry struct {
	names []string
	caps  map[string]string // "black" -> "", "msg" -> the raw value
	line  int
}

// spamdList is one list named in "all".
type spamdList struct {
	name, msg, file string
	black           bool
}

// parseSpamdConf parses the text of a spamd.conf into its lists, in the
// order of "all". dir resolves relative file= and msg file names; readMsg
// reads an unquoted msg= file (nil: such a msg is an error).
func parseSpamdConf(text, dir string, readMsg func(string) (string, error)) ([]spamdList, error) {
	entries, err := parseGetcap(text)
	if err != nil {
		return nil, err
	}
	byName := map[string]*spamdEntry{}
	for i := range entries {
		for _, n := range entries[i].names {
			if _, dup := byName[n]; !dup {
				byName[n] = &entries[i]
			}
		}
	}
	all := byName["all"]
	if all == nil {
		return nil, errors.New(`no "all" entry naming the lists to use`)
	}
	var out []spamdList
	for _, name := range all.order() {
		e := byName[name]
		if e == nil {
			return nil, fmt.Errorf("line %d: all: list %q has no entry", all.line, name)
		}
		l, err := e.list(name, dir, readMsg)
		if err != nil {
			return nil, fmt.Errorf("line %d: %s: %w", e.line, name, err)
		}
		if !l.black && (len(out) == 0 || !out[len(out)-1].black) {
			return nil, fmt.Errorf("line %d: %s: a white list must follow a black list in all", e.line, name)
		}
		out = append(out, l)
	}
	return out, nil
}

// order returns the list names of the "all" entry: its capabilities in
// the order written, which parseGetcap keeps under "\x00order".
func (e *spamdEntry) order() []string {
	return strings.Split(e.caps["\x00order"], ":")[1:]
}

func (e *spamdEntry) list(name, dir string, readMsg func(string) (string, error)) (spamdList, error) {
	_, black := e.caps["black"]
	_, white := e.caps["white"]
	if black == white {
		return spamdList{}, errors.New("needs exactly one of :black: and :white:")
	}
	if m := e.caps["method"]; m != "file" {
		return spamdList{}, fmt.Errorf("method=%s is not supported: greypit reads local files only (method=file); fetch the list with a cron job", m)
	}
	file := e.caps["file"]
	if file == "" {
		return spamdList{}, errors.New("file= is missing")
	}
	if !filepath.IsAbs(file) {
		file = filepath.Join(dir, file)
	}
	l := spamdList{name: name, file: file, black: black}
	if black {
		raw, ok := e.caps["msg"]
		if !ok {
			return spamdList{}, errors.New("a black list needs msg=")
		}
		msg, quoted, err := unquoteCap(raw)
		if err != nil {
			return spamdList{}, fmt.Errorf("msg: %w", err)
		}
		if !quoted {
			if readMsg == nil {
				return spamdList{}, errors.New("msg: an unquoted msg names a file, which is not allowed here")
			}
			if !filepath.IsAbs(msg) {
				msg = filepath.Join(dir, msg)
			}
			if msg, err = readMsg(msg); err != nil {
				return spamdList{}, fmt.Errorf("msg file: %w", err)
			}
		}
		l.msg = cleanMessage(msg)
	}
	return l, nil
}

// cleanMessage makes a listing message fit one SMTP reply line: control
// characters become spaces, runs of space collapse, and it is bounded.
func cleanMessage(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > maxMessage {
		s = strings.ToValidUTF8(s[:maxMessage], "")
	}
	return s
}

// maxMessage bounds a listing message; a reply line is at most 512 bytes
// (RFC 5321 §4.5.3.1.5) and the message shares it with the client address.
const maxMessage = 200

// parseGetcap splits getcap(3) text into records: "#" comment lines,
// "\" at the end of a line continues it, fields are separated by ":"
// except inside double quotes. A line that starts with blanks and ":"
// also continues the record before it, so a hand-written file without
// backslashes reads as meant.
func parseGetcap(text string) ([]spamdEntry, error) {
	var (
		out  []spamdEntry
		rec  strings.Builder
		at   int
		cont bool
	)
	flush := func() error {
		s := rec.String()
		rec.Reset()
		if strings.TrimSpace(s) == "" {
			return nil
		}
		e, err := parseRecord(s, at)
		if err != nil {
			return err
		}
		out = append(out, e)
		return nil
	}
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSuffix(line, "\r")
		trimmed := strings.TrimLeft(line, " \t")
		if !cont && strings.HasPrefix(trimmed, "#") {
			continue
		}
		startsField := strings.HasPrefix(trimmed, ":")
		if !cont && !(startsField && rec.Len() > 0) {
			if err := flush(); err != nil {
				return nil, err
			}
			at = i + 1
		}
		body, more := strings.CutSuffix(line, "\\")
		if cont || startsField {
			body = strings.TrimLeft(body, " \t")
		}
		rec.WriteString(body)
		cont = more
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return out, nil
}

// parseRecord parses "name|alias:cap:cap=value:...".
func parseRecord(s string, line int) (spamdEntry, error) {
	fields, err := splitFields(s)
	if err != nil {
		return spamdEntry{}, fmt.Errorf("line %d: %w", line, err)
	}
	e := spamdEntry{caps: map[string]string{}, line: line}
	for _, n := range strings.Split(fields[0], "|") {
		if n = strings.TrimSpace(n); n != "" {
			e.names = append(e.names, n)
		}
	}
	if len(e.names) == 0 {
		return spamdEntry{}, fmt.Errorf("line %d: record without a name", line)
	}
	order := ""
	for _, f := range fields[1:] {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		k, v, _ := strings.Cut(f, "=")
		if _, dup := e.caps[k]; dup {
			continue // getcap: the first occurrence wins
		}
		e.caps[k] = v
		order += ":" + k
	}
	e.caps["\x00order"] = order
	return e, nil
}

// splitFields splits at ":" outside double quotes, keeping the quotes and
// backslash escapes for unquoteCap.
func splitFields(s string) ([]string, error) {
	var (
		out     []string
		cur     strings.Builder
		inQuote bool
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			cur.WriteByte(c)
			cur.WriteByte(s[i+1])
			i++
			continue
		case c == '"':
			inQuote = !inQuote
		case c == ':' && !inQuote:
			out = append(out, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteByte(c)
	}
	if inQuote {
		return nil, errors.New("unterminated quoted string")
	}
	return append(out, cur.String()), nil
}

// unquoteCap decodes a msg value. A quoted value has getcap's backslash
// escapes and spamd's "%%" for "%" ("%A" is kept for the client address);
// an unquoted value is a file name.
func unquoteCap(v string) (string, bool, error) {
	if !strings.HasPrefix(v, `"`) {
		return v, false, nil
	}
	if len(v) < 2 || !strings.HasSuffix(v, `"`) || strings.HasSuffix(v, `\"`) && !strings.HasSuffix(v, `\\"`) {
		return "", true, errors.New("quoted value must end with a quote")
	}
	var b strings.Builder
	body := v[1 : len(v)-1]
	for i := 0; i < len(body); i++ {
		c := body[i]
		if c == '\\' && i+1 < len(body) {
			i++
			switch body[i] {
			case 'n', 'r', 't':
				b.WriteByte(' ')
			default:
				b.WriteByte(body[i])
			}
			continue
		}
		b.WriteByte(c)
	}
	return b.String(), true, nil
}

// FormatMessage expands a spamd listing message for client addr: "%A" is
// the address and "%%" a percent sign.
func FormatMessage(msg, addr string) string {
	if !strings.Contains(msg, "%") {
		return msg
	}
	var b strings.Builder
	for i := 0; i < len(msg); i++ {
		if msg[i] == '%' && i+1 < len(msg) {
			switch msg[i+1] {
			case 'A':
				b.WriteString(addr)
				i++
				continue
			case '%':
				b.WriteByte('%')
				i++
				continue
			}
		}
		b.WriteByte(msg[i])
	}
	return b.String()
}

// readMsgFile reads a message file named by an unquoted msg=.
func readMsgFile(name string) (string, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return "", err
	}
	if len(b) > 4096 {
		b = b[:4096]
	}
	return string(b), nil
}
