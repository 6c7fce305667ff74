package tarpit

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// sampleRec is one line of the sample file as a reader sees it.
type sampleRec struct {
	Time      time.Time `json:"time"`
	Host      string    `json:"host"`
	Client    string    `json:"client"`
	Reason    string    `json:"reason"`
	Helo      string    `json:"helo"`
	From      string    `json:"from"`
	Rcpts     []string  `json:"rcpts"`
	Header    string    `json:"header"`
	BodySHA   string    `json:"body_sha256"`
	Size      int64     `json:"size"`
	Truncated bool      `json:"truncated"`
}

func readSamples(t testing.TB, path string) []sampleRec {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var recs []sampleRec
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r sampleRec
		dec := json.NewDecoder(strings.NewReader(sc.Text()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("sample line %q: %v", sc.Text(), err)
		}
		recs = append(recs, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return recs
}

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// stuff dot-stuffs text (RFC 5321 §4.5.2) and adds the end of data.
func stuff(text string) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(text, "\r\n") {
		if strings.HasPrefix(line, ".") {
			b.WriteByte('.')
		}
		b.WriteString(line)
	}
	return b.String() + ".\r\n"
}

func newSampler(t testing.TB, maxSize int64) (*Sampler, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "samples.jsonl")
	sp, err := NewSampler(path, maxSize)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close() })
	return sp, path
}

// endSess ends a session built by newSess, as the scheduler would.
func endSess(tp *Tarpit, s *sess, outcome string) {
	tp.mu.Lock()
	tp.total++
	tp.perPrefix[tp.prefix(s.info.Client.Addr())]++
	tp.mu.Unlock()
	tp.end(s, outcome, nil)
}

func TestSamplerMessages(t *testing.T) {
	const (
		header1 = "From: a@bot.example\r\nSubject: one\r\n\r\n"
		body1   = "hello\r\n.dot line\r\n..two dots\r\n.\r\n\r\n.\r\nend\r\n"
		text2   = "Subject: header only\r\n"
		header3 = "Subject: three\r\n\r\n"
	)
	in := "EHLO bot.example\r\nMAIL FROM:<s@bot.example>\r\nRCPT TO:<r1@victim.example>\r\nRCPT TO:<r2@victim.example>\r\n" +
		"DATA\r\n" + stuff(header1+body1) +
		"MAIL FROM:<>\r\nRCPT TO:<Postmaster>\r\nDATA\r\n" + stuff(text2) +
		"RSET\r\nMAIL FROM:<late@bot.example>\r\nRCPT TO:<r3@victim.example>\r\nDATA\r\n" + header3 + "partial body\r\n"
	for _, chunk := range []int{1, 2, 3, 7, 64, readChunk} {
		t.Run(fmt.Sprint("chunk=", chunk), func(t *testing.T) {
			sp, path := newSampler(t, 1<<20)
			cfg := testConfig()
			cfg.Sampler = sp
			tp := New(cfg, nil)
			s := newSess(tp)
			reps := parseReplies(t, feed(tp, s, []byte(in), chunk))
			if got, want := codes(reps), []int{220, 250, 250, 250, 250, 354, 451, 250, 250, 354, 451, 250, 250, 250, 354}; !slices.Equal(got, want) {
				t.Fatalf("replies %v, want %v", got, want)
			}
			endSess(tp, s, "closed") // mid-message: the partial sample is kept
			recs := readSamples(t, path)
			if len(recs) != 3 {
				t.Fatalf("%d samples, want 3: %+v", len(recs), recs)
			}
			want := []sampleRec{
				{Host: testHost, Client: "192.0.2.7", Reason: testReason, Helo: "bot.example", From: "s@bot.example",
					Rcpts: []string{"r1@victim.example", "r2@victim.example"}, Header: header1, BodySHA: sha(body1), Size: int64(len(header1 + body1))},
				{Host: testHost, Client: "192.0.2.7", Reason: testReason, Helo: "bot.example", From: "",
					Rcpts: []string{"Postmaster"}, Header: text2, BodySHA: sha(""), Size: int64(len(text2))},
				{Host: testHost, Client: "192.0.2.7", Reason: testReason, Helo: "bot.example", From: "late@bot.example",
					Rcpts: []string{"r3@victim.example"}, Header: header3, BodySHA: sha("partial body\r\n"), Size: int64(len(header3 + "partial body\r\n")), Truncated: true},
			}
			for i, r := range recs {
				if time.Since(r.Time) > time.Minute || r.Time.Location() != time.UTC {
					t.Errorf("sample %d time %v", i, r.Time)
				}
				r.Time = time.Time{}
				if !equalRec(r, want[i]) {
					t.Errorf("sample %d:\n got %+v\nwant %+v", i, r, want[i])
				}
			}
		})
	}
}

