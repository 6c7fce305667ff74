package smtp

import (
	"bufio"
	"errors"
	"io"
)

// NewDotReader returns a reader of the message data that follows DATA's 354
// reply (RFC 5321 §4.1.1.4), with the dot-stuffing undone (§4.5.2) and CRLF
// line endings kept. It returns io.EOF after the line "." and never reads
// past it, so pipelined commands stay in r.
//
// It is strict, against SMTP smuggling: only CRLF "." CRLF ends the data,
// and a bare LF or bare CR anywhere is ErrBadLineEnding; a line over
// MaxTextLine is ErrLineTooLong; the stream ending first is
// io.ErrUnexpectedEOF. After those errors the end of the data is unknown, so
// the session must close the connection.
//
// If maxSize > 0 and the message is longer, Read returns the first maxSize
// bytes, then reads and discards the rest up to the final "." (still
// checking line endings) and returns ErrTooBig, after which the session may
// reply 552 (§4.5.3.1.10) and carry on. All errors are sticky.
func NewDotReader(r *bufio.Reader, maxSize int64) io.Reader {
	return &dotReader{r: r, max: maxSize}
}

type dotReader struct {
	r      *bufio.Reader
	max    int64 // <= 0: no cap
	n      int64 // bytes handed out
	buf    []byte
	pend   []byte // rest of the current line, CRLF included
	tooBig bool
	err    error
}

func (d *dotReader) Read(p []byte) (int, error) {
	for len(d.pend) == 0 {
		if d.err != nil {
			return 0, d.err
		}
		if d.tooBig {
			d.err = d.drain()
			continue
		}
		d.next()
	}
	n := copy(p, d.pend)
	d.pend = d.pend[n:]
	return n, nil
}

// readLine reads one data line into d.buf, without CRLF, returning whether
// it was the terminating ".".
func (d *dotReader) readLine() ([]byte, bool, error) {
	if d.buf == nil {
		d.buf = make([]byte, 0, MaxTextLine)
	}
	line, err := readLine(d.r, d.buf[:0], MaxTextLine, false)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return line, err == nil && len(line) == 1 && line[0] == '.', err
}

func (d *dotReader) next() {
	line, end, err := d.readLine()
	switch {
	case err != nil:
		d.err = err
		return
	case end:
		d.err = io.EOF
		return
	case len(line) > 0 && line[0] == '.':
		line = line[1:]
	}
	line = append(line, '\r', '\n') // fits: d.buf has room for a whole line
	if d.max > 0 && d.n+int64(len(line)) > d.max {
		line = line[:d.max-d.n]
		d.tooBig = true
	}
	d.n += int64(len(line))
	d.pend = line
}

// drain discards the rest of an oversized message. Over-long lines are
// skipped here, since the message is refused anyway and skipLine keeps the
// stream in sync; bad line endings are not, as they make the end ambiguous.
func (d *dotReader) drain() error {
	for {
		_, end, err := d.readLine()
		if err != nil && (!errors.Is(err, ErrLineTooLong) || errors.Is(err, ErrOutOfSync)) {
			return err
		}
		if end {
			return ErrTooBig
		}
	}
}
