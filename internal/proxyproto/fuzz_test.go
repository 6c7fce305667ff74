package proxyproto_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/greypit/greypit/internal/proxyproto"
)

// FuzzParseProxyHeader checks that Parse never panics, never claims more
// bytes than it got, and that Read (which reads incrementally from the
// socket) agrees with it and stops exactly at the header's end.
func FuzzParseProxyHeader(f *testing.F) {
	f.Add([]byte("PROXY TCP4 192.0.2.7 198.51.100.1 40000 25\r\nEHLO x\r\n"))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add(append(bytes.Clone(proxyproto.V2Sig), 0x20, 0x00, 0, 0))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, err := proxyproto.Parse(b)
		if err == nil && (n <= 0 || n > len(b)) {
			t.Fatalf("Parse consumed %d of %d bytes", n, len(b))
		}
		if err == nil && !h.Local && (!h.Src.IsValid() || !h.Dst.IsValid() || h.Src.Addr().Is4In6()) {
			t.Fatalf("Parse gave addresses %v %v", h.Src, h.Dst)
		}
		r := bytes.NewReader(b)
		rh, rerr := proxyproto.Read(r)
		switch {
		case errors.Is(err, proxyproto.ErrIncomplete) || (err == nil && len(b) < 15):
			// Read wants at least 15 bytes and the whole header.
			if rerr == nil && err != nil {
				t.Fatalf("Read succeeded on an incomplete header: %+v", rh)
			}
		case err == nil:
			if rerr != nil || rh != h {
				t.Fatalf("Read = %+v, %v; Parse = %+v", rh, rerr, h)
			}
			if rest, _ := io.ReadAll(r); len(rest) != len(b)-n {
				t.Fatalf("Read left %d bytes, want %d", len(rest), len(b)-n)
			}
		default:
			if rerr == nil {
				t.Fatalf("Read accepted %+v where Parse said %v", rh, err)
			}
		}
	})
}