func equalRec(a, b sampleRec) bool {
	return a.Host == b.Host && a.Client == b.Client && a.Reason == b.Reason && a.Helo == b.Helo && a.From == b.From &&
		slices.Equal(a.Rcpts, b.Rcpts) && a.Header == b.Header && a.BodySHA == b.BodySHA && a.Size == b.Size && a.Truncated == b.Truncated
}

// TestSamplerBounds checks the recipient and header caps and the
// truncation flag.
func TestSamplerBounds(t *testing.T) {
	sp, path := newSampler(t, 1<<20)
	cfg := testConfig()
	cfg.Sampler = sp
	cfg.MaxDataSize = 64 << 10
	tp := New(cfg, nil)

	// 30 recipients, a header longer than the cap.
	s := newSess(tp)
	in := "HELO x\r\nMAIL FROM:<a@b.example>\r\n"
	for i := range 30 {
		in += fmt.Sprintf("RCPT TO:<r%d@c.example>\r\n", i)
	}
	long := strings.Repeat("X-Junk: "+strings.Repeat("j", 90)+"\r\n", 100) + "\r\n"
	text := long + "body\r\n"
	in += "DATA\r\n" + stuff(text)
	feed(tp, s, []byte(in), 1000)
	if s.messages != 1 {
		t.Fatalf("message not ended: state %d", s.state)
	}
	// A message too big to end.
	s2 := newSess(tp)
	big := "Subject: big\r\n\r\n" + strings.Repeat(strings.Repeat("b", 998)+"\r\n", 100)
	feed(tp, s2, []byte("HELO y\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n"+big), readChunk)
	if !s2.closing || s2.outcome != "data-too-big" {
		t.Fatalf("big message: closing %v outcome %q", s2.closing, s2.outcome)
	}
	endSess(tp, s2, s2.outcome)
	// A transaction that never got to DATA.
	s3 := newSess(tp)
	feed(tp, s3, []byte("HELO z\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\n"), readChunk)
	endSess(tp, s3, "closed")

	recs := readSamples(t, path)
	if len(recs) != 3 {
		t.Fatalf("%d samples", len(recs))
	}
	r := recs[0]
	if len(r.Rcpts) != maxSampleRcpts || r.Rcpts[0] != "r0@c.example" {
		t.Errorf("%d recipients kept: %v", len(r.Rcpts), r.Rcpts)
	}
	if r.Header != text[:maxSampleHeader] || r.BodySHA != sha(text[maxSampleHeader:]) || r.Size != int64(len(text)) || !r.Truncated {
		t.Errorf("long header: header %d bytes, size %d, truncated %v, body hash ok %v", len(r.Header), r.Size, r.Truncated, r.BodySHA == sha(text[maxSampleHeader:]))
	}
	r = recs[1]
	if r.Header != "Subject: big\r\n\r\n" || !r.Truncated || r.Size < cfg.MaxDataSize || r.Size > cfg.MaxDataSize+readChunk {
		t.Errorf("big message sample: %+v", r)
	}
	r = recs[2]
	if r.Header != "" || r.Size != 0 || r.Truncated || r.BodySHA != sha("") || len(r.Rcpts) != 1 {
		t.Errorf("no-data sample: %+v", r)
	}
}

