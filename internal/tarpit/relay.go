package tarpit

import (
	"bytes"
	"strings"

	"github.com/greypit/greypit/internal/smtp"
)

// Session states.
const (
	stCommand = iota // reading command lines
	stData           // reading message text up to the final dot
	stSkip           // discarding the rest of an over-long command line
)

// maxErrors closes a session after this many bad commands.
const maxErrors = 10

// sess is one held connection. It is kept small: tens of thousands of
// these are the tarpit's whole memory.
type sess struct {
	fd     int
	info   Info
	start  mono
	lastIn mono // last input, or when the last reply was all sent
	due    mono

	out    []byte // replies queued; out[outPos:] is still to be sent
	outPos int
	line   []byte // a partial command line
	in     []byte // input handed over by Add, consumed first

	state    uint8
	dot      uint8 // progress through CRLF "." CRLF in stData
	closing  bool  // end the session once out is sent
	shared   bool  // out is the shared banner, not the session's own
	haveMail bool
	errors   uint8 // at most maxErrors
	rcpts    int32 // in the current transaction
	allRcpts int32 // in the whole session, for the verdict
	messages int32
	curData  int32 // bytes of the current message; MaxDataSize is at most 1 GiB
	outcome  string

	dripped   int64
	dataBytes int64
	helo      string
	from      string
	sample    *sample
}

func (s *sess) queue(b []byte) {
	if s.shared { // the banner all sessions share: copy before changing
		s.out, s.outPos, s.shared = append([]byte(nil), s.out[s.outPos:]...), 0, false
	}
	// Drop what was sent first: while a pipelining bot keeps the queue
	// from ever emptying, out would otherwise keep every byte sent.
	if s.outPos > 0 {
		s.out = s.out[:copy(s.out, s.out[s.outPos:])]
		s.outPos = 0
	}
	s.out = append(s.out, b...)
}

func smtpReply(code int, enh, text string) []byte {
	return smtp.Reply{Code: code, Enhanced: enh, Lines: []string{text}}.Bytes()
}

// closeWith queues a last reply and ends the session once it is sent.
func (s *sess) closeWith(outcome string, reply []byte) {
	s.queue(reply)
	s.closing = true
	s.outcome = outcome
}

// consume acts on input bytes in the current state. Once maxQueued reply
// bytes wait, the rest of the input is kept for later (at most one read's
// worth), so a client that pipelines without reading cannot grow the queue.
func (t *Tarpit) consume(s *sess, b []byte) {
	for len(b) > 0 && !s.closing {
		if len(s.out)-s.outPos >= maxQueued {
			s.in = append(s.in[:0:0], b...)
			return
		}
		switch s.state {
		case stData:
			b = t.data(s, b)
		case stSkip:
			i := bytes.IndexByte(b, '\n')
			if i < 0 {
				return
			}
			b = b[i+1:]
			s.state = stCommand
		default:
			i := bytes.IndexByte(b, '\n')
			if i < 0 {
				if len(s.line)+len(b) >= smtp.MaxCommandLine {
					s.line = nil
					s.state = stSkip
					t.bad(s, 500, "5.5.2", "Line too long")
					return
				}
				s.line = append(s.line, b...)
				return
			}
			line := b[:i+1]
			b = b[i+1:]
			if len(s.line) > 0 {
				line = append(s.line, line...)
				s.line = nil
			}
			if len(line) > smtp.MaxCommandLine {
				t.bad(s, 500, "5.5.2", "Line too long")
				continue
			}
			t.command(s, bytes.TrimRight(line, "\r\n"))
		}
	}
}

