package tarpit

import (
	"bytes"
	"crypto/sha256"
	"path/filepath"
	"strings"
	"testing"
)

// fuzzSeeds are real and hostile dialogues.
var fuzzSeeds = []string{
	"EHLO bot.example\r\nMAIL FROM:<a@bot.example>\r\nRCPT TO:<v@victim.example>\r\nDATA\r\nSubject: x\r\n\r\nhello\r\n.\r\nQUIT\r\n",
	"HELO x\r\nMAIL FROM:<> SIZE=10\r\nRCPT TO:<Postmaster>\r\nRCPT TO:<b@c>\r\nDATA\r\n..stuffed\r\n.\r\r\n.x\r\n.\r\nRSET\r\nNOOP\r\nVRFY a\r\nSTARTTLS\r\nQUIT\r\n",
	"RCPT TO:<a@b>\r\nDATA\r\nMAIL FROM:bad\r\nMAIL FROM:<a@b>\r\nRCPT TO:<>\r\nDATA\r\n",
	strings.Repeat("NOOP\r\n", 1000),
	strings.Repeat("EHLO "+strings.Repeat("h", 500)+"\r\n", 20),
	strings.Repeat("x", 600) + "\r\nNOOP\r\n" + strings.Repeat("y", 5000) + "\nQUIT\r\n",
	strings.Repeat("BOGUS\r\n", 12),
	"\x00\xff\r\n\r\n\n\r\r\n\tNOOP\r\nnoop \r\nQuIt\r\n",
	"HELO a\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n" + strings.Repeat(strings.Repeat("z", 200)+"\r\n", 20) + ".\r\n",
	"HELO a\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n.\r\nDATA\r\nMAIL FROM:<e@f>\r\nRCPT TO:<g@h>\r\nDATA\r\nA\r\n\r\n.\r\n",
}

// FuzzConsume drives the relay state machine the way the scheduler does
// (reads of at most readChunk bytes, no reading while the queue is full,
// held-back input first) against a bot that reads its replies slowly, and
// checks the session's bounds and the replies it sends.
func FuzzConsume(f *testing.F) {
	for _, s := range fuzzSeeds {
		for _, split := range []uint8{0, 1, 7, 255} {
			f.Add([]byte(s), split)
		}
	}
	sp, err := NewSampler(filepath.Join(f.TempDir(), "samples"), 1<<20)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { sp.Close() })
	cfg := testConfig()
	cfg.MaxDataSize = 2048
	cfg.Sampler = sp
	sampled := New(cfg, nil)
	cfg.Sampler, cfg.Blackhole = nil, true
	blackhole := New(cfg, nil)

	f.Fuzz(func(t *testing.T, data []byte, split uint8) {
		chunk := 1 + int(split)*16 // 1 to 4081 bytes per read
		slow := 1 + int(split)/4   // bytes the bot reads per step
		for _, tp := range []*Tarpit{sampled, blackhole} {
			fuzzRun(t, tp, data, chunk, slow)
		}
	})
}

func fuzzRun(t *testing.T, tp *Tarpit, data []byte, chunk, slow int) {
	s := newSess(tp)
	in := data
	var sent []byte
	for iter := 0; ; iter++ {
		if iter > 10*len(data)+100000 {
			t.Fatal("no progress")
		}
		progress := false
		if !s.closing && len(s.out)-s.outPos < maxQueued && (len(s.in) > 0 || len(in) > 0) {
			if len(s.in) > 0 {
				held := s.in
				s.in = nil
				tp.consume(s, held)
			} else {
				n := min(chunk, len(in))
				tp.consume(s, in[:n])
				in = in[n:]
			}
			progress = true
			checkSess(t, s, len(data))
		}
		if q := len(s.out) - s.outPos; q > 0 {
			n := min(q, slow)
			sent = append(sent, s.out[s.outPos:s.outPos+n]...)
			s.outPos += n
			if s.outPos == len(s.out) {
				s.out, s.outPos = nil, 0
			}
			progress = true
		}
		if !progress {
			break
		}
	}
	if !s.closing && len(in) > 0 {
		t.Fatalf("stopped with %d bytes unread", len(in))
	}
	reps := parseReplies(t, sent)
	if len(reps) == 0 || reps[0].Code != 220 {
		t.Fatalf("no banner first: %q", sent)
	}
	finals, data354 := 0, 0
	for _, r := range reps[1:] {
		switch {
		case r.Code == 220:
			t.Fatal("a second banner")
		case r.Code == 354:
			data354++
		case tp.conf().Blackhole && r.Code == 250 && r.Enhanced == "2.0.0" && r.Lines[0] == "Ok: queued",
			!tp.conf().Blackhole && r.Code == tp.conf().ReplyCode:
			finals++
		}
	}
	tooBig := 0
	if s.outcome == "data-too-big" {
		tooBig = 1
	}
	if finals != int(s.messages)+tooBig || data354 < finals {
		t.Fatalf("%d final replies and %d 354s for %d messages (outcome %q)", finals, data354, s.messages, s.outcome)
	}
	if s.closing {
		last := reps[len(reps)-1].Code
		want := map[string]int{"quit": 221, "too-many-errors": 421, "data-too-big": tp.conf().ReplyCode}[s.outcome]
		if tp.conf().Blackhole && s.outcome == "data-too-big" {
			want = 250
		}
		if last != want {
			t.Fatalf("outcome %q ended with %d", s.outcome, last)
		}
	}
	if s.sample != nil && s.sample.size > s.dataBytes {
		t.Fatalf("sampled %d bytes of %d", s.sample.size, s.dataBytes)
	}
}