// TestSamplerRotation: past the size cap the file is rotated, one old file
// kept.
func TestSamplerRotation(t *testing.T) {
	sp, path := newSampler(t, 1000)
	cfg := testConfig()
	cfg.Sampler = sp
	tp := New(cfg, nil)
	s := newSess(tp)
	var in strings.Builder
	in.WriteString("HELO x\r\n")
	for i := range 20 {
		fmt.Fprintf(&in, "MAIL FROM:<m%d@bot.example>\r\nRCPT TO:<v@victim.example>\r\nDATA\r\nSubject: %d\r\n\r\nbody\r\n.\r\n", i, i)
	}
	feed(tp, s, []byte(in.String()), readChunk)
	if s.messages != 20 {
		t.Fatalf("%d messages", s.messages)
	}
	cur, old := readSamples(t, path), readSamples(t, path+".1")
	if len(cur) == 0 || len(old) == 0 {
		t.Fatalf("%d current and %d old samples", len(cur), len(old))
	}
	if _, err := os.Stat(path + ".2"); !os.IsNotExist(err) {
		t.Errorf("a second old file: %v", err)
	}
	for _, p := range []string{path, path + ".1"} {
		fi, err := os.Stat(p)
		if err != nil || fi.Size() > 1000 {
			t.Errorf("%s: %v, %d bytes", p, err, fi.Size())
		}
	}
	all := append(old, cur...)
	if last := all[len(all)-1]; last.From != "m19@bot.example" {
		t.Errorf("last sample from %s", last.From)
	}
	// The kept samples are the newest, in order, without gaps.
	first := 20 - len(all)
	for i, r := range all {
		if want := fmt.Sprintf("m%d@bot.example", first+i); r.From != want {
			t.Errorf("sample %d from %s, want %s", i, r.From, want)
		}
	}

	// Reopening appends, and counts what is already there.
	sp.Close()
	sp2, err := NewSampler(path, 1000)
	if err != nil {
		t.Fatal(err)
	}
	defer sp2.Close()
	if fi, _ := os.Stat(path); sp2.size != fi.Size() {
		t.Errorf("reopened sampler counts %d bytes, file has %d", sp2.size, fi.Size())
	}
}

// TestSamplerOverTCP runs a sampled message through the scheduler.
func TestSamplerOverTCP(t *testing.T) {
	sp, path := newSampler(t, 1<<20)
	cfg := testConfig()
	cfg.Stutter = time.Millisecond
	cfg.Sampler = sp
	h := startHarness(t, cfg)
	c := h.mustAdd(nil)
	c.expect(220, "")
	c.cmd("HELO bot.example", 250, "")
	c.cmd("MAIL FROM:<s@bot.example>", 250, "2.1.0")
	c.cmd("RCPT TO:<v@victim.example>", 250, "2.1.5")
	c.cmd("DATA", 354, "")
	header, body := "Subject: hi\r\n\r\n", "..stuffed\r\nplain\r\n"
	c.send(stuff(header + body)[:20])
	c.send(stuff(header + body)[20:])
	checkFinal(t, cfg, c.reply())
	c.cmd("MAIL FROM:<s2@bot.example>", 250, "2.1.0")
	c.cmd("RCPT TO:<v2@victim.example>", 250, "2.1.5")
	c.c.Close()
	if v := h.verdict(); v.Outcome != "closed" || v.Messages != 1 || v.Rcpts != 2 {
		t.Fatalf("verdict %+v", v)
	}
	recs := readSamples(t, path)
	if len(recs) != 2 || recs[0].Header != header || recs[0].BodySHA != sha(body) ||
		recs[1].From != "s2@bot.example" || recs[1].Size != 0 || recs[0].Client != "127.0.0.1" {
		t.Fatalf("samples %+v", recs)
	}
}
