package policy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/greypit/greypit/internal/greylist"
	"github.com/greypit/greypit/internal/store"
)

// ParseDump reads Berkeley DB's `db_dump` output (either -p, printable,
// or the default hex form) and calls fn for each key/value pair. The
// format is a header of name=value lines up to HEADER=END, then one line
// per key and per value, each starting with a space, then DATA=END.
func ParseDump(r io.Reader, fn func(key, value []byte) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	n := 0
	printable := false
	for sc.Scan() {
		n++
		l := sc.Text()
		if l == "HEADER=END" {
			break
		}
		if k, v, ok := strings.Cut(l, "="); ok && k == "format" {
			switch v {
			case "print":
				printable = true
			case "bytevalue":
			default:
				return fmt.Errorf("db_dump line %d: unknown format %q", n, v)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("db_dump: %w", err)
	}
	if n == 0 {
		return errors.New("db_dump: empty input")
	}
	var key []byte
	haveKey := false
	for sc.Scan() {
		n++
		l := sc.Text()
		if l == "DATA=END" {
			if haveKey {
				return fmt.Errorf("db_dump line %d: key without a value", n)
			}
			return nil
		}
		if !strings.HasPrefix(l, " ") {
			return fmt.Errorf("db_dump line %d: data line does not start with a space", n)
		}
		b, err := unescape(l[1:], printable)
		if err != nil {
			return fmt.Errorf("db_dump line %d: %w", n, err)
		}
		if !haveKey {
			key, haveKey = b, true
			continue
		}
		haveKey = false
		if err := fn(key, b); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("db_dump: %w", err)
	}
	return errors.New("db_dump: no DATA=END (truncated dump?)")
}

// unescape decodes one data line: hex pairs, or in printable form
// characters with "\\" for a backslash and "\xx" for any other byte.
func unescape(s string, printable bool) ([]byte, error) {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if printable && c != '\\' {
			out = append(out, c)
			continue
		}
		if printable {
			i++ // past the backslash
			if i < len(s) && s[i] == '\\' {
				out = append(out, '\\')
				continue
			}
		}
		if i+1 >= len(s) {
			return nil, errors.New("truncated escape")
		}
		v, err := strconv.ParseUint(s[i:i+2], 16, 8)
		if err != nil {
			return nil, fmt.Errorf("bad hex %q", s[i:i+2])
		}
		out = append(out, byte(v))
		i++
	}
	return out, nil
}

// ImportParams are the timings of the postgrey that wrote the database
// and of the greypit that takes it over.
type ImportParams struct {
	PostgreyDelay time.Duration // postgrey's --delay: a tuple with last-first >= it had passed
	Grey          store.GreyParams
	PrefixV4      int
	PrefixV6      int
	AutoWhitelist int // clients with at least this many passes become white
	WhiteTTL      time.Duration
	Now           time.Time
}

// ImportStats counts what an import did.
type ImportStats struct {
	Passed, Pending, Expired, Skipped, White int
}

// TupleEntry turns one postgrey.db record ("net/sender/recipient" =>
// "first,last[,host]", Unix seconds) into a greypit grey entry. ok is
// false for a record that has expired under p or cannot be read (a
// --privacy hash, say), with the reason in err.
func TupleEntry(key, value string, p ImportParams) (e store.Entry, ok bool, err error) {
	net, rest, found := strings.Cut(key, "/")
	if !found {
		return e, false, fmt.Errorf("key %q: not net/sender/recipient (a --privacy hash?)", key)
	}
	a, err := netip.ParseAddr(net)
	if err != nil {
		return e, false, fmt.Errorf("key %q: %w", key, err)
	}
	var sender, rcpt string
	if strings.HasPrefix(rest, "/") { // null sender
		rcpt = rest[1:]
	} else {
		// The sender's domain holds no '/': split at the first '/'
		// after its '@'.
		at := strings.IndexByte(rest, '@')
		slash := strings.IndexByte(rest[max(at, 0):], '/')
		if slash < 0 {
			return e, false, fmt.Errorf("key %q: no recipient", key)
		}
		sender, rcpt = rest[:max(at, 0)+slash], rest[max(at, 0)+slash+1:]
	}
	if rcpt == "" {
		return e, false, fmt.Errorf("key %q: empty recipient", key)
	}
	f := strings.Split(value, ",")
	if len(f) < 2 {
		return e, false, fmt.Errorf("key %q: value %q is not first,last", key, value)
	}
	first, err1 := strconv.ParseInt(f[0], 10, 64)
	last, err2 := strconv.ParseInt(f[1], 10, 64)
	if err1 != nil || err2 != nil || last < first {
		return e, false, fmt.Errorf("key %q: value %q is not first,last", key, value)
	}
	ft, lt := time.Unix(first, 0).UTC(), time.Unix(last, 0).UTC()
	e = store.Entry{
		Kind:    store.Grey,
		Key:     greylist.Key(a, p.PrefixV4, p.PrefixV6, sender, rcpt),
		Source:  "postgrey",
		Created: ft,
		Updated: lt,
		Count:   2,
		Pass:    ft.Add(p.Grey.PassDelay),
	}
	if lt.Sub(ft) >= p.PostgreyDelay {
		e.Passed = lt
		e.Expires = lt.Add(p.Grey.PassedTTL)
	} else {
		e.Count = 1
		e.Expires = ft.Add(p.Grey.RetryWindow)
	}
	if !e.Live(p.Now) {
		return e, false, nil
	}
	return e, true, nil
}

// ClientEntry turns one postgrey_clients.db record (address =>
// "count,last") into a white entry when the count reached the threshold.
func ClientEntry(key, value string, p ImportParams) (e store.Entry, ok bool, err error) {
	a, err := netip.ParseAddr(key)
	if err != nil {
		return e, false, fmt.Errorf("client %q: %w", key, err)
	}
	f := strings.Split(value, ",")
	if len(f) < 2 {
		return e, false, fmt.Errorf("client %q: value %q is not count,last", key, value)
	}
	count, err1 := strconv.ParseInt(f[0], 10, 64)
	last, err2 := strconv.ParseInt(f[1], 10, 64)
	if err1 != nil || err2 != nil {
		return e, false, fmt.Errorf("client %q: value %q is not count,last", key, value)
	}
	if p.AutoWhitelist <= 0 || count < int64(p.AutoWhitelist) {
		return e, false, nil
	}
	lt := time.Unix(last, 0).UTC()
	e = store.Entry{
		Kind:    store.White,
		Key:     store.AddrKey(a),
		Reason:  fmt.Sprintf("postgrey auto-whitelist, %d passes", count),
		Source:  "greylist", // earned, like classify.SourceGreylist
		Created: lt,
		Updated: lt,
		Expires: lt.Add(p.WhiteTTL),
		Count:   count,
	}
	return e, e.Live(p.Now), nil
}
