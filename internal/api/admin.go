package api

import (
	"errors"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/greypit/greypit/internal/config"
	"github.com/greypit/greypit/internal/control"
	"github.com/greypit/greypit/internal/metrics"
	"github.com/greypit/greypit/internal/networks"
)

// Admin is the read-and-release side of the endpoint the dashboard
// (dashboard.go) draws from. Each handler is a thin layer over what the
// CLI runs: control.Ops for `db why` and release, the networks report
// for `report networks`, the metrics registry for the charts.
type Admin struct {
	Ops     control.Ops
	History *metrics.History // per-interval samples; nil: only the live one
	// ASN and the network prefix lengths group the top networks as
	// `greypit report networks` does.
	ASN                networks.ASNDB
	PrefixV4, PrefixV6 int
	// Explain renders a Why as `greypit db why` prints it.
	Explain func(control.Why) string
	Now     func() time.Time
}

func (a *Admin) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// Stats is the answer of GET /v1/stats.
type Stats struct {
	Now metrics.Sample `json:"now"`
	// Sessions are the ended sessions by path and verdict outcome.
	Sessions []PathCount      `json:"sessions"`
	Active   map[string]int64 `json:"active"` // open sessions by path
	// GreylistDelay is the distribution of the time from a tuple's first
	// attempt to the retry that passed.
	GreylistDelay Delays `json:"greylist_delay"`
	// Every is the sampling interval of History, in seconds; History is
	// oldest first and ends with Now.
	Every   float64          `json:"every"`
	History []metrics.Sample `json:"history"`
}

// PathCount is one path/outcome counter.
type PathCount struct {
	Path    string `json:"path"`
	Outcome string `json:"outcome"`
	Count   uint64 `json:"count"`
}

// Delays is a histogram: Counts[i] observations at or below Upper[i] (and
// above the bound before), Over above the last bound.
type Delays struct {
	Upper  []float64 `json:"le"`
	Counts []uint64  `json:"counts"`
	Over   uint64    `json:"over"`
	Count  uint64    `json:"count"`
	Sum    float64   `json:"sum"`
}

func (a *Admin) stats(w http.ResponseWriter, r *http.Request) {
	now := metrics.Take(a.now())
	s := Stats{Now: now, Sessions: []PathCount{}, Active: map[string]int64{}}
	metrics.Sessions.Each(func(l metrics.Labels, c *metrics.Counter) {
		s.Sessions = append(s.Sessions, PathCount{Path: l[0], Outcome: l[1], Count: c.Value()})
	})
	metrics.Active.Each(func(l metrics.Labels, g *metrics.Gauge) { s.Active[l[0]] = g.Value() })
	d := &s.GreylistDelay
	d.Upper, d.Counts, d.Count, d.Sum = metrics.GreylistDelay.Buckets()
	var in uint64
	for _, n := range d.Counts {
		in += n
	}
	d.Over = d.Count - min(in, d.Count)
	if a.History != nil {
		s.Every = a.History.Every().Seconds()
		s.History = a.History.Samples()
	}
	s.History = append(s.History, now)
	reply(w, http.StatusOK, s)
}

// maxTop bounds GET /v1/networks/top?top=.
const maxTop = 1000

func (a *Admin) topNetworks(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	since := config.Duration{Duration: 24 * time.Hour}
	if v := q.Get("since"); v != "" {
		if err := since.UnmarshalText([]byte(v)); err != nil || since.Duration <= 0 {
			badRequest(w, "since %q: want a positive duration such as 24h or 7d", v)
			return
		}
	}
	top := 20
	if v := q.Get("top"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxTop {
			badRequest(w, "top %q: want a number from 1 to %d", v, maxTop)
			return
		}
		top = n
	}
	until := a.now()
	b := networks.NewReportBuilder(until.Add(-since.Duration), until, a.ASN, a.PrefixV4, a.PrefixV6)
	if err := b.Collect(r.Context(), a.Ops.Events); err != nil {
		serverError(w, "networks report: %v", err)
		return
	}
	reply(w, http.StatusOK, b.Report(top))
}

// Host is the answer of GET /v1/hosts/{addr}: `greypit db why` as data
// and as the text the CLI prints.
type Host struct {
	Why  control.Why `json:"why"`
	Text string      `json:"text,omitempty"`
}

// hostAddr validates the {addr} of a hosts URL: one IP address, no
// prefix and no zone.
func hostAddr(w http.ResponseWriter, r *http.Request) (string, bool) {
	s := r.PathValue("addr")
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		badRequest(w, "%q is not an IP address", s)
		return "", false
	}
	return a.Unmap().String(), true
}

func (a *Admin) host(w http.ResponseWriter, r *http.Request) {
	addr, ok := hostAddr(w, r)
	if !ok {
		return
	}
	why, err := a.Ops.Why(r.Context(), addr)
	if err != nil {
		serverError(w, "db why %s: %v", addr, err)
		return
	}
	reply(w, http.StatusOK, a.hostOf(why))
}

func (a *Admin) hostOf(why control.Why) Host {
	h := Host{Why: why}
	if a.Explain != nil {
		h.Text = a.Explain(why)
	}
	return h
}

// ReleaseRequest is the optional body of POST /v1/hosts/{addr}/release.
type ReleaseRequest struct {
	White  bool   `json:"white,omitempty"` // also whitelist the address
	Reason string `json:"reason,omitempty"`
}

// Release is the answer of POST /v1/hosts/{addr}/release.
type Release struct {
	Deleted []string `json:"deleted"`
	White   bool     `json:"white,omitempty"`
	Host
}

func (s *Server) release(w http.ResponseWriter, r *http.Request) {
	a := s.Admin
	addr, ok := hostAddr(w, r)
	if !ok {
		return
	}
	var req ReleaseRequest
	if err := decodeJSON(r, &req); err != nil && !errors.Is(err, io.EOF) {
		badRequest(w, "bad JSON body: %v", err)
		return
	}
	rel, err := control.Release(r.Context(), a.Ops, addr, req.White, req.Reason)
	if err != nil {
		serverError(w, "%v", err)
		return
	}
	s.Log.Info("api: released", "remote", r.RemoteAddr, "client", addr, "deleted", strings.Join(rel.Deleted, ","),
		"white", rel.White, "path", rel.Why.Decision.Path)
	reply(w, http.StatusOK, Release{Deleted: rel.Deleted, White: rel.White, Host: a.hostOf(rel.Why)})
}
