package store

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// decodeFast gives what encoding/json gives, or declines.
func FuzzDecodeFast(f *testing.F) {
	t0 := time.Date(2026, 12, 1, 19, 3, 51, 123456789, time.UTC)
	for _, e := range []Entry{
		{Kind: Grey, Key: "192.0.2.0/24 a@b c@d", Created: t0, Updated: t0, Expires: t0.Add(time.Hour), Count: 3,
			Pass: t0.Add(time.Minute), Passed: t0.Add(2 * time.Minute), Client: "192.0.2.1"},
		{Kind: White, Key: "192.0.2.1", Reason: "r", Source: "greylist", Created: t0, Updated: t0.In(time.FixedZone("x", 3600))},
	} {
		b, _ := encodeEntry(nil, e)
		f.Add(b)
		g, _ := encodeGrey(nil, e)
		f.Add(g)
	}
	f.Add([]byte(`{"created":"2026-12-01T19:03:51Z","updated":"2026-12-01T19:03:51Z","count":-0}`))
	f.Add([]byte(`{"reason":"a\"b","created":"2026-12-01T24:03:51Z"}`))
	f.Add([]byte(`{"count":1,"count":2}`))
	f.Add([]byte(`{"created":null}`))
	f.Fuzz(func(t *testing.T, v []byte) {
		var got Entry
		if !decodeFast(v, &got) {
			return
		}
		var want Entry
		if err := json.Unmarshal(v, &want); err != nil {
			t.Fatalf("decodeFast accepted %q, encoding/json: %v", v, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q:\ndecodeFast %+v\nencoding/json %+v", v, got, want)
		}
	})
}

// BenchmarkDecode is one stored grey value read back (/json: through
// encoding/json, the fallback, and what decode did before decodeFast).
func BenchmarkDecode(b *testing.B) {
	t0 := time.Now()
	v, _ := encodeGrey(nil, Entry{Kind: Grey, Key: "k", Created: t0, Updated: t0, Expires: t0.Add(time.Hour), Count: 1,
		Pass: t0.Add(time.Minute), Client: "192.0.2.1"})
	for _, fast := range []bool{true, false} {
		name := "fast"
		if !fast {
			name = "json"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if fast {
					_, err = decode(Grey, []byte("k"), v)
				} else {
					err = json.Unmarshal(v, new(Entry))
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
