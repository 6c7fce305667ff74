package api

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"testing"

	"github.com/greypit/greypit/internal/control"
)

// Any {addr} gets 200 for an IP address and a JSON 400 otherwise, never a
// 5xx or a panic; the release of a non-address changes nothing.
func FuzzHostAddr(f *testing.F) {
	for _, s := range []string{"192.0.2.7", "::1", "::ffff:192.0.2.1", "fe80::1%eth0", "192.0.2.0/24", "", "1.2.3", "x", "0x7f.1", "[::1]"} {
		f.Add(s, false)
	}
	st, cl := testStore(f)
	h := (&Server{Token: token, Log: slog.New(slog.DiscardHandler),
		Admin: &Admin{Ops: &control.Local{Store: st, Classifier: cl, PrefixV4: 24, PrefixV6: 64}}}).Handler()
	f.Fuzz(func(t *testing.T, s string, release bool) {
		method, suffix := "GET", ""
		if release {
			method, suffix = "POST", "/release"
		}
		req, err := http.NewRequest(method, "http://x/v1/hosts/"+url.PathEscape(s)+suffix, nil)
		if err != nil {
			return
		}
		req.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		a, perr := netip.ParseAddr(s)
		valid := perr == nil && a.Zone() == ""
		switch {
		case !valid && (w.Code == http.StatusNotFound || w.Code == http.StatusMethodNotAllowed || w.Code == http.StatusTemporaryRedirect):
			// an empty or slash-holding value is another route, or a path
			// the mux cleans first
		case valid && w.Code != 200, !valid && w.Code != 400:
			t.Fatalf("%s %q: %d %s", method, s, w.Code, w.Body)
		case !json.Valid(w.Body.Bytes()):
			t.Fatalf("%s %q: not JSON: %s", method, s, w.Body)
		}
	})
}
