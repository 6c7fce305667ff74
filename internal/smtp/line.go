package smtp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// Limits from RFC 5321 §4.5.3.1.
const (
	MaxCommandLine = 512  // §4.5.3.1.4: command line including CRLF
	MaxTextLine    = 1000 // §4.5.3.1.6: text line including CRLF
	MaxPath        = 256  // §4.5.3.1.3: reverse- or forward-path including "<>"
	MaxLocalPart   = 64   // §4.5.3.1.1
	MaxDomain      = 255  // §4.5.3.1.2
)

// maxDiscard bounds how much of an over-long line is thrown away looking for
// its end, so a client cannot keep us reading one "line" forever.
const maxDiscard = 64 << 10

var (
	// ErrLineTooLong reports a line over its limit. The rest of the line
	// has been discarded unless the error also matches ErrOutOfSync.
	ErrLineTooLong = errors.New("line too long")
	// ErrOutOfSync is returned together with ErrLineTooLong when no line
	// end was found within 64 KiB past the limit: the next byte is not the
	// start of a line, so the session must close the connection.
	ErrOutOfSync = errors.New("stream out of sync")
	// ErrBadLineEnding matches ErrBareLF and ErrBareCR: a line ended by LF
	// alone, or holding a CR not followed by LF (RFC 5321 §2.3.8).
	ErrBadLineEnding = errors.New("bad line ending")
	ErrBareLF        = fmt.Errorf("%w: bare LF", ErrBadLineEnding)
	ErrBareCR        = fmt.Errorf("%w: bare CR", ErrBadLineEnding)
	// ErrNUL reports a NUL byte in a command or reply line.
	ErrNUL = errors.New("line contains NUL")
	// ErrTooBig is returned by the DATA reader once the message exceeded
	// its size cap and the rest, up to the terminating dot, was discarded.
	ErrTooBig = errors.New("message too big")
	// ErrBadReply reports a malformed reply from a server.
	ErrBadReply = errors.New("malformed reply")

	errOutOfSync = fmt.Errorf("%w: %w", ErrLineTooLong, ErrOutOfSync)
)

// ReadLine reads one CRLF-terminated line of at most max bytes including the
// CRLF and returns it without the CRLF, in a new slice of at most max bytes.
//
// It never consumes bytes past the line's LF, so pipelined commands (RFC
// 2920) stay buffered in r. After ErrLineTooLong (unless ErrOutOfSync),
// ErrBadLineEnding or ErrNUL the whole line has been consumed and the next
// read starts on a line boundary, so the session may reply 500 and go on.
// At end of stream it returns io.EOF, or io.ErrUnexpectedEOF inside a line.
func ReadLine(r *bufio.Reader, max int) ([]byte, error) {
	line, err := readLine(r, nil, max, true)
	if err != nil {
		return nil, err
	}
	return line, nil
}

// readLine appends the next line, without its CRLF, to dst, letting dst grow
// to at most len(dst)+maxLen-1 bytes. On error dst is returned unextended.
func readLine(r *bufio.Reader, dst []byte, maxLen int, noNUL bool) ([]byte, error) {
	start := len(dst)
	limit := maxLen - 1 // bytes allowed before the LF: the text and its CR
	for {
		if _, err := r.Peek(1); err != nil {
			if err == io.EOF && len(dst) > start {
				err = io.ErrUnexpectedEOF
			}
			return dst[:start], err
		}
		buf, _ := r.Peek(r.Buffered())
		i := bytes.IndexByte(buf, '\n')
		chunk := buf
		if i >= 0 {
			chunk = buf[:i]
		}
		if len(dst)-start+len(chunk) > limit {
			return dst[:start], skipLine(r, dst[start:], maxLen)
		}
		dst = appendBounded(dst, chunk, start+limit)
		if i < 0 {
			r.Discard(len(chunk))
			continue
		}
		r.Discard(i + 1)
		line := dst[start:]
		if len(line) == 0 || line[len(line)-1] != '\r' {
			return dst[:start], ErrBareLF
		}
		line = line[:len(line)-1]
		if bytes.IndexByte(line, '\r') >= 0 {
			return dst[:start], ErrBareCR
		}
		if noNUL && bytes.IndexByte(line, 0) >= 0 {
			return dst[:start], ErrNUL
		}
		return dst[:start+len(line)], nil
	}
}

// appendBounded is append that never grows dst's capacity beyond capLimit,
// so a slow trickle of bytes cannot make us allocate more than the limit.
func appendBounded(dst, b []byte, capLimit int) []byte {
	if need := len(dst) + len(b); need > cap(dst) {
		c := min(max(2*cap(dst), need, 64), capLimit)
		nd := make([]byte, len(dst), max(c, need))
		copy(nd, dst)
		dst = nd
	}
	return append(dst, b...)
}

// skipLine discards the rest of an over-long line, of which seen was already
// consumed, through its LF, giving up once the line exceeds maxLen+maxDiscard
// bytes. The whole line is still checked for bare CR and LF: a caller that
// resumes after the LF must agree with any later reader of the stream on
// where that line ended.
func skipLine(r *bufio.Reader, seen []byte, maxLen int) error {
	var bad error
	prevCR := false
	for _, c := range seen {
		if prevCR {
			bad = ErrBareCR
		}
		prevCR = c == '\r'
	}
	for budget := max(maxLen, 0) + maxDiscard - len(seen); budget > 0; {
		if _, err := r.Peek(1); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		buf, _ := r.Peek(min(r.Buffered(), budget))
		for i, c := range buf {
			if prevCR && c != '\n' && bad == nil {
				bad = ErrBareCR
			}
			if c == '\n' {
				r.Discard(i + 1)
				if bad != nil {
					return bad
				}
				if !prevCR {
					return ErrBareLF
				}
				return ErrLineTooLong
			}
			prevCR = c == '\r'
		}
		r.Discard(len(buf))
		budget -= len(buf)
	}
	return errOutOfSync
}
