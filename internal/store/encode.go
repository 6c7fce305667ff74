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
			return json.Marshal(e) // its error names the problem
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
