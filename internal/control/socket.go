package control

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/greypit/greypit/internal/store"
)

// The wire protocol: one connection per request. The client sends one JSON
// request line; for "load" the entries follow as JSON lines and the client
// closes its write half. The daemon answers with JSON lines: zero or more
// {"entry":…} or one {"why":…}, then a final {"done":true,"n":N} or
// {"error":"…"}. A missing final line means the daemon went away.

type request struct {
	Op     string          `json:"op"`
	Kind   store.Kind      `json:"type,omitempty"`
	Values []string        `json:"values,omitempty"`
	Addr   string          `json:"addr,omitempty"`
	Add    *AddRequest     `json:"add,omitempty"`
	Since  time.Time       `json:"since,omitzero"`
	X      json.RawMessage `json:"x,omitempty"` // argument of the operations in feedback.go
}

type response struct {
	Entry *store.Entry    `json:"entry,omitempty"`
	Why   *Why            `json:"why,omitempty"`
	Event *store.Event    `json:"event,omitempty"`
	X     json.RawMessage `json:"x,omitempty"` // answer of the operations in feedback.go
	Done  bool            `json:"done,omitempty"`
	N     int             `json:"n,omitempty"`
	Error string          `json:"error,omitempty"`

	Hit *store.TrapHit `json:"hit,omitempty"` // trap-hits (traps.go)
	// Line is one line of a dump, without its newline. A string, not raw
	// JSON, so the bytes arrive as store.Dump wrote them.
	Line string `json:"line,omitempty"`
}

// maxRequest bounds the request line.
const maxRequest = 1 << 20

// Listen opens the control socket at path, replacing a stale socket file
// left by a daemon that died. Only the owner may connect (0600).
func Listen(path string) (net.Listener, error) {
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("control socket %s: another greypit is running", path)
	}
	// Only a stale socket is removed: a misconfigured control.socket must
	// not delete a regular file.
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("control socket %s: exists and is not a socket", path)
		}
		os.Remove(path)
	}
	// The umask closes the window between bind and chmod.
	old := syscall.Umask(0o177)
	ln, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	return ln, nil
}

// Serve answers requests on ln with ops until ctx is done.
func Serve(ctx context.Context, ln net.Listener, ops Ops, log *slog.Logger) error {
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("control accept: %w", err)
		}
		go func() {
			defer c.Close()
			if err := serveConn(ctx, c, ops); err != nil {
				log.Warn("control request failed", "err", err)
			}
		}()
	}
}

func serveConn(ctx context.Context, c net.Conn, ops Ops) error {
	br := bufio.NewReaderSize(c, 64<<10)
	bw := bufio.NewWriter(c)
	enc := json.NewEncoder(bw)
	line, err := readLine(br, maxRequest)
	if errors.Is(err, io.EOF) {
		return nil // a liveness probe: connected and went away
	}
	if err != nil {
		return err
	}
	var req request
	n, opErr := 0, error(nil)
	if err := json.Unmarshal(line, &req); err != nil {
		opErr = fmt.Errorf("bad request: %w", err)
	} else {
		n, opErr = dispatch(ctx, req, ops, br, enc)
	}
	fin := response{Done: true, N: n}
	if opErr != nil {
		fin = response{Error: opErr.Error()}
	}
	enc.Encode(fin)
	return bw.Flush()
}

func dispatch(ctx context.Context, req request, ops Ops, br *bufio.Reader, enc *json.Encoder) (int, error) {
	switch req.Op {
	case "list":
		n := 0
		err := ops.List(ctx, req.Kind, func(e store.Entry) error {
			n++
			return enc.Encode(response{Entry: &e})
		})
		return n, err
	case "add":
		if req.Add == nil {
			return 0, errors.New("add: no entries")
		}
		return ops.Add(ctx, *req.Add)
	case "del":
		return ops.Del(ctx, req.Kind, req.Values)
	case "why":
		w, err := ops.Why(ctx, req.Addr)
		if err != nil {
			return 0, err
		}
		return 1, enc.Encode(response{Why: &w})
	case "dump":
		lw := &lineWriter{enc: enc}
		if err := ops.Dump(ctx, lw); err != nil {
			return lw.n, err
		}
		return lw.n, lw.flush()
	case "load":
		return ops.Load(ctx, br)
	case "trap-hits":
		return dispatchTrapHits(ctx, ops, enc)
	case "events":
		n := 0
		err := ops.Events(ctx, req.Since, func(e store.Event) error {
			n++
			return enc.Encode(response{Event: &e})
		})
		return n, err
	}
	if h := feedbackOps[req.Op]; h != nil {
		return h(ctx, req, ops, enc)
	}
	return 0, fmt.Errorf("unknown operation %q", req.Op)
}

func readLine(br *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > max {
			return nil, errors.New("control: request too long")
		}
		if err == nil {
			return line, nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			if errors.Is(err, io.EOF) && len(line) > 0 {
				return line, nil
			}
			if errors.Is(err, io.EOF) {
				return nil, io.EOF
			}
			return nil, fmt.Errorf("control: reading request: %w", err)
		}
	}
}

// lineWriter sends what Dump writes one line per response.
type lineWriter struct {
	enc *json.Encoder
	buf []byte
	n   int
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		if err := w.enc.Encode(response{Line: string(w.buf[:i])}); err != nil {
			return 0, err
		}
		w.n++
		w.buf = w.buf[i+1:]
	}
}

// flush sends a last line without a newline (Dump ends every line, so
// there is none unless it failed).
func (w *lineWriter) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	w.n++
	return w.enc.Encode(response{Line: string(w.buf)})
}
