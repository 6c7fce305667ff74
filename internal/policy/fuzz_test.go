package policy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// FuzzReadRequest: any input is read as a sequence of requests without a
// panic, each within the limits, and what was read as a request ends at
// an empty line.
func FuzzReadRequest(f *testing.F) {
	f.Add([]byte(req("192.0.2.1", "a@b.test", "c@d.test")))
	f.Add([]byte("request=smtpd_access_policy\r\nsender=\r\n\r\n"))
	f.Add([]byte("=\n==\nx\n\n\n"))
	f.Add([]byte(strings.Repeat("a", MaxLine+5) + "\n\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		br := bufio.NewReaderSize(bytes.NewReader(in), MaxLine+2)
		var r Request
		for n := 0; ; n++ {
			err := ReadRequest(br, &r)
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, ErrTooLarge) {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if r.Attrs > MaxAttrs && !r.Damaged {
				t.Fatalf("%d attributes not marked damaged", r.Attrs)
			}
			for _, v := range []string{r.Request, r.ClientAddress, r.Sender, r.Recipient} {
				if strings.ContainsAny(v, "\n") || len(v) > MaxLine {
					t.Fatalf("attribute value %q", v)
				}
			}
			if n > len(in) {
				t.Fatal("more requests than input bytes")
			}
		}
	})
}

// FuzzParseDump: any input is parsed or refused, never a panic, and each
// record's import conversion copes.
func FuzzParseDump(f *testing.F) {
	f.Add([]byte(sampleDump))
	f.Add([]byte("VERSION=3\nformat=bytevalue\nHEADER=END\n 3139322e\n 31\nDATA=END\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		ParseDump(bytes.NewReader(in), func(k, v []byte) error {
			TupleEntry(string(k), string(v), testImport)
			ClientEntry(string(k), string(v), testImport)
			return nil
		})
	})
}
