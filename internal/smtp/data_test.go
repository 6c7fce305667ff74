package smtp

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestDotReader(t *testing.T) {
	long := strings.Repeat("x", MaxTextLine-2)
	tests := []struct {
		name string
		in   string
		max  int64
		want string
		err  error // nil: clean end
		rest string
	}{
		{"simple", "Subject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n", 0, "Subject: x\r\n\r\nbody\r\n", nil, "QUIT\r\n"},
		{"empty body", ".\r\nQUIT\r\n", 0, "", nil, "QUIT\r\n"},
		{"empty line body", "\r\n.\r\n", 0, "\r\n", nil, ""},
		{"dot stuffing", "..\r\n..x\r\n.y\r\n...\r\n.\r\n", 0, ".\r\n.x\r\ny\r\n..\r\n", nil, ""},
		{"dot not at line start", "a.\r\n a\r\n.\r\n", 0, "a.\r\n a\r\n", nil, ""},
		{"max text line", long + "\r\n.\r\n", 0, long + "\r\n", nil, ""},
		{"stuffed max text line", "." + long[1:] + "\r\n.\r\n", 0, long[1:] + "\r\n", nil, ""},
		{"too long line", long + "x\r\n.\r\n", 0, "", ErrLineTooLong, ".\r\n"},
		{"bare LF dot smuggling", "a\r\n\n.\n\r\nMAIL FROM:<x@y>\r\n.\r\n", 0, "a\r\n", ErrBareLF, ".\n\r\nMAIL FROM:<x@y>\r\n.\r\n"},
		{"LF dot CRLF", "a\n.\r\n", 0, "", ErrBareLF, ".\r\n"},
		{"CR dot CR", "a\r.\r\r\n.\r\n", 0, "", ErrBareCR, ".\r\n"},
		{"bare CR", "a\rb\r\n.\r\n", 0, "", ErrBareCR, ".\r\n"},
		{"dot CR LF variant", ".\r\r\n.\r\n", 0, "", ErrBareCR, ".\r\n"},
		{"NUL passes", "a\x00b\r\n.\r\n", 0, "a\x00b\r\n", nil, ""},
		{"eof", "abc\r\n", 0, "abc\r\n", io.ErrUnexpectedEOF, ""},
		{"eof mid line", "abc", 0, "", io.ErrUnexpectedEOF, ""},
		{"eof at start", "", 0, "", io.ErrUnexpectedEOF, ""},
		{"at cap", "12345678\r\n.\r\nQUIT\r\n", 10, "12345678\r\n", nil, "QUIT\r\n"},
		{"over cap", "12345678\r\nabc\r\n..\r\n.\r\nQUIT\r\n", 10, "12345678\r\n", ErrTooBig, "QUIT\r\n"},
		{"over cap mid line", "123456789012\r\nabc\r\n.\r\nQUIT\r\n", 10, "1234567890", ErrTooBig, "QUIT\r\n"},
		{"over cap long line drained", "12345678901\r\n" + long + "xx\r\n.\r\nQUIT\r\n", 10, "1234567890", ErrTooBig, "QUIT\r\n"},
		{"over cap bare LF", "12345678901\r\na\n.\r\nQUIT\r\n", 10, "1234567890", ErrBareLF, ".\r\nQUIT\r\n"},
		{"over cap eof", "12345678901\r\nabc\r\n", 10, "1234567890", io.ErrUnexpectedEOF, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := bufio.NewReaderSize(strings.NewReader(tt.in), 16)
			got, err := io.ReadAll(NewDotReader(r, tt.max))
			if !errors.Is(err, tt.err) || err == nil && tt.err != nil {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if string(got) != tt.want {
				t.Errorf("data = %q, want %q", got, tt.want)
			}
			if rest, _ := io.ReadAll(r); string(rest) != tt.rest {
				t.Errorf("rest = %q, want %q", rest, tt.rest)
			}
		})
	}
}

func TestDotReaderSticky(t *testing.T) {
	r := bufio.NewReader(strings.NewReader("a\r\n.\r\nQUIT\r\n"))
	d := NewDotReader(r, 0)
	if b, err := io.ReadAll(d); err != nil || string(b) != "a\r\n" {
		t.Fatalf("got %q, %v", b, err)
	}
	for range 2 {
		if n, err := d.Read(make([]byte, 10)); n != 0 || err != io.EOF {
			t.Fatalf("Read after end = %d, %v", n, err)
		}
	}
	if r.Buffered() != len("QUIT\r\n") {
		t.Errorf("read past the end of data: %d buffered", r.Buffered())
	}

	d = NewDotReader(bufio.NewReader(strings.NewReader("123\r\n.\r\n")), 2)
	if b, err := io.ReadAll(d); err != ErrTooBig || string(b) != "12" {
		t.Fatalf("got %q, %v", b, err)
	}
	if _, err := d.Read(make([]byte, 1)); err != ErrTooBig {
		t.Errorf("second Read err = %v", err)
	}
}

// Small reads must see the same bytes.
func TestDotReaderSmallReads(t *testing.T) {
	in := "line one\r\n..two\r\n\r\n.\r\n"
	d := NewDotReader(bufio.NewReader(strings.NewReader(in)), 0)
	var got []byte
	p := make([]byte, 3)
	for {
		n, err := d.Read(p)
		got = append(got, p[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if string(got) != "line one\r\n.two\r\n\r\n" {
		t.Errorf("got %q", got)
	}
}
