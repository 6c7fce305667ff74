package api

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/greypit/greypit/internal/classify"
	"github.com/greypit/greypit/internal/feedback"
	"github.com/greypit/greypit/internal/lists"
	"github.com/greypit/greypit/internal/store"
)

const token = "0123456789abcdef-test"

// testStore is a real store file and a classifier on it, as the daemon
// has them.
func testStore(t testing.TB) (*store.Bolt, *classify.Classifier) {
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "db"), store.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ls, _ := lists.NewSet(nil, nil)
	return st, &classify.Classifier{Lists: ls, Store: st}
}

func newServer(t *testing.T) (*httptest.Server, *store.Bolt) {
	st, cl := testStore(t)
	a := &feedback.Applier{Store: st, Classifier: cl, BlackTTL: time.Hour, WhiteTTL: time.Hour}
	ts := httptest.NewServer((&Server{Token: token, Applier: a, Log: slog.New(slog.DiscardHandler)}).Handler())
	t.Cleanup(ts.Close)
	return ts, st
}

func post(t *testing.T, url, auth, body string) (int, string) {
	t.Helper()
	code, _, b := do(t, "POST", url, auth, body)
	return code, b
}

func TestFeedbackEndpoint(t *testing.T) {
	ts, st := newServer(t)
	ctx := context.Background()
	spam := `{"verdict":"spam","address":"192.0.2.7","reason":"user report"}`
	for _, auth := range []string{"", "Bearer wrong-token-wrong-token", "Basic " + token, "Bearer " + token + "x"} {
		if code, _ := post(t, ts.URL+"/v1/feedback", auth, spam); code != http.StatusUnauthorized {
			t.Errorf("auth %q: %d, want 401", auth, code)
		}
	}
	n := 0
	st.List(ctx, "", func(store.Entry) error { n++; return nil })
	if n != 0 {
		t.Fatalf("unauthorised requests changed %d entries", n)
	}
	code, body := post(t, ts.URL+"/v1/feedback", "Bearer "+token, spam)
	if code != 200 || !strings.Contains(body, `"path":"black"`) {
		t.Fatalf("spam: %d %s", code, body)
	}
	e, err := st.Get(ctx, store.Black, "192.0.2.7")
	if err != nil || e.Source != SourceFeedback || e.Reason != "spam verdict: user report" {
		t.Fatalf("entry %+v %v", e, err)
	}
	for _, bad := range []string{`{"verdict":"spam","address":"not-an-ip"}`, `{"verdict":"eggs","address":"192.0.2.8"}`, `{`} {
		if code, _ := post(t, ts.URL+"/v1/feedback", "Bearer "+token, bad); code != 400 {
			t.Errorf("%s: %d, want 400", bad, code)
		}
	}
	if code, _ := post(t, ts.URL+"/v1/rspamd", "Bearer "+token, `{"action":"no action","ip":"192.0.2.9"}`); code != 200 {
		t.Errorf("rspamd no action: %d", code)
	}
	if _, err := st.Get(ctx, store.Black, "192.0.2.9"); err == nil {
		t.Error("no action blacklisted")
	}
	if code, body := post(t, ts.URL+"/v1/rspamd", "Bearer "+token, `{"action":"reject","ip":"192.0.2.9","qid":"ABC123"}`); code != 200 || !strings.Contains(body, "black") {
		t.Errorf("rspamd reject: %d %s", code, body)
	}
	req, _ := http.NewRequest("GET", ts.URL+"/v1/feedback", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %v %v", resp.StatusCode, err)
	}
}
