package smtp

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// ReplyError is a parse error that carries the reply the session should send.
// Codes follow RFC 5321 §4.2.3 and enhanced codes RFC 3463.
type ReplyError struct {
	Code     int
	Enhanced string // e.g. "5.1.7"; may be empty
	Text     string
}

func (e *ReplyError) Error() string {
	s := strconv.Itoa(e.Code)
	if e.Enhanced != "" {
		s += " " + e.Enhanced
	}
	return s + " " + e.Text
}

// Reply returns e as a one-line reply, ready for Reply.Bytes.
func (e *ReplyError) Reply() Reply {
	return Reply{Code: e.Code, Enhanced: e.Enhanced, Lines: []string{e.Text}}
}

// Command is a parsed command line.
type Command struct {
	Verb string // upper-cased, e.g. "MAIL"
	Arg  string // the rest after the verb, original case, outer blanks trimmed
}

// maxVerb is generous: RFC 5321 verbs are 4 letters, extensions (STARTTLS)
// longer, and anything letter-only up to 16 should reach the session so it
// can answer 502 rather than 500.
const maxVerb = 16

// ParseCommand splits a line read by ReadLine (without CRLF) into verb and
// argument. Verbs are case-insensitive (RFC 5321 §2.4) and must be followed by
// a single SP or the end of the line (§4.1.1). The line must be valid UTF-8
// (non-ASCII only appears in SMTPUTF8 addresses, RFC 6531 §3.3) with no
// control characters other than HT. Errors are *ReplyError with code 500.
func ParseCommand(line []byte) (Command, error) {
	if len(line) == 0 {
		return Command{}, cmdErr("empty command")
	}
	if !utf8.Valid(line) {
		return Command{}, cmdErr("invalid UTF-8 in command")
	}
	for _, c := range line {
		switch {
		case c == 0:
			return Command{}, cmdErr("NUL character in command")
		case c < ' ' && c != '\t' || c == 0x7f:
			return Command{}, cmdErr("control character in command")
		}
	}
	i := 0
	for i < len(line) && isAlpha(line[i]) {
		i++
	}
	if i == 0 || i > maxVerb || i < len(line) && line[i] != ' ' {
		return Command{}, cmdErr("command unrecognized")
	}
	return Command{
		Verb: strings.ToUpper(string(line[:i])),
		// Trailing blanks are trimmed too: clients send "QUIT " and
		// "HELO x " often enough that rejecting them helps no one.
		Arg: strings.Trim(string(line[i:]), " \t"),
	}, nil
}

func cmdErr(text string) error {
	return &ReplyError{Code: 500, Enhanced: "5.5.2", Text: "Syntax error, " + text}
}

func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isDigit(c byte) bool { return '0' <= c && c <= '9' }
