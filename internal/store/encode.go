package store

import (
	"encoding/json"
	"strconv"
	"time"
)

// encodeEntry appends e's JSON form, byte for byte what json.Marshal
// gives (FuzzEncodeEntry checks it), without reflection: every greylist
// sighting is encoded once per flush, and encoding/json was a fifth of the
// flush's cost.
func encodeEntry(b []byte, e Entry) ([]byte, error) {
	return encode(b, e, true)
}

// encodeGrey is a batched grey sighting's value: the same JSON without
// "type" and "key", which the bucket and the bbolt key already hold (decode
// takes them from there, in this version and the ones before it). The
// value is about a third smaller, so a flush writes fewer pages.
func encodeGrey(b []byte, e Entry) ([]byte, error) {
	return encode(b, e, false)
}

func encode(b []byte, e Entry, withKey bool) ([]byte, error) {
	for _, t := range []time.Time{e.Created, e.Updated, e.Expires, e.Pass, e.Passed} {
		if y := t.Year(); y < 0 || y > 9999 {
			j, err := json.Marshal(e) // its error names the problem
			return append(b, j...), err
		}
	}
	b = append(b, '{')
	if withKey {
		b = append(b, `"type":`...)
		b = appendString(b, string(e.Kind))
		b = append(b, `,"key":`...)
		b = appendString(b, e.Key)
		b = append(b, ',')
	}
	if e.Reason != "" {
		b = append(b, `"reason":`...)
		b = appendString(b, e.Reason)
		b = append(b, ',')
	}
	if e.Source != "" {
		b = append(b, `"source":`...)
		b = appendString(b, e.Source)
		b = append(b, ',')
	}
	b = appendTime(append(b, `"created":`...), e.Created)
	b = appendTime(append(b, `,"updated":`...), e.Updated)
	if !e.Expires.IsZero() {
		b = appendTime(append(b, `,"expires":`...), e.Expires)
	}
	if e.Count != 0 {
		b = strconv.AppendInt(append(b, `,"count":`...), e.Count, 10)
	}
	if !e.Pass.IsZero() {
		b = appendTime(append(b, `,"pass":`...), e.Pass)
	}
	if !e.Passed.IsZero() {
		b = appendTime(append(b, `,"passed":`...), e.Passed)
	}
	if e.Client != "" {
		b = append(b, `,"client":`...)
		b = appendString(b, e.Client)
	}
	return append(b, '}'), nil
}

func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// appendString writes plain ASCII as it is and leaves everything else
// (escapes, HTML-safe forms, invalid UTF-8) to encoding/json.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// decodeFast reads the form encode writes (fields in its order, plain
// ASCII strings, no spaces) without reflection: every greylist lookup of a
// tuple already on disk decodes one value, and encoding/json was most of
// its cost. Anything else (escapes, other field orders, older or
// hand-made values) reports false, and the caller uses encoding/json;
// FuzzDecodeFast checks both give the same entry.
func decodeFast(v []byte, e *Entry) bool {
	if len(v) < 2 || v[0] != '{' || v[len(v)-1] != '}' {
		return false
	}
	v = v[1 : len(v)-1]
	// The fields in encode's order; each may appear once.
	next := 0
	for len(v) > 0 {
		if next > 0 {
			if v[0] != ',' {
				return false
			}
			v = v[1:]
		}
		name, rest, ok := fastString(v)
		if !ok || len(rest) == 0 || rest[0] != ':' {
			return false
		}
		v = rest[1:]
		i := fieldIndex(name)
		if i < next {
			return false // unknown, repeated or out of order
		}
		next = i + 1
		switch i {
		case 0, 1, 2, 3, 10: // type, key, reason, source, client
			var s []byte
			if s, v, ok = fastString(v); !ok {
				return false
			}
			switch i {
			case 0:
				e.Kind = Kind(s)
			case 1:
				e.Key = string(s)
			case 2:
				e.Reason = string(s)
			case 3:
				e.Source = string(s)
			case 10:
				e.Client = string(s)
			}
		case 7: // count
			j := 0
			if j < len(v) && v[j] == '-' {
				j++
			}
			start := j
			for j < len(v) && v[j] >= '0' && v[j] <= '9' {
				j++
			}
			if j == start || (v[start] == '0' && j > start+1) {
				return false // not a JSON integer
			}
			n, err := strconv.ParseInt(string(v[:j]), 10, 64)
			if err != nil {
				return false
			}
			e.Count, v = n, v[j:]
		default: // created, updated, expires, pass, passed
			var s []byte
			if s, v, ok = fastString(v); !ok {
				return false
			}
			var t *time.Time
			switch i {
			case 4:
				t = &e.Created
			case 5:
				t = &e.Updated
			case 6:
				t = &e.Expires
			case 8:
				t = &e.Pass
			case 9:
				t = &e.Passed
			}
			// What time.Time's UnmarshalJSON does inside the quotes.
			if t.UnmarshalText(s) != nil {
				return false
			}
		}
	}
	return true
}

// fieldIndex is a JSON name's place in encode's order, or -1.
func fieldIndex(name []byte) int {
	switch string(name) {
	case "type":
		return 0
	case "key":
		return 1
	case "reason":
		return 2
	case "source":
		return 3
	case "created":
		return 4
	case "updated":
		return 5
	case "expires":
		return 6
	case "count":
		return 7
	case "pass":
		return 8
	case "passed":
		return 9
	case "client":
		return 10
	}
	return -1
}

// fastString reads a JSON string of printable ASCII without escapes at the
// start of v.
func fastString(v []byte) (s, rest []byte, ok bool) {
	if len(v) == 0 || v[0] != '"' {
		return nil, nil, false
	}
	for i := 1; i < len(v); i++ {
		switch c := v[i]; {
		case c == '"':
			return v[1:i], v[i+1:], true
		case c < 0x20 || c > 0x7e || c == '\\':
			return nil, nil, false
		}
	}
	return nil, nil, false
}
