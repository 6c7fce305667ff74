package smtp

import (
	"errors"
	"strings"
	"testing"
)

func TestParseCommand(t *testing.T) {
	tests := []struct {
		in        string
		verb, arg string
		ok        bool
	}{
		{"QUIT", "QUIT", "", true},
		{"quit", "QUIT", "", true},
		{"QUIT ", "QUIT", "", true},
		{"mail from:<A@B>", "MAIL", "from:<A@B>", true},
		{"MAIL FROM:<a@b> SIZE=10", "MAIL", "FROM:<a@b> SIZE=10", true},
		{"EHLO  client.example", "EHLO", "client.example", true},
		{"HELO x\t", "HELO", "x", true},
		{"NOOP a\tb", "NOOP", "a\tb", true},
		{"STARTTLS", "STARTTLS", "", true},
		{"X", "X", "", true},
		{strings.Repeat("A", 16), strings.Repeat("A", 16), "", true},
		{strings.Repeat("A", 17), "", "", false},
		{"", "", "", false},
		{" QUIT", "", "", false},
		{"MAIL:x", "", "", false},
		{"MAIL\tFROM:<a@b>", "", "", false},
		{"HE1O x", "", "", false},
		{"1234", "", "", false},
		{"HELO \x00x", "", "", false},
		{"HELO x\x01", "", "", false},
		{"HELO x\x7f", "", "", false},
		{"HELO x\r", "", "", false},
		{"HELO h\xc3\xa9llo", "HELO", "h\u00e9llo", true},
		{"HELO h\xe9llo", "", "", false}, // not UTF-8
	}
	for _, tt := range tests {
		c, err := ParseCommand([]byte(tt.in))
		if tt.ok != (err == nil) {
			t.Errorf("ParseCommand(%q) err = %v, want ok=%v", tt.in, err, tt.ok)
			continue
		}
		if err != nil {
			var re *ReplyError
			if !errors.As(err, &re) || re.Code != 500 || re.Enhanced != "5.5.2" {
				t.Errorf("ParseCommand(%q) err = %#v, want 500 5.5.2 ReplyError", tt.in, err)
			}
			continue
		}
		if c.Verb != tt.verb || c.Arg != tt.arg {
			t.Errorf("ParseCommand(%q) = %+v, want {%q %q}", tt.in, c, tt.verb, tt.arg)
		}
	}
}

func TestReplyError(t *testing.T) {
	e := &ReplyError{Code: 501, Enhanced: "5.1.7", Text: "Bad sender"}
	if got := e.Error(); got != "501 5.1.7 Bad sender" {
		t.Errorf("Error() = %q", got)
	}
	if got := string(e.Reply().Bytes()); got != "501 5.1.7 Bad sender\r\n" {
		t.Errorf("Reply().Bytes() = %q", got)
	}
	if got := (&ReplyError{Code: 500, Text: "x"}).Error(); got != "500 x" {
		t.Errorf("Error() without enhanced = %q", got)
	}
}