// command answers one command line like an open relay would.
func (t *Tarpit) command(s *sess, line []byte) {
	cmd, err := smtp.ParseCommand(line)
	if err != nil {
		t.bad(s, 500, "5.5.2", "Syntax error, command unrecognized")
		return
	}
	host := t.conf().Hostname
	switch cmd.Verb {
	case "HELO":
		s.helo = cmd.Arg
		s.queue(smtpReply(250, "", host+" Hello "+cmd.Arg+", pleased to meet you"))
	case "EHLO":
		s.helo = cmd.Arg
		s.queue(smtp.Reply{Code: 250, Lines: []string{host + " Hello " + cmd.Arg + ", pleased to meet you", "PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES"}}.Bytes())
	case "MAIL":
		p, _, err := smtp.ParseMail(cmd.Arg)
		if err != nil {
			t.bad(s, 501, "5.5.4", "Syntax error in sender")
			return
		}
		s.haveMail, s.from, s.rcpts = true, p.String(), 0
		t.conf().Sampler.begin(s)
		s.queue(smtpReply(250, "2.1.0", "Sender ok"))
	case "RCPT":
		if !s.haveMail {
			t.bad(s, 503, "5.5.1", "Need MAIL command")
			return
		}
		p, _, err := smtp.ParseRcpt(cmd.Arg)
		if err != nil {
			t.bad(s, 501, "5.5.4", "Syntax error in recipient")
			return
		}
		// Any recipient, any domain: the open relay bots look for.
		s.rcpts++
		s.allRcpts++
		t.conf().Sampler.rcpt(s, p.String())
		s.queue(smtpReply(250, "2.1.5", "Recipient ok"))
	case "DATA":
		if s.rcpts == 0 {
			t.bad(s, 503, "5.5.1", "Need RCPT command")
			return
		}
		s.state, s.dot, s.curData = stData, 2, 0 // at the start of a line
		s.queue(smtpReply(354, "", "End data with <CR><LF>.<CR><LF>"))
	case "RSET":
		s.haveMail, s.rcpts = false, 0
		s.queue(smtpReply(250, "2.0.0", "Ok"))
	case "NOOP":
		s.queue(smtpReply(250, "2.0.0", "Ok"))
	case "VRFY":
		s.queue(smtpReply(252, "2.5.0", "Send some mail, I'll try my best"))
	case "QUIT":
		s.closeWith("quit", smtpReply(221, "2.0.0", host+" closing connection"))
	case "STARTTLS":
		s.queue(smtpReply(454, "4.7.0", "TLS not available"))
	default:
		t.bad(s, 502, "5.5.1", "Command not implemented")
	}
}

func (t *Tarpit) bad(s *sess, code int, enh, text string) {
	if s.errors++; s.errors >= maxErrors {
		s.closeWith("too-many-errors", smtpReply(421, "4.7.0", t.conf().Hostname+" Too many errors"))
		return
	}
	s.queue(smtpReply(code, enh, text))
}

// data reads message text until CRLF "." CRLF (RFC 5321 §4.1.1.4) and
// returns the input after it. The text itself is thrown away, or sampled
// as it was before dot-stuffing (§4.5.2): a line's leading dot and the
// final ".\r\n" are not text.
func (t *Tarpit) data(s *sess, b []byte) []byte {
	// s.dot: 0 in a line; 1 after CR; 2 at a line start (after CRLF);
	// 3 after CRLF "."; 4 after CRLF "." CR.
	text := 0 // b[text:i] is text not yet sampled
	for i, c := range b {
		if s.dot == 4 && c != '\n' {
			t.conf().Sampler.data(s, cr) // the CR held back after a leading dot was text
		}
		switch {
		case s.dot == 3 && c == '\r':
			s.dot = 4
			text = i + 1 // held back: it may end the data
		case s.dot == 4 && c == '\n':
			t.countData(s, i+1)
			t.endOfData(s)
			return b[i+1:]
		case c == '\r':
			s.dot = 1
		case s.dot == 1 && c == '\n':
			s.dot = 2
		case s.dot == 2 && c == '.':
			s.dot = 3
			t.conf().Sampler.data(s, b[text:i])
			text = i + 1
		default:
			s.dot = 0
		}
	}
	t.conf().Sampler.data(s, b[text:])
	t.countData(s, len(b))
	if int64(s.curData) > t.conf().MaxDataSize {
		// The end cannot be found within the bound: refuse and close.
		s.state = stCommand
		s.closeWith("data-too-big", t.finalReply(s))
	}
	return nil
}

var cr = []byte{'\r'}

func (t *Tarpit) countData(s *sess, n int) {
	s.curData += int32(min(n, 1<<30))
	s.dataBytes += int64(n)
}

func (t *Tarpit) endOfData(s *sess) {
	s.state = stCommand
	s.messages++
	s.haveMail, s.rcpts = false, 0
	t.conf().Sampler.end(s, t.conf().Hostname)
	s.queue(t.finalReply(s))
}

// finalReply refuses the message with the listing reason, so a sender
// listed by mistake learns why; in blackhole mode it pretends to accept.
func (t *Tarpit) finalReply(s *sess) []byte {
	if t.conf().Blackhole {
		return smtpReply(250, "2.0.0", "Ok: queued")
	}
	enh := "5.7.1"
	if t.conf().ReplyCode < 500 {
		enh = "4.7.1"
	}
	reason := strings.TrimSpace(s.info.Reason)
	if reason == "" {
		reason = "blacklisted"
	}
	return smtpReply(t.conf().ReplyCode, enh, "Message refused: client "+s.info.Client.Addr().String()+" is listed here: "+reason)
}
