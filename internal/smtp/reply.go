package smtp

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// maxReplyLine is the reply line limit including code and CRLF
// (RFC 5321 §4.5.3.1.5).
const maxReplyLine = 512

// maxReplyLines bounds a multi-line reply read from a backend.
const maxReplyLines = 100

// Reply is an SMTP reply (RFC 5321 §4.2).
type Reply struct {
	Code     int      // three digits, e.g. 250
	Enhanced string   // RFC 3463 status such as "4.7.1", or ""
	Lines    []string // text of each line, without code or enhanced status
}

// Bytes renders r with "CODE-" on all lines but the last (§4.2.1), each
// prefixed by the enhanced status if any (RFC 2034 §4). Control characters
// in the text become spaces and non-ASCII characters "?", so text can never
// end a line early; lines are split to stay within 512 octets. An Enhanced
// that is not of the form class.subject.detail is left out.
func (r Reply) Bytes() []byte {
	prefix := strconv.Itoa(r.Code)
	enh := r.Enhanced
	if _, rest, ok := cutEnhanced(enh, 0); !ok || rest != "" {
		enh = ""
	}
	room := maxReplyLine - 2 - len(prefix) - 1
	if enh != "" {
		room -= len(enh) + 1
	}
	var lines []string
	for _, l := range r.Lines {
		l = sanitizeText(l)
		for len(l) > room {
			// Break at a space in the second half of the chunk when
			// possible, dropping it; otherwise cut hard.
			cut, next := room, room
			if i := strings.LastIndexByte(l[:room+1], ' '); i > room/2 {
				cut, next = i, i+1
			}
			lines = append(lines, l[:cut])
			l = l[next:]
		}
		lines = append(lines, l)
	}
	if len(lines) == 0 {
		lines = []string{""}
	}
	n := 0
	for _, l := range lines {
		n += len(prefix) + len(enh) + len(l) + 4
	}
	b := make([]byte, 0, n)
	for i, l := range lines {
		b = append(b, prefix...)
		if i < len(lines)-1 {
			b = append(b, '-')
		} else if enh != "" || l != "" {
			b = append(b, ' ')
		}
		if enh != "" {
			b = append(b, enh...)
			if l != "" {
				b = append(b, ' ')
			}
		}
		b = append(b, l...)
		b = append(b, '\r', '\n')
	}
	return b
}

// sanitizeText maps s onto textstring = 1*(%d09 / %d32-126) (§4.2), one
// "?" per non-ASCII character or invalid byte.
func sanitizeText(s string) string {
	clean := true
	for i := range len(s) {
		if c := s[i]; c != '\t' && (c < ' ' || c >= 0x7f) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	return strings.Map(func(c rune) rune {
		switch {
		case c == '\t' || c >= ' ' && c < 0x7f:
			return c
		case c < ' ' || c == 0x7f:
			return ' '
		default:
			return '?'
		}
	}, s)
}

// ParseReply reads one complete, possibly multi-line, reply from a server:
// at most 100 lines of at most MaxTextLine bytes, all with the same code
// (§4.2.1). raw holds the bytes of the lines read so far, even on error,
// for relaying or logging. If every line starts with the same enhanced
// status code of the reply's class, it is moved to Reply.Enhanced.
// End of stream before any byte is io.EOF, within a reply io.ErrUnexpectedEOF.
func ParseReply(r *bufio.Reader) (Reply, []byte, error) {
	var (
		rep Reply
		raw []byte
	)
	for n := 0; ; n++ {
		if n == maxReplyLines {
			return Reply{}, raw, fmt.Errorf("%w: more than %d lines", ErrBadReply, maxReplyLines)
		}
		line, err := ReadLine(r, MaxTextLine)
		if err != nil {
			if err == io.EOF && n > 0 {
				err = io.ErrUnexpectedEOF
			}
			return Reply{}, raw, err
		}
		raw = append(raw, line...)
		raw = append(raw, '\r', '\n')
		code, text, last, ok := cutReplyLine(string(line))
		if !ok {
			return Reply{}, raw, fmt.Errorf("%w: %q", ErrBadReply, line)
		}
		if n == 0 {
			rep.Code = code
		} else if code != rep.Code {
			return Reply{}, raw, fmt.Errorf("%w: code %d after %d", ErrBadReply, code, rep.Code)
		}
		rep.Lines = append(rep.Lines, text)
		if last {
			break
		}
	}
	rep.Enhanced, rep.Lines = splitEnhanced(rep.Code, rep.Lines)
	return rep, raw, nil
}

// cutReplyLine splits Reply-code [ ("-" / SP) textstring ]; the code is
// %x32-35 %x30-35 %x30-39 (§4.2).
func cutReplyLine(l string) (code int, text string, last, ok bool) {
	if len(l) < 3 || l[0] < '2' || l[0] > '5' || l[1] < '0' || l[1] > '5' || !isDigit(l[2]) {
		return 0, "", false, false
	}
	code = int(l[0]-'0')*100 + int(l[1]-'0')*10 + int(l[2]-'0')
	switch {
	case len(l) == 3:
		return code, "", true, true
	case l[3] == ' ':
		return code, l[4:], true, true
	case l[3] == '-':
		return code, l[4:], false, true
	}
	return 0, "", false, false
}

// splitEnhanced moves a status code shared by every line out of the text.
func splitEnhanced(code int, lines []string) (string, []string) {
	var enh string
	rest := make([]string, len(lines))
	for i, l := range lines {
		e, r, ok := cutEnhanced(l, code/100)
		if !ok || i > 0 && e != enh {
			return "", lines
		}
		enh, rest[i] = e, r
	}
	return enh, rest
}

// cutEnhanced splits "class.subject.detail[ SP text]" (RFC 3463 §2): class
// 2, 4 or 5 (equal to class if that is not 0), subject and detail 1*3digit.
func cutEnhanced(s string, class int) (enh, rest string, ok bool) {
	if len(s) < 5 || s[0] != '2' && s[0] != '4' && s[0] != '5' || s[1] != '.' {
		return "", "", false
	}
	if class != 0 && int(s[0]-'0') != class {
		return "", "", false
	}
	i := 2
	for part := 0; part < 2; part++ {
		j := i
		for j < len(s) && j-i < 4 && isDigit(s[j]) {
			j++
		}
		if j == i || j-i > 3 {
			return "", "", false
		}
		i = j
		if part == 0 {
			if i >= len(s) || s[i] != '.' {
				return "", "", false
			}
			i++
		}
	}
	switch {
	case i == len(s):
		return s, "", true
	case s[i] == ' ':
		return s[:i], s[i+1:], true
	}
	return "", "", false
}