// checkSess checks a session's invariants after a read was consumed.
func checkSess(t *testing.T, s *sess, inputLen int) {
	// No t.Helper: this runs after every read in the fuzzer.
	checkBounds(t, s)
	switch {
	case s.state > stSkip:
		t.Fatalf("state %d", s.state)
	case s.dot > 4:
		t.Fatalf("dot state %d", s.dot)
	case s.closing && s.outcome != "quit" && s.outcome != "too-many-errors" && s.outcome != "data-too-big":
		t.Fatalf("closing with outcome %q", s.outcome)
	case !s.closing && s.outcome != "":
		t.Fatalf("outcome %q but not closing", s.outcome)
	case s.errors > maxErrors:
		t.Fatalf("%d errors", s.errors)
	case s.rcpts > s.allRcpts || s.messages > s.allRcpts:
		t.Fatalf("%d rcpts in the transaction, %d in all, %d messages", s.rcpts, s.allRcpts, s.messages)
	case s.dataBytes > int64(inputLen):
		t.Fatalf("%d data bytes from %d input bytes", s.dataBytes, inputLen)
	case s.state == stData && s.rcpts == 0:
		t.Fatal("in DATA without a recipient")
	case s.state == stData && s.curData > 2048+readChunk:
		t.Fatalf("%d bytes of one message read", s.curData)
	}
}

// FuzzSampler checks the header/body split of Sampler.data over any
// chunking: the header is the data up to and including the first blank
// line if that fits in maxSampleHeader, otherwise the first
// maxSampleHeader bytes; the body hash covers the rest.
func FuzzSampler(f *testing.F) {
	f.Add([]byte("Subject: x\r\n\r\nbody\r\n"), uint8(0))
	f.Add([]byte("Subject: x\r\n\r\nbody\r\n"), uint8(3))
	f.Add([]byte("a\r\n\r\n\r\n\r\n"), uint8(1))
	f.Add([]byte("\r\n\r\n"), uint8(255))
	f.Add([]byte("no blank line\r\n"), uint8(2))
	f.Add([]byte(strings.Repeat("h", maxSampleHeader-2)+"\r\n\r\nbody"), uint8(200))
	f.Add([]byte(strings.Repeat("h", maxSampleHeader-4)+"\r\n\r\nbody"), uint8(9))
	f.Add([]byte(strings.Repeat("h", maxSampleHeader+100)), uint8(77))
	f.Fuzz(func(t *testing.T, data []byte, split uint8) {
		sp := &Sampler{}
		s := &sess{fd: -1}
		sp.begin(s)
		for i, rest := 0, data; len(rest) > 0; i++ {
			n := min(1+int(split^byte(i*37)), len(rest))
			sp.data(s, rest[:n])
			rest = rest[n:]
		}
		sm := s.sample
		header, cut, found := data[:min(len(data), maxSampleHeader)], len(data) >= maxSampleHeader, false
		if e := bytes.Index(data, []byte("\r\n\r\n")); e >= 0 && e+4 <= maxSampleHeader {
			header, cut, found = data[:e+4], false, true
		}
		body := data[len(header):]
		if !bytes.Equal(sm.header, header) {
			t.Fatalf("header %q, want %q", sm.header, header)
		}
		if sum := sha256.Sum256(body); !bytes.Equal(sm.body.Sum(nil), sum[:]) {
			t.Fatalf("body hash is not the hash of the %d bytes after the header", len(body))
		}
		if sm.size != int64(len(data)) || sm.cut != cut || sm.inBody != (cut || found) {
			t.Fatalf("size %d of %d, cut %v (want %v), inBody %v", sm.size, len(data), sm.cut, cut, sm.inBody)
		}
	})
}
