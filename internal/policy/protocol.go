// Package policy is greypit's Postfix policy server (Postfix's SMTPD_POLICY_README
// protocol), a drop-in replacement for postgrey: Postfix asks over a kept-alive
// connection, one request per RCPT, and greypit answers with the same greylist
// engine and store as its SMTP front line.
//
// It owns the request parser (bounded, so a broken or hostile client costs
// little), the decision (white: DUNNO, grey: DEFER_IF_PERMIT with postgrey's
// text, black: REJECT or DEFER), postgrey's whitelist files and command-line
// flags, and the importer for a postgrey database. Every request gets an
// answer, because Postfix otherwise waits for its policy timeout (100 s).
package policy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// Limits of the request parser. Postfix's own requests are about 40
// attributes of short values; postgrey cuts values at 512 bytes.
const (
	MaxLine         = 4096    // bytes of one name=value line; longer ones are skipped
	MaxAttrs        = 256     // attributes of one request; more are ignored
	MaxRequestBytes = 1 << 20 // a request larger than this ends the connection
)

// ErrTooLarge ends a connection whose request never ends.
var ErrTooLarge = errors.New("policy: request larger than 1 MiB")

// Request holds the attributes greypit decides on. Attributes it does not
// use are counted but not kept.
type Request struct {
	Request       string // "smtpd_access_policy" for Postfix's queries
	ProtocolState string // "RCPT", "DATA", ...
	ClientAddress string
	ClientName    string
	HeloName      string
	Sender        string
	Recipient     string
	Instance      string // one value per message: one X-Greylist header per message
	// Has records which attributes were present (an empty sender is
	// present; a missing one is not).
	Has Has
	// Attrs counts the name=value lines; Garbage the lines without '=';
	// Damaged is set when a line was too long or there were too many
	// attributes, so the request is answered DUNNO.
	Attrs, Garbage int
	Damaged        bool
}

// Has is a set of attribute flags.
type Has uint16

// Attribute presence flags.
const (
	HasRequest Has = 1 << iota
	HasProtocolState
	HasClientAddress
	HasClientName
	HasSender
	HasRecipient
	HasInstance
	HasEtrnDomain
	HasHeloName
)

// ReadRequest reads one request: name=value lines up to an empty line. At
// a clean end of input before any line it returns io.EOF; in the middle of
// a request io.ErrUnexpectedEOF.
//
// Values equal to the previous request's in r (most of them on a kept-alive
// connection: request, protocol_state, client and helo names) reuse its
// strings instead of allocating new ones.
func ReadRequest(br *bufio.Reader, r *Request) error {
	prev := *r
	*r = Request{}
	total := 0
	lines := 0
	for {
		line, long, err := readLine(br)
		total += len(line)
		if err != nil {
			if err == io.EOF && lines == 0 && len(line) == 0 {
				return io.EOF
			}
			if err == io.EOF {
				return io.ErrUnexpectedEOF
			}
			return err
		}
		lines++
		if total > MaxRequestBytes {
			return ErrTooLarge
		}
		if long {
			r.Damaged = true
			continue
		}
		if len(line) == 0 {
			return nil
		}
		r.parseAttr(line, &prev)
	}
}

// readLine returns the next line without its "\n" (and a "\r" before it).
// A line longer than MaxLine is consumed to its end and reported as long,
// with its length in len(line) only approximately (for the size bound).
func readLine(br *bufio.Reader) (line []byte, long bool, err error) {
	b, err := br.ReadSlice('\n')
	if err == bufio.ErrBufferFull || (err == nil && len(b) > MaxLine+1) {
		n := len(b)
		for err == bufio.ErrBufferFull {
			b, err = br.ReadSlice('\n')
			n += len(b)
			if n > MaxRequestBytes {
				return make([]byte, n), true, nil
			}
		}
		if err != nil {
			return nil, true, err
		}
		return make([]byte, 0, n), true, nil
	}
	if err != nil {
		return b, false, err
	}
	b = b[:len(b)-1]
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	return b, false, nil
}

func (r *Request) parseAttr(line []byte, prev *Request) {
	name, value, ok := bytes.Cut(line, []byte{'='})
	if !ok || len(name) == 0 {
		r.Garbage++
		return
	}
	r.Attrs++
	if r.Attrs > MaxAttrs {
		r.Damaged = true
		return
	}
	var dst, old *string
	var flag Has
	switch string(name) { // no allocation: the compiler compares in place
	case "request":
		dst, old, flag = &r.Request, &prev.Request, HasRequest
	case "protocol_state":
		dst, old, flag = &r.ProtocolState, &prev.ProtocolState, HasProtocolState
	case "client_address":
		dst, old, flag = &r.ClientAddress, &prev.ClientAddress, HasClientAddress
	case "client_name":
		dst, old, flag = &r.ClientName, &prev.ClientName, HasClientName
	case "helo_name":
		dst, old, flag = &r.HeloName, &prev.HeloName, HasHeloName
	case "sender":
		dst, old, flag = &r.Sender, &prev.Sender, HasSender
	case "recipient":
		dst, old, flag = &r.Recipient, &prev.Recipient, HasRecipient
	case "instance":
		dst, old, flag = &r.Instance, &prev.Instance, HasInstance
	case "etrn_domain":
		r.Has |= HasEtrnDomain
		return
	default:
		return
	}
	// A repeated attribute: the last one counts, as in postgrey.
	switch string(value) {
	case *dst:
	case *old:
		*dst = *old
	default:
		*dst = string(value)
	}
	r.Has |= flag
}

// WriteAction writes one reply: "action=..." and the empty line.
func WriteAction(w *bufio.Writer, action string) error {
	w.WriteString("action=")
	// An action never contains a line break: it would end the reply early
	// and desynchronise Postfix.
	for i := 0; i < len(action); i++ {
		if c := action[i]; c == '\n' || c == '\r' {
			action = action[:i]
			break
		}
	}
	w.WriteString(action)
	_, err := w.WriteString("\n\n")
	return err
}
