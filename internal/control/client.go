package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/greypit/greypit/internal/store"
)

// Client sends Ops to a running daemon over its control socket.
type Client struct {
	Path string
}

// ErrNoDaemon means nothing answers on the socket: no daemon runs.
var ErrNoDaemon = errors.New("no greypit daemon answers on the control socket")

// Dial checks that a daemon answers on path.
func Dial(path string) (*Client, error) {
	c, err := net.DialTimeout("unix", path, 2*time.Second)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoDaemon, err)
	}
	c.Close()
	return &Client{Path: path}, nil
}

// do sends req (and body, if any) and calls fn for each response line
// before the final one.
func (c *Client) do(ctx context.Context, req request, body io.Reader, fn func(response) error) (int, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.Path)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrNoDaemon, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	line, _ := json.Marshal(req)
	if _, err := conn.Write(append(line, '\n')); err != nil {
		return 0, fmt.Errorf("control: %w", err)
	}
	if body != nil {
		if _, err := io.Copy(conn, body); err != nil {
			return 0, fmt.Errorf("control: sending: %w", err)
		}
	}
	conn.(*net.UnixConn).CloseWrite()
	dec := json.NewDecoder(bufio.NewReader(conn))
	for {
		var r response
		if err := dec.Decode(&r); err != nil {
			return 0, fmt.Errorf("control: daemon closed the connection without an answer: %w", err)
		}
		switch {
		case r.Error != "":
			return r.N, errors.New(r.Error)
		case r.Done:
			return r.N, nil
		}
		if err := fn(r); err != nil {
			return 0, err
		}
	}
}

func ignore(response) error { return nil }

// List implements Ops.
func (c *Client) List(ctx context.Context, k store.Kind, fn func(store.Entry) error) error {
	_, err := c.do(ctx, request{Op: "list", Kind: k}, nil, func(r response) error {
		if r.Entry == nil {
			return errors.New("control: unexpected answer")
		}
		return fn(*r.Entry)
	})
	return err
}

// Add implements Ops.
func (c *Client) Add(ctx context.Context, r AddRequest) (int, error) {
	return c.do(ctx, request{Op: "add", Add: &r}, nil, ignore)
}

// Del implements Ops.
func (c *Client) Del(ctx context.Context, k store.Kind, values []string) (int, error) {
	return c.do(ctx, request{Op: "del", Kind: k, Values: values}, nil, ignore)
}

// Why implements Ops.
func (c *Client) Why(ctx context.Context, addr string) (Why, error) {
	var w Why
	_, err := c.do(ctx, request{Op: "why", Addr: addr}, nil, func(r response) error {
		if r.Why != nil {
			w = *r.Why
		}
		return nil
	})
	return w, err
}

// Dump implements Ops.
func (c *Client) Dump(ctx context.Context, w io.Writer) error {
	bw := bufio.NewWriter(w)
	_, err := c.do(ctx, request{Op: "dump"}, nil, func(r response) error {
		if r.Line == "" {
			return errors.New("control: unexpected answer")
		}
		bw.WriteString(r.Line)
		return bw.WriteByte('\n')
	})
	if ferr := bw.Flush(); err == nil && ferr != nil {
		err = fmt.Errorf("control: dump: write: %w", ferr)
	}
	return err
}

// Load implements Ops.
func (c *Client) Load(ctx context.Context, r io.Reader) (int, error) {
	return c.do(ctx, request{Op: "load"}, r, ignore)
}

// Events implements Ops.
func (c *Client) Events(ctx context.Context, since time.Time, fn func(store.Event) error) error {
	_, err := c.do(ctx, request{Op: "events", Since: since}, nil, func(r response) error {
		if r.Event == nil {
			return errors.New("control: unexpected answer")
		}
		return fn(*r.Event)
	})
	return err
}
