package smtp

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestReadLine(t *testing.T) {
	a := func(n int) string { return strings.Repeat("a", n) }
	tests := []struct {
		name string
		in   string
		max  int
		want string
		err  error
		rest string // what the next read must see
	}{
		{"simple", "HELO x\r\n", 512, "HELO x", nil, ""},
		{"empty line", "\r\n", 512, "", nil, ""},
		{"exactly 512", a(510) + "\r\nNEXT", 512, a(510), nil, "NEXT"},
		{"513 too long", a(511) + "\r\nNEXT", 512, "", ErrLineTooLong, "NEXT"},
		{"much too long", a(5000) + "\r\nNEXT", 512, "", ErrLineTooLong, "NEXT"},
		{"too long then bare LF", a(600) + "\nNEXT", 512, "", ErrBareLF, "NEXT"},
		{"too long with bare CR", a(300) + "\r" + a(300) + "\r\nNEXT", 512, "", ErrBareCR, "NEXT"},
		{"bare LF", "HELO x\nNEXT", 512, "", ErrBareLF, "NEXT"},
		{"bare LF only", "\nNEXT", 512, "", ErrBareLF, "NEXT"},
		{"CR in middle", "HE\rLO\r\nNEXT", 512, "", ErrBareCR, "NEXT"},
		{"CR CR LF", "HELO\r\r\nNEXT", 512, "", ErrBareCR, "NEXT"},
		{"NUL", "HE\x00LO\r\nNEXT", 512, "", ErrNUL, "NEXT"},
		{"eof", "", 512, "", io.EOF, ""},
		{"eof in line", "HELO", 512, "", io.ErrUnexpectedEOF, ""},
		{"eof after CR", "HELO\r", 512, "", io.ErrUnexpectedEOF, ""},
		{"eof while discarding", a(600), 512, "", io.ErrUnexpectedEOF, ""},
		{"tab and high bytes pass", "a\tb\xff\r\n", 512, "a\tb\xff", nil, ""},
		{"max 2", "\r\nx\r\n", 2, "", nil, "x\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A tiny buffer exercises lines spanning several fills.
			r := bufio.NewReaderSize(strings.NewReader(tt.in), 16)
			got, err := ReadLine(r, tt.max)
			if !errors.Is(err, tt.err) || err == nil && tt.err != nil {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if string(got) != tt.want {
				t.Errorf("line = %q, want %q", got, tt.want)
			}
			if errors.Is(err, ErrOutOfSync) {
				t.Errorf("unexpected out of sync")
			}
			rest, _ := io.ReadAll(r)
			if string(rest) != tt.rest {
				t.Errorf("rest = %q, want %q", rest, tt.rest)
			}
		})
	}
}

func TestReadLinePipelined(t *testing.T) {
	in := "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n"
	r := bufio.NewReader(strings.NewReader(in))
	for _, want := range []string{"MAIL FROM:<a@b>", "RCPT TO:<c@d>", "DATA"} {
		got, err := ReadLine(r, MaxCommandLine)
		if err != nil || string(got) != want {
			t.Fatalf("got %q, %v; want %q", got, err, want)
		}
		// Nothing beyond the line may have been consumed.
		if next := strings.Index(in, want) + len(want) + 2; r.Buffered() != len(in)-next {
			t.Fatalf("buffered %d after %q, want %d", r.Buffered(), want, len(in)-next)
		}
	}
	if _, err := ReadLine(r, MaxCommandLine); err != io.EOF {
		t.Fatalf("err = %v, want EOF", err)
	}
}

func TestReadLineOutOfSync(t *testing.T) {
	in := strings.Repeat("x", MaxCommandLine+maxDiscard+10) + "\r\nNEXT\r\n"
	r := bufio.NewReader(strings.NewReader(in))
	_, err := ReadLine(r, MaxCommandLine)
	if !errors.Is(err, ErrLineTooLong) || !errors.Is(err, ErrOutOfSync) {
		t.Fatalf("err = %v, want line too long and out of sync", err)
	}
	rest, _ := io.ReadAll(r)
	if consumed := len(in) - len(rest); consumed > MaxCommandLine+maxDiscard {
		t.Errorf("consumed %d bytes, want at most %d", consumed, MaxCommandLine+maxDiscard)
	}

	// Just within the discard budget the stream stays in sync.
	in = strings.Repeat("x", maxDiscard) + "\r\nNEXT\r\n"
	r = bufio.NewReader(strings.NewReader(in))
	if _, err := ReadLine(r, MaxCommandLine); !errors.Is(err, ErrLineTooLong) || errors.Is(err, ErrOutOfSync) {
		t.Fatalf("err = %v, want line too long only", err)
	}
	if got, err := ReadLine(r, MaxCommandLine); err != nil || string(got) != "NEXT" {
		t.Fatalf("after resync got %q, %v", got, err)
	}
}

// A line delivered a byte at a time must not make the buffer grow past max.
func TestReadLineAllocBound(t *testing.T) {
	in := strings.Repeat("y", 300) + "\r\n"
	r := bufio.NewReaderSize(io.LimitReader(oneByteReader{strings.NewReader(in)}, 1<<20), 16)
	got, err := ReadLine(r, 400)
	if err != nil || len(got) != 300 {
		t.Fatalf("got %d bytes, %v", len(got), err)
	}
	if cap(got) > 400 {
		t.Errorf("cap = %d, want <= 400", cap(got))
	}
}

type oneByteReader struct{ r io.Reader }

func (o oneByteReader) Read(p []byte) (int, error) {
	if len(p) > 1 {
		p = p[:1]
	}
	return o.r.Read(p)
}
