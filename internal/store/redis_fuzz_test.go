package store

import (
	"encoding/json"
	"testing"
	"time"
)

// FuzzDecodeEventMember: any member string decodes or is refused without
// a panic, and an event encoded by eventMember decodes to itself.
func FuzzDecodeEventMember(f *testing.F) {
	f.Add("00000001764583200000:1:{\"t\":\"2026-12-01T10:00:00Z\",\"c\":\"192.0.2.1\",\"p\":\"grey\",\"o\":\"greylisted\"}", "192.0.2.1", int64(7))
	f.Add("1:2:", "", int64(0))
	f.Add(":::", "::1", int64(-1))
	f.Fuzz(func(t *testing.T, m, client string, seq int64) {
		decodeEventMember(m)
		ev := Event{Time: time.Unix(0, seq).UTC(), Client: client, Path: "grey", Outcome: m}
		v, err := json.Marshal(ev)
		if err != nil {
			return
		}
		got, ok := decodeEventMember(eventMember(ev.Time, seq, v))
		if !ok {
			t.Fatalf("own member of %+v refused", ev)
		}
		if !got.Time.Equal(ev.Time) || got.Path != ev.Path {
			t.Fatalf("round trip: %+v, want %+v", got, ev)
		}
		var want Event
		json.Unmarshal(v, &want) // invalid UTF-8 is replaced the same way on both sides
		if got.Client != want.Client || got.Outcome != want.Outcome {
			t.Fatalf("round trip: %+v, want %+v", got, want)
		}
	})
}
