package logfollow

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzConsume feeds data in chunks of the given sizes and checks that the
// lines handed on are the input's lines, each cut at MaxLine, whatever
// the chunking, and that the offset counts every byte of complete lines.
func FuzzConsume(f *testing.F) {
	f.Add([]byte("a\nbb\r\nccc"), []byte{1, 2, 3})
	f.Add([]byte(strings.Repeat("x", 40)+"\nshort\n"), []byte{7})
	f.Add([]byte("\n\n\r\n"), []byte{0})
	f.Fuzz(func(t *testing.T, data, sizes []byte) {
		const max = 16
		fl := &Follower{MaxLine: max}
		fi := &file{path: "f"}
		var got []string
		emit := func(l Line) {
			if len(l.Text) > max || (l.TooLong && len(l.Text) != max) {
				t.Fatalf("line of %d bytes (too long %v)", len(l.Text), l.TooLong)
			}
			if l.N != int64(len(got)+1) {
				t.Fatalf("line number %d after %d lines", l.N, len(got))
			}
			got = append(got, l.Text)
		}
		rest := data
		for i := 0; len(rest) > 0; i++ {
			n := len(rest)
			if len(sizes) > 0 {
				n = int(sizes[i%len(sizes)]) + 1
			}
			n = min(n, len(rest))
			fl.consume(fi, rest[:n], emit)
			rest = rest[n:]
		}
		complete := bytes.LastIndexByte(data, '\n') + 1
		if fi.pos.Offset != int64(complete) && !(fi.long && fi.pos.Offset == int64(len(data))) {
			t.Fatalf("offset %d, complete lines end at %d (long %v)", fi.pos.Offset, complete, fi.long)
		}
		// What the lines should be: split at line endings, CR before LF
		// dropped, each cut to max.
		var want []string
		lines := strings.Split(string(data[:complete]), "\n")
		for _, l := range lines[:len(lines)-1] {
			l = strings.TrimSuffix(l, "\r")
			if len(l) > max {
				l = l[:max]
			}
			want = append(want, l)
		}
		if tail := data[complete:]; len(tail) > max {
			want = append(want, string(tail[:max])) // handed on cut short before its end arrives
		}
		if strings.Join(got, "\x00") != strings.Join(want, "\x00") {
			t.Fatalf("got %q\nwant %q", got, want)
		}
	})
}
