// Package api serves greypit's HTTP endpoint: verdicts from the tools
// behind the MTA (POST /v1/feedback for a spam or ham verdict on a client
// address, POST /v1/rspamd for rspamd's metadata_exporter, which is
// sturdier than reading rspamd's log), the admin API (admin.go: stats,
// top networks, host lookup and release) and the dashboard drawn from it
// (dashboard.go).
//
// Every /v1 request must carry the configured token (Authorization:
// Bearer); without it the answer is 401 and nothing changes. Only the
// dashboard's own files are served without it: they hold no data. The
// endpoint is meant for loopback, so the token guards against other local
// users, not the network.
package api

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/greypit/greypit/internal/feedback"
)

// Sources recorded with verdicts from this endpoint.
const (
	SourceFeedback = "feedback:http"
	SourceRspamd   = "rspamd:http"
)

// maxBody bounds a request body; rspamd's JSON carries headers and
// symbols, still far below this.
const maxBody = 1 << 20

// Applier applies a verdict; *feedback.Applier is one.
type Applier interface {
	Apply(ctx context.Context, v feedback.Verdict) (feedback.Result, error)
}

// Server is the endpoint.
type Server struct {
	Token   string
	Applier Applier
	Log     *slog.Logger
	// Admin, if set, adds the admin API and the dashboard.
	Admin *Admin
}

// FeedbackRequest is the body of POST /v1/feedback.
type FeedbackRequest struct {
	Verdict string `json:"verdict"` // spam or ham
	Address string `json:"address"` // the client's IP address
	Reason  string `json:"reason,omitempty"`
}

// rspamdRequest is the part of metadata_exporter's JSON that matters.
type rspamdRequest struct {
	Action    string  `json:"action"`
	IP        string  `json:"ip"`
	QID       string  `json:"qid"`
	MessageID string  `json:"message_id"`
	Score     float64 `json:"score"`
}

// Handler returns the HTTP handler.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/feedback", s.auth(s.feedback))
	mux.HandleFunc("POST /v1/rspamd", s.auth(s.rspamd))
	if a := s.Admin; a != nil {
		mux.HandleFunc("GET /v1/stats", s.auth(a.stats))
		mux.HandleFunc("GET /v1/networks/top", s.auth(a.topNetworks))
		mux.HandleFunc("GET /v1/hosts/{addr}", s.auth(a.host))
		mux.HandleFunc("POST /v1/hosts/{addr}/release", s.auth(s.release))
		dashboard(mux)
	}
	return mux
}

// Serve answers on ln until ctx is done.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.Log.Handler(), slog.LevelWarn),
	}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hs.Shutdown(sctx)
	}()
	if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (s *Server) auth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || s.Token == "" || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(tok)), []byte(s.Token)) != 1 {
			s.Log.Warn("api: request without a valid token", "remote", r.RemoteAddr, "path", r.URL.Path)
			w.Header().Set("WWW-Authenticate", `Bearer realm="greypit"`)
			reply(w, http.StatusUnauthorized, map[string]string{"error": "missing or wrong token"})
			return
		}
		h(w, r)
	}
}

func reply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func badRequest(w http.ResponseWriter, format string, args ...any) {
	reply(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf(format, args...)})
}

func serverError(w http.ResponseWriter, format string, args ...any) {
	reply(w, http.StatusInternalServerError, map[string]string{"error": fmt.Sprintf(format, args...)})
}

// decodeJSON reads one JSON value of at most maxBody bytes; an empty body
// is io.EOF.
func decodeJSON(r *http.Request, v any) error {
	if r.Body == nil { // a server's requests always have one; a handler's caller may not
		return io.EOF
	}
	return json.NewDecoder(io.LimitReader(r.Body, maxBody)).Decode(v)
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := decodeJSON(r, v); err != nil {
		badRequest(w, "bad JSON body: %v", err)
		return false
	}
	return true
}

func (s *Server) apply(w http.ResponseWriter, r *http.Request, v feedback.Verdict) {
	res, err := s.Applier.Apply(r.Context(), v)
	if err != nil {
		s.Log.Warn("api: verdict failed", "remote", r.RemoteAddr, "client", v.Client, "verdict", v.Kind, "err", err)
		reply(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	s.Log.Info("api: feedback", "client", res.Client, "verdict", v.Kind, "source", v.Source, "reason", v.Reason,
		"changes", res.Changes, "skipped", res.Skipped, "path", res.Path)
	reply(w, http.StatusOK, res)
}

func (s *Server) feedback(w http.ResponseWriter, r *http.Request) {
	var req FeedbackRequest
	if !decode(w, r, &req) {
		return
	}
	s.apply(w, r, feedback.Verdict{Kind: req.Verdict, Client: req.Address, Reason: req.Reason, Source: SourceFeedback})
}

func (s *Server) rspamd(w http.ResponseWriter, r *http.Request) {
	var req rspamdRequest
	if !decode(w, r, &req) {
		return
	}
	if req.Action != "reject" {
		// Only a reject is a verdict; the exporter's selector may send more.
		reply(w, http.StatusOK, map[string]string{"skipped": "action " + req.Action + " is not reject"})
		return
	}
	reason := "rspamd reject"
	if req.QID != "" {
		reason += ", queue id " + req.QID
	}
	s.apply(w, r, feedback.Verdict{Kind: feedback.Spam, Client: req.IP, Reason: reason, Source: SourceRspamd})
}
