package policy

import (
	"bufio"
	"strconv"
	"strings"
	"testing"
)

// greyAction builds in one pass what postgrey's two substitutions give
// (the first %s, then the first %r of the result).
func FuzzGreyAction(f *testing.F) {
	f.Add("Greylisted, see http://postgrey.schweikert.ch/help/%r.html", "kim@example.test", int64(300), false)
	f.Add("%r %s %r %s", "a@%r%s", int64(-1), true)
	f.Add("%%s%rr", "x", int64(0), false)
	f.Add("4.7.1 wait %s s", "", int64(9223372036854775807), true)
	f.Fuzz(func(t *testing.T, text, rcpt string, secs int64, etrn bool) {
		s := &Server{Config: Config{GreylistAction: "DEFER_IF_PERMIT", GreylistText: text}}
		r := &Request{Recipient: rcpt}
		if etrn {
			r.Has |= HasEtrnDomain
		}
		msg := text
		if etrn && (msg == "" || msg[0] < '0' || msg[0] > '9') {
			msg = "4.2.0 " + msg
		}
		msg = strings.Replace(msg, "%s", strconv.FormatInt(secs, 10), 1)
		domain := rcpt
		if i := strings.LastIndexByte(domain, '@'); i >= 0 {
			domain = domain[i+1:]
		}
		want := "DEFER_IF_PERMIT " + strings.Replace(msg, "%r", domain, 1)
		if got := s.greyAction(r, secs); got != want {
			t.Fatalf("greyAction(%q, %q, %d) = %q, want %q", text, rcpt, secs, got, want)
		}
	})
}

// BenchmarkGreyAction is the reply to a deferral with postgrey's text.
func BenchmarkGreyAction(b *testing.B) {
	s := &Server{Config: Config{GreylistAction: "DEFER_IF_PERMIT",
		GreylistText: "Greylisted, see http://postgrey.schweikert.ch/help/%r.html"}}
	r := &Request{Recipient: "kim@example.test", Has: HasEtrnDomain}
	b.ReportAllocs()
	for b.Loop() {
		s.greyAction(r, 300)
	}
}

// A request read into the previous one's Request keeps nothing of it but
// equal strings: a missing attribute is missing, a changed one changes.
func TestReadRequestReuse(t *testing.T) {
	br := bufio.NewReader(strings.NewReader("request=smtpd_access_policy\nclient_name=a\nsender=s@x\nhelo_name=h\n\n" +
		"request=smtpd_access_policy\nclient_name=b\nhelo_name=h\n\n"))
	var r Request
	if err := ReadRequest(br, &r); err != nil || r.ClientName != "a" || r.Sender != "s@x" {
		t.Fatalf("first: %+v, %v", r, err)
	}
	if err := ReadRequest(br, &r); err != nil {
		t.Fatal(err)
	}
	if r.ClientName != "b" || r.Sender != "" || r.Has&HasSender != 0 || r.HeloName != "h" || r.Request != "smtpd_access_policy" {
		t.Fatalf("second: %+v", r)
	}
}
