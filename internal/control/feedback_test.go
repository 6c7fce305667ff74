package control

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/greypit/greypit/internal/classify"
	"github.com/greypit/greypit/internal/feedback"
	"github.com/greypit/greypit/internal/maillog"
	"github.com/greypit/greypit/internal/store"
)

// The verdict and candidate operations give the same answers locally and
// over the socket, and a daemon without feedback refuses them.
func TestFeedbackRoundTrip(t *testing.T) {
	d := serve(t, filepath.Join(sockDir(t), "ctl.sock"))
	cl := &Client{Path: d.path}
	c := ctx(t)
	if _, err := cl.Verdict(c, feedback.Verdict{Kind: feedback.Spam, Client: "192.0.2.1", Source: "feedback:cli"}); err == nil || !strings.Contains(err.Error(), "not set up") {
		t.Fatalf("without an applier: %v", err)
	}
	d.local.Feedback = &feedback.Applier{Store: d.store, Classifier: d.local.Classifier, BlackTTL: time.Hour, WhiteTTL: time.Hour,
		PrefixV4: 24, PrefixV6: 64, Now: d.local.Now}

	res, err := cl.Verdict(c, feedback.Verdict{Kind: feedback.Spam, Client: "192.0.2.1", Reason: "r", Source: "feedback:cli"})
	if err != nil || res.Path != classify.Black || len(res.Changes) != 1 {
		t.Fatalf("verdict: %+v %v", res, err)
	}
	if _, err := cl.Verdict(c, feedback.Verdict{Kind: "eggs", Client: "192.0.2.1", Source: "x"}); err == nil {
		t.Error("bad verdict accepted")
	}
	ev := maillog.Event{Kind: maillog.TrapCandidate, Client: "198.51.100.2", Address: "Ghost@Example.org", Source: maillog.SourceUnknownUser, Time: d.now}
	if res, err = cl.Event(c, ev, "maillog:7"); err != nil || res.State != "pending" {
		t.Fatalf("event: %+v %v", res, err)
	}
	var got []store.Candidate
	if err := cl.Candidates(c, func(x store.Candidate) error { got = append(got, x); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Address != "ghost@example.org" || got[0].Evidence[0].Note != "maillog:7" {
		t.Fatalf("candidates: %+v", got)
	}
	if n, err := cl.Approve(c, []string{"ghost@example.org"}); n != 1 || err != nil {
		t.Fatalf("approve: %d %v", n, err)
	}
	if n, err := cl.RejectCandidates(c, []string{"typo@example.org", "other@example.org"}); n != 2 || err != nil {
		t.Fatalf("reject: %d %v", n, err)
	}
	if _, err := cl.Approve(c, []string{"postmaster@example.org"}); err == nil {
		t.Error("postmaster approved")
	}
	if e, err := d.store.Get(c, store.Trap, "ghost@example.org"); err != nil || e.Source != "candidates:cli" {
		t.Errorf("trap entry: %+v %v", e, err)
	}
}
