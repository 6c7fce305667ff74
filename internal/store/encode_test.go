package store

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// encodeEntry is json.Marshal, byte for byte.
func FuzzEncodeEntry(f *testing.F) {
	f.Add("grey", "192.0.2.0/24 a@b c@d", "", "greylist", int64(1764590000), int64(5), int64(3), "192.0.2.1", int64(0))
	f.Add("white", "<&>\"\\\x01é\xff\u2028", "r", "", int64(-62135596800), int64(0), int64(-1), "", int64(253402300800))
	f.Fuzz(func(t *testing.T, kind, key, reason, source string, sec, count, off int64, client string, ns int64) {
		base := time.Unix(sec, ns%1e9)
		if off%2 == 0 {
			base = base.UTC()
		}
		e := Entry{Kind: Kind(kind), Key: key, Reason: reason, Source: source, Created: base, Updated: base.Add(time.Duration(off)),
			Count: count, Client: client}
		if off > 0 {
			e.Expires, e.Pass = base.Add(time.Hour), base.Add(time.Minute)
		}
		if off > 10 {
			e.Passed = base.Add(2 * time.Minute)
		}
		want, werr := json.Marshal(e)
		got, gerr := encodeEntry(nil, e)
		if (werr == nil) != (gerr == nil) || !bytes.Equal(got, want) {
			t.Fatalf("encodeEntry:\n %s (%v)\njson.Marshal:\n %s (%v)", got, gerr, want, werr)
		}
		if werr != nil {
			return
		}
		// The grey form without type and key decodes to the same entry.
		g, err := encodeGrey(nil, e)
		if err != nil {
			t.Fatal(err)
		}
		d, err := decode(e.Kind, []byte(e.Key), g)
		if err != nil {
			t.Fatalf("decode %s: %v", g, err)
		}
		full, err := decode(e.Kind, []byte(e.Key), want)
		if err != nil {
			t.Fatal(err)
		}
		a, _ := json.Marshal(d)
		b, _ := json.Marshal(full)
		if !bytes.Equal(a, b) {
			t.Fatalf("grey form %s decodes to\n %s\nthe full form to\n %s", g, a, b)
		}
	})
}
