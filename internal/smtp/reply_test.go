package smtp

import (
	"bufio"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

func TestReplyBytes(t *testing.T) {
	tests := []struct {
		name string
		r    Reply
		want string
	}{
		{"one line", Reply{250, "2.0.0", []string{"OK"}}, "250 2.0.0 OK\r\n"},
		{"no enhanced", Reply{220, "", []string{"mx.example ESMTP"}}, "220 mx.example ESMTP\r\n"},
		{"multi", Reply{250, "", []string{"mx.example", "PIPELINING", "SIZE 10240000"}},
			"250-mx.example\r\n250-PIPELINING\r\n250 SIZE 10240000\r\n"},
		{"multi enhanced", Reply{451, "4.7.1", []string{"Greylisted", "try later"}},
			"451-4.7.1 Greylisted\r\n451 4.7.1 try later\r\n"},
		{"no lines", Reply{354, "", nil}, "354\r\n"},
		{"no lines enhanced", Reply{250, "2.1.0", nil}, "250 2.1.0\r\n"},
		{"empty lines", Reply{250, "", []string{"", ""}}, "250-\r\n250\r\n"},
		{"CRLF injection", Reply{250, "", []string{"a\r\nMAIL FROM:<x@y>", "b\nc\rd\x00e"}},
			"250-a  MAIL FROM:<x@y>\r\n250 b c d e\r\n"},
		{"tab kept, non-ASCII replaced", Reply{250, "", []string{"a\tb\xc3\xa9\xff"}}, "250 a\tb??\r\n"},
		{"bad enhanced dropped", Reply{250, "2.0.0\r\nX", []string{"OK"}}, "250 OK\r\n"},
		{"bad enhanced dropped 2", Reply{250, "2.0", []string{"OK"}}, "250 OK\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(tt.r.Bytes()); got != tt.want {
				t.Errorf("Bytes() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestReplyBytesSplit(t *testing.T) {
	for _, text := range []string{
		strings.Repeat("x", 1500),
		strings.Repeat("word ", 300),
		strings.Repeat("x", 500),
	} {
		b := Reply{Code: 550, Enhanced: "5.7.1", Lines: []string{text}}.Bytes()
		lines := strings.SplitAfter(string(b), "\r\n")
		lines = lines[:len(lines)-1]
		var joined int
		for i, l := range lines {
			if len(l) > maxReplyLine {
				t.Errorf("line %d is %d octets", i, len(l))
			}
			sep := "-"
			if i == len(lines)-1 {
				sep = " "
			}
			if !strings.HasPrefix(l, "550"+sep+"5.7.1 ") {
				t.Errorf("line %d = %q", i, l)
			}
			joined += len(l) - len("550-5.7.1 \r\n")
		}
		if joined < len(strings.ReplaceAll(text, " ", "")) {
			t.Errorf("text lost: %d of %d octets", joined, len(text))
		}
		// The split reply must parse back.
		rep, _, err := ParseReply(bufio.NewReader(strings.NewReader(string(b))))
		if err != nil || rep.Code != 550 || rep.Enhanced != "5.7.1" {
			t.Errorf("reparse: %+v, %v", rep, err)
		}
	}
	// A 512-octet line is not split.
	l := Reply{Code: 250, Lines: []string{strings.Repeat("y", 512-6)}}.Bytes()
	if len(l) != 512 || strings.Count(string(l), "\r\n") != 1 {
		t.Errorf("512-octet line rendered as %d octets, %d lines", len(l), strings.Count(string(l), "\r\n"))
	}
}

func TestParseReply(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Reply
		raw  string
		err  error
		rest string
	}{
		{"multi", "250-a\r\n250 b\r\n", Reply{250, "", []string{"a", "b"}}, "250-a\r\n250 b\r\n", nil, ""},
		{"single", "220 mx.example ESMTP\r\nNEXT", Reply{220, "", []string{"mx.example ESMTP"}},
			"220 mx.example ESMTP\r\n", nil, "NEXT"},
		{"code only", "354\r\n", Reply{354, "", []string{""}}, "354\r\n", nil, ""},
		{"empty continuation", "250-\r\n250 ok\r\n", Reply{250, "", []string{"", "ok"}}, "250-\r\n250 ok\r\n", nil, ""},
		{"enhanced", "451-4.7.1 Greylisted\r\n451 4.7.1 later\r\n", Reply{451, "4.7.1", []string{"Greylisted", "later"}},
			"451-4.7.1 Greylisted\r\n451 4.7.1 later\r\n", nil, ""},
		{"enhanced alone", "250 2.0.0\r\n", Reply{250, "2.0.0", []string{""}}, "250 2.0.0\r\n", nil, ""},
		{"enhanced differs", "250-2.0.0 a\r\n250 2.1.0 b\r\n", Reply{250, "", []string{"2.0.0 a", "2.1.0 b"}},
			"250-2.0.0 a\r\n250 2.1.0 b\r\n", nil, ""},
		{"enhanced partial", "250-mx\r\n250 2.0.0 b\r\n", Reply{250, "", []string{"mx", "2.0.0 b"}},
			"250-mx\r\n250 2.0.0 b\r\n", nil, ""},
		{"enhanced wrong class", "250 5.0.0 x\r\n", Reply{250, "", []string{"5.0.0 x"}}, "250 5.0.0 x\r\n", nil, ""},
		{"not enhanced", "250 2.0.0x\r\n", Reply{250, "", []string{"2.0.0x"}}, "250 2.0.0x\r\n", nil, ""},
		{"mismatched codes", "250-a\r\n251 b\r\n", Reply{}, "250-a\r\n251 b\r\n", ErrBadReply, ""},
		{"bad separator", "250_a\r\n", Reply{}, "250_a\r\n", ErrBadReply, ""},
		{"short", "25\r\n", Reply{}, "25\r\n", ErrBadReply, ""},
		{"code out of range", "199 x\r\n", Reply{}, "199 x\r\n", ErrBadReply, ""},
		{"code out of range 2", "260 x\r\n", Reply{}, "260 x\r\n", ErrBadReply, ""},
		{"eof", "", Reply{}, "", io.EOF, ""},
		{"eof mid reply", "250-a\r\n", Reply{}, "250-a\r\n", io.ErrUnexpectedEOF, ""},
		{"bare LF", "250 a\n", Reply{}, "", ErrBareLF, ""},
		{"too many lines", strings.Repeat("250-x\r\n", 101) + "250 x\r\n", Reply{}, strings.Repeat("250-x\r\n", 100),
			ErrBadReply, "250-x\r\n250 x\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := bufio.NewReader(strings.NewReader(tt.in))
			got, raw, err := ParseReply(r)
			if !errors.Is(err, tt.err) || err == nil && tt.err != nil {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if !reflect.DeepEqual(got, tt.want) && !(tt.err != nil && got.Code == 0 && got.Lines == nil) {
				t.Errorf("reply = %#v, want %#v", got, tt.want)
			}
			if string(raw) != tt.raw {
				t.Errorf("raw = %q, want %q", raw, tt.raw)
			}
			if rest, _ := io.ReadAll(r); string(rest) != tt.rest {
				t.Errorf("rest = %q, want %q", rest, tt.rest)
			}
		})
	}
	// 100 lines is the most accepted.
	in := strings.Repeat("250-x\r\n", 99) + "250 x\r\n"
	if rep, _, err := ParseReply(bufio.NewReader(strings.NewReader(in))); err != nil || len(rep.Lines) != 100 {
		t.Errorf("100 lines: %d, %v", len(rep.Lines), err)
	}
}

// Bytes and ParseReply agree.
func TestReplyRoundTrip(t *testing.T) {
	for _, r := range []Reply{
		{250, "2.0.0", []string{"a", "b", "c"}},
		{250, "", []string{"mx", "PIPELINING"}},
		{554, "5.7.1", []string{""}},
		{221, "", []string{"bye"}},
	} {
		got, raw, err := ParseReply(bufio.NewReader(strings.NewReader(string(r.Bytes()))))
		if err != nil || !reflect.DeepEqual(got, r) || string(raw) != string(r.Bytes()) {
			t.Errorf("round trip of %#v = %#v, %q, %v", r, got, raw, err)
		}
	}
}
