package smtp

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// consumed reports how many bytes of br the bufio.Reader r has used.
func consumed(br *bytes.Reader, r *bufio.Reader) int {
	return int(br.Size()) - br.Len() - r.Buffered()
}

func FuzzReadLine(f *testing.F) {
	f.Add([]byte("HELO x\r\nMAIL FROM:<a@b>\r\n"), uint16(512), uint8(16))
	f.Add([]byte(strings.Repeat("a", 510)+"\r\n"), uint16(512), uint8(0))
	f.Add([]byte(strings.Repeat("a", 511)+"\r\nQUIT\r\n"), uint16(512), uint8(0))
	f.Add([]byte("a\nb\r\nc\rd\r\ne\x00\r\n"), uint16(512), uint8(0))
	f.Add([]byte("\r\n\r\n"), uint16(2), uint8(16))
	f.Add([]byte("abc\r"), uint16(3), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, maxLen uint16, bufSize uint8) {
		max := int(maxLen % 2048)
		br := bytes.NewReader(data)
		r := bufio.NewReaderSize(br, 16+int(bufSize))
		for start := 0; ; {
			line, err := ReadLine(r, max)
			pos := consumed(br, r)
			switch {
			case err == nil:
				if len(line)+2 > max {
					t.Fatalf("line of %d bytes with max %d", len(line), max)
				}
				if bytes.ContainsAny(line, "\r\n\x00") {
					t.Fatalf("line %q contains CR, LF or NUL", line)
				}
				if want := string(line) + "\r\n"; string(data[start:pos]) != want {
					t.Fatalf("consumed %q for line %q", data[start:pos], line)
				}
			case err == io.EOF:
				if pos != len(data) || start != pos {
					t.Fatalf("EOF at %d of %d", pos, len(data))
				}
				return
			case err == io.ErrUnexpectedEOF:
				if pos != len(data) {
					t.Fatalf("unexpected EOF at %d of %d", pos, len(data))
				}
				return
			case errors.Is(err, ErrOutOfSync):
				if pos-start > max+maxDiscard {
					t.Fatalf("discarded %d bytes", pos-start)
				}
				return
			case errors.Is(err, ErrLineTooLong), errors.Is(err, ErrBadLineEnding), errors.Is(err, ErrNUL):
				// The bad line was consumed through its LF, no further.
				if line != nil || pos <= start || data[pos-1] != '\n' || bytes.IndexByte(data[start:pos-1], '\n') >= 0 {
					t.Fatalf("%v: consumed %q", err, data[start:pos])
				}
			default:
				t.Fatalf("unexpected error %v", err)
			}
			start = pos
		}
	})
}

func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{"QUIT", "mail from:<A@B>", "EHLO  x ", "HELO\tx", "X\x00", "STARTTLS", "", "ABCDEFGHIJKLMNOPQ", "NOOP a\tb\x7f"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		c, err := ParseCommand(line)
		if err != nil {
			var re *ReplyError
			if !errors.As(err, &re) || re.Code != 500 {
				t.Fatalf("error %v is not a 500 ReplyError", err)
			}
			return
		}
		if len(c.Verb) == 0 || len(c.Verb) > maxVerb || strings.ToUpper(c.Verb) != c.Verb {
			t.Fatalf("bad verb %q", c.Verb)
		}
		for _, s := range []string{c.Verb, c.Arg} {
			if !utf8.ValidString(s) {
				t.Fatalf("%q is not UTF-8", s)
			}
			for i := range len(s) {
				if b := s[i]; b < ' ' && b != '\t' || b == 0x7f {
					t.Fatalf("%q contains byte %#x", s, b)
				}
			}
		}
		if c.Arg != strings.Trim(c.Arg, " \t") {
			t.Fatalf("arg %q not trimmed", c.Arg)
		}
		line2 := c.Verb
		if c.Arg != "" {
			line2 += " " + c.Arg
		}
		if c2, err := ParseCommand([]byte(line2)); err != nil || c2 != c {
			t.Fatalf("%q reparsed as %+v, %v; want %+v", line2, c2, err, c)
		}
	})
}

func pathSeeds(f *testing.F, kw string) {
	for _, s := range []string{
		"<a@b.example>", " <a@b> SIZE=100 BODY=8BITMIME", "<>", "<Postmaster>",
		"<@r1,@r2:u@c>", `<"a\"b"@c>`, "<a@[192.0.2.1]>", "<a@[IPv6:2001:db8::1]> X", "<a@b> A=B=C",
		"<a..b@c>", "<a@b> SIZE=1 size=2",
	} {
		f.Add(kw + s)
	}
}

// checkPath asserts what both path parsers promise: bounded fields, an error
// that is a ReplyError, and a result that survives String and Params.String.
func checkPath(t *testing.T, parse func(string) (Path, Params, error), kw, arg string) {
	p, ps, err := parse(arg)
	if err != nil {
		var re *ReplyError
		if !errors.As(err, &re) || re.Code != 501 {
			t.Fatalf("error %v is not a 501 ReplyError", err)
		}
		return
	}
	if len(p.Local) > MaxLocalPart || len(p.Domain) > MaxDomain || len(p.String())+2 > MaxPath {
		t.Fatalf("path %+v over limits", p)
	}
	if p.Null && (p.Local != "" || p.Domain != "") {
		t.Fatalf("null path %+v has content", p)
	}
	for _, q := range ps {
		if !isKeyword(q.Key) || q.Key != strings.ToUpper(q.Key) || q.Value != "" && !isParamValue(q.Value) {
			t.Fatalf("bad param %+v", q)
		}
	}
	again := kw + "<" + p.String() + ">" + ps.String()
	p2, ps2, err := parse(again)
	if err != nil || p2 != p || !reflect.DeepEqual(ps2, ps) {
		t.Fatalf("%q -> %+v %v; %q -> %+v %v, %v", arg, p, ps, again, p2, ps2, err)
	}
}

