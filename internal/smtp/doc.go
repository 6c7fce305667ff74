// Package smtp holds greypit's SMTP protocol primitives: bounded line
// reading, command and path parsing, reply formatting and parsing, and a
// strict DATA reader. The session state machine lives elsewhere
// (internal/session) and is built from these pieces.
//
// greypit does not use a general SMTP server library because it must control
// every byte on the wire: the session owns the bufio.Reader, and at hand-off
// the bytes it has already buffered are passed to the backend MTA together
// with the live connection. So nothing here reads past the end of the line or
// message it was asked for.
//
// Parsing follows RFC 5321 strictly and is bounded by its §4.5.3.1 limits:
// every read has a fixed memory ceiling, and a bare LF or bare CR is an error
// rather than a line ending, because front-end and backend disagreeing on
// line endings is what SMTP smuggling exploits. It is liberal only where
// deployed clients commonly deviate (a space after "FROM:", lower-case verbs).
package smtp
