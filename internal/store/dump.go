package store

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// MaxLineLen bounds one line of Load input.
const MaxLineLen = 64 << 10

// Dump writes every live entry of s, all kinds, as one JSON Entry per line.
func Dump(ctx context.Context, s Store, w io.Writer) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw) // Encode ends each value with '\n'
	enc.SetEscapeHTML(false)
	var werr error
	err := s.List(ctx, "", func(e Entry) error {
		if err := enc.Encode(e); err != nil {
			werr = err
			return err
		}
		return nil
	})
	if werr != nil {
		return fmt.Errorf("store: dump: write: %w", werr)
	}
	if err != nil {
		return fmt.Errorf("store: dump: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("store: dump: write: %w", err)
	}
	return nil
}

// Load reads JSON lines as written by Dump, validates and canonicalises each
// (see Normalize) and Puts it into s. Blank lines are skipped. It stops at
// the first bad line with an error naming it; the lines before it stay
// loaded. n counts the entries stored. A missing created or updated time is
// set to the load time, so hand-written lines need only type and key.
func Load(ctx context.Context, s Store, r io.Reader) (n int, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), MaxLineLen)
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if line == 1 {
			b = bytes.TrimPrefix(b, []byte("\uFEFF")) // editors add a BOM
		}
		if len(b) == 0 {
			continue
		}
		if err := ctx.Err(); err != nil {
			return n, fmt.Errorf("store: load: line %d: %w", line, err)
		}
		e, err := parseLine(b)
		if err != nil {
			return n, fmt.Errorf("store: load: line %d: %w", line, err)
		}
		if err := s.Put(ctx, e); err != nil {
			return n, fmt.Errorf("store: load: line %d: %w", line, err)
		}
		n++
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return n, fmt.Errorf("store: load: line %d: longer than %d bytes", line+1, MaxLineLen)
		}
		return n, fmt.Errorf("store: load: after line %d: %w", line, err)
	}
	return n, nil
}

func parseLine(b []byte) (Entry, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	// A misspelt field ("expire") would otherwise silently load a
	// permanent entry.
	dec.DisallowUnknownFields()
	var e Entry
	if err := dec.Decode(&e); err != nil {
		return Entry{}, fmt.Errorf("bad JSON: %w", err)
	}
	if dec.More() {
		return Entry{}, errors.New("bad JSON: more than one value on the line")
	}
	e, err := Normalize(e)
	if err != nil {
		return Entry{}, err
	}
	if e.Created.IsZero() {
		e.Created = time.Now().Round(0)
	}
	if e.Updated.IsZero() {
		e.Updated = e.Created
	}
	return e, nil
}

// Normalize validates e and returns it with its key in canonical form:
// white and black keys through ParseAddrKey, spamtrap addresses lower-cased
// (and required to contain '@'), grey keys as given.
func Normalize(e Entry) (Entry, error) {
	if _, err := ParseKind(string(e.Kind)); err != nil {
		return Entry{}, err
	}
	key := strings.TrimSpace(e.Key)
	if key == "" {
		return Entry{}, fmt.Errorf("%s entry with an empty key", e.Kind)
	}
	switch e.Kind {
	case White, Black:
		k, err := ParseAddrKey(key)
		if err != nil {
			return Entry{}, fmt.Errorf("%s entry: %w", e.Kind, err)
		}
		key = k
	case Trap:
		key = strings.ToLower(key)
		if !strings.Contains(key, "@") {
			return Entry{}, fmt.Errorf("spamtrap entry %q: not a mail address (no '@')", key)
		}
	case Grey:
		key = e.Key // the greylist package owns this format; keep it exact
	}
	e.Key = key
	return e, nil
}

// CheckEntry reports whether e is already in the form Normalize produces,
// which is what a backend must store for Get and Match to find it.
func CheckEntry(e Entry) error {
	n, err := Normalize(e)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if n.Key != e.Key {
		return fmt.Errorf("store: %s key %q is not canonical (want %q)", e.Kind, e.Key, n.Key)
	}
	return nil
}

// checkAddrKey requires key to be a canonical white/black key.
func checkAddrKey(key string) error {
	k, err := ParseAddrKey(key)
	if err != nil {
		return err
	}
	if k != key {
		return fmt.Errorf("key %q is not canonical (want %q)", key, k)
	}
	return nil
}