func FuzzParseMail(f *testing.F) {
	pathSeeds(f, "FROM:")
	f.Fuzz(func(t *testing.T, arg string) { checkPath(t, ParseMail, "FROM:", arg) })
}

func FuzzParseRcpt(f *testing.F) {
	pathSeeds(f, "TO:")
	f.Fuzz(func(t *testing.T, arg string) { checkPath(t, ParseRcpt, "TO:", arg) })
}

// unstuff is a simple model of §4.5.2 for complete, well-formed data ending
// in the "." line: split at CRLF, drop the final line, strip leading dots.
func unstuff(data []byte) []byte {
	lines := bytes.SplitAfter(data, []byte("\r\n"))
	var b []byte
	for _, l := range lines[:len(lines)-2] {
		b = append(b, bytes.TrimPrefix(l, []byte("."))...)
	}
	return b
}

func FuzzDotReader(f *testing.F) {
	f.Add([]byte("Subject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n"), int64(0), uint8(0))
	f.Add([]byte(".\r\n"), int64(0), uint8(0))
	f.Add([]byte("..\r\n.x\r\n.\r\n"), int64(0), uint8(5))
	f.Add([]byte("a\r\n\n.\n\r\nb\r\n.\r\n"), int64(0), uint8(0))
	f.Add([]byte("a\r.\r\r\n.\r\n"), int64(0), uint8(0))
	f.Add([]byte("12345678\r\nabc\r\n.\r\nQUIT\r\n"), int64(5), uint8(0))
	f.Add([]byte(strings.Repeat("x", 1100)+"\r\n.\r\n"), int64(0), uint8(200))
	f.Fuzz(func(t *testing.T, data []byte, maxSize int64, bufSize uint8) {
		br := bytes.NewReader(data)
		r := bufio.NewReaderSize(br, 16+int(bufSize))
		out, err := io.ReadAll(NewDotReader(r, maxSize))
		pos := consumed(br, r)
		for i, c := range out {
			if c == '\n' && (i == 0 || out[i-1] != '\r') || c == '\r' && (i+1 < len(out) && out[i+1] != '\n') {
				t.Fatalf("bare CR or LF at %d in %q", i, out)
			}
		}
		if maxSize > 0 && int64(len(out)) > maxSize {
			t.Fatalf("%d bytes out with cap %d", len(out), maxSize)
		}
		switch {
		case err == nil:
			if !bytes.HasSuffix(data[:pos], []byte("\n.\r\n")) && string(data[:pos]) != ".\r\n" ||
				!bytes.Equal(unstuff(data[:pos]), out) {
				t.Fatalf("consumed %q but returned %q", data[:pos], out)
			}
		case err == ErrTooBig:
			if maxSize <= 0 || int64(len(out)) != maxSize {
				t.Fatalf("ErrTooBig after %d bytes with cap %d", len(out), maxSize)
			}
			if end := data[:pos]; !bytes.HasSuffix(end, []byte("\r\n.\r\n")) {
				t.Fatalf("ErrTooBig but consumed %q", end)
			}
		case err == io.ErrUnexpectedEOF:
			if pos != len(data) {
				t.Fatalf("unexpected EOF at %d of %d", pos, len(data))
			}
		case errors.Is(err, ErrBadLineEnding), errors.Is(err, ErrLineTooLong):
		default:
			t.Fatalf("unexpected error %v", err)
		}
		// Whatever the outcome, nothing after the terminating line was read.
		if bytes.HasSuffix(data[:pos], []byte("\r\n.\r\n")) || pos == 3 && string(data[:3]) == ".\r\n" {
			if err != nil && err != ErrTooBig {
				t.Fatalf("error %v after the terminator", err)
			}
		}
	})
}

func FuzzParseReply(f *testing.F) {
	f.Add([]byte("250-a\r\n250 b\r\n"))
	f.Add([]byte("250-a\r\n251 b\r\n"))
	f.Add([]byte("451-4.7.1 Greylisted\r\n451 4.7.1 later\r\nNEXT"))
	f.Add([]byte("354\r\n"))
	f.Add([]byte("250 2.0.0\r\n"))
	f.Add([]byte("250-2.0.0 a\r\n250 2.1.0 b\r\n"))
	f.Add([]byte("220 x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		br := bytes.NewReader(data)
		r := bufio.NewReaderSize(br, 16)
		rep, raw, err := ParseReply(r)
		pos := consumed(br, r)
		if !bytes.HasPrefix(data, raw) || len(raw) > maxReplyLines*MaxTextLine {
			t.Fatalf("raw %q is not a prefix of the input", raw)
		}
		if err != nil {
			return
		}
		if pos != len(raw) {
			t.Fatalf("consumed %d bytes, raw has %d", pos, len(raw))
		}
		if rep.Code < 200 || rep.Code > 559 || len(rep.Lines) == 0 || len(rep.Lines) > maxReplyLines {
			t.Fatalf("bad reply %+v", rep)
		}
		// Re-rendering a reply of short printable lines gives the same reply.
		for l := range bytes.Lines(raw) {
			if len(l) > maxReplyLine {
				return
			}
			for _, c := range l[:len(l)-2] {
				if c != '\t' && (c < ' ' || c > '~') {
					return
				}
			}
		}
		b := rep.Bytes()
		rep2, _, err := ParseReply(bufio.NewReader(bytes.NewReader(b)))
		if err != nil || !reflect.DeepEqual(rep, rep2) {
			t.Fatalf("%q -> %#v -> %q -> %#v, %v", raw, rep, b, rep2, err)
		}
	})
}
