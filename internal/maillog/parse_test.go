package maillog

import (
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestTimestamps(t *testing.T) {
	now := time.Date(2027, 1, 2, 12, 0, 0, 0, time.Local)
	p := NewParser()
	p.Now = func() time.Time { return now }
	line := func(ts string) string {
		return ts + " mx postfix/smtpd[1]: NOQUEUE: milter-reject: END-OF-MESSAGE from x[192.0.2.1]: 5.7.1 spam; from=<a@b> to=<c@d>"
	}
	for ts, want := range map[string]time.Time{
		"Jan  2 11:00:00":                  time.Date(2027, 1, 2, 11, 0, 0, 0, time.Local),
		"Dec 31 23:59:59":                  time.Date(2026, 12, 31, 23, 59, 59, 0, time.Local), // last year's line
		"2026-08-26T01:33:38.572449+00:00": time.Date(2026, 8, 26, 1, 33, 38, 572449000, time.UTC),
	} {
		r := p.Parse(line(ts))
		if len(r.Events) != 1 || !r.Events[0].Time.Equal(want) {
			t.Errorf("%s: %+v, want time %v", ts, r, want)
		}
	}
}

// A verdict joins to its client only within the join window.
func TestJoinExpiry(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	p := NewParser()
	p.Now = func() time.Time { return now }
	p.Parse("Dec  1 10:00:00 mx postfix/smtpd[1]: ABCDE12345: client=x[192.0.2.7]")
	reject := "Dec  1 10:00:00 mx postfix/smtpd[1]: ABCDE12345: proxy-reject: END-OF-MESSAGE: 554 5.7.0 spam; from=<a@b> to=<c@d>"
	if r := p.Parse(reject); len(r.Events) != 1 || r.Events[0].Client != "192.0.2.7" {
		t.Fatalf("inside the window: %+v", r)
	}
	now = now.Add(joinTTL + time.Second)
	if r := p.Parse(reject); len(r.Events) != 0 {
		t.Fatalf("after the window: %+v", r)
	}
}

// The join tables never hold more than their bound, however many queue
// ids a log names, and keep the newest.
func TestJoinBound(t *testing.T) {
	j := newJoinTable(100, time.Hour)
	now := time.Now()
	for i := range 10000 {
		j.put(fmt.Sprint("q", i), "v", now)
		j.put("same", fmt.Sprint(i), now) // a key replaced again and again
	}
	if len(j.m) > 100 || len(j.fifo) > 2*100+16 {
		t.Fatalf("map %d, fifo %d entries", len(j.m), len(j.fifo))
	}
	if _, ok := j.get("q9999", now); !ok {
		t.Error("newest entry evicted")
	}
	if v, ok := j.get("same", now); !ok || v != "9999" {
		t.Errorf("replaced key: %q %v", v, ok)
	}
	if _, ok := j.get("q0", now); ok {
		t.Error("oldest entry kept")
	}
}

func TestLongAndBrokenLines(t *testing.T) {
	p := NewParser()
	long := "Dec  1 10:00:00 mx postfix/smtpd[1]: " + strings.Repeat("x", MaxLine)
	if r := p.Parse(long); r.Ignored != ignTooLong {
		t.Errorf("long line: %+v", r)
	}
	// A reply text longer than the kept reason is cut on a rune boundary.
	reason := strings.Repeat("ä", 300)
	r := p.Parse("Dec  1 10:00:00 mx postfix/smtpd[1]: NOQUEUE: milter-reject: RCPT from x[192.0.2.1]: 550 5.7.1 " + reason)
	if len(r.Events) != 1 || !utf8.ValidString(r.Events[0].Reason) || len(r.Events[0].Reason) > maxReason {
		t.Errorf("reason: %+v", r)
	}
	for _, l := range []string{"", "\x00\xff", "Dec  1 10:00:00 mx postfix/smtpd[1]: ", "Dec  1 10:00:00 mx postfix/smtpd[1]: NOQUEUE: reject: RCPT from x[999.1.1.1]: 550 5.1.1 <a@b>: Recipient address rejected: User unknown in local recipient table;"} {
		if r := p.Parse(l); len(r.Events) != 0 || r.Ignored == "" {
			t.Errorf("%q: %+v", l, r)
		}
	}
}

// BenchmarkParse parses the sample lines in turn (a mix of ignored lines,
// joins and verdicts), one op per line.
func BenchmarkParse(b *testing.B) {
	var lines []string
	for _, name := range sampleFiles {
		lines = append(lines, sampleLines(b, name)...)
	}
	p := NewParser()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		p.Parse(lines[i%len(lines)])
	}
}
