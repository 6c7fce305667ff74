package metrics

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"sync/atomic"
	"time"
)

// Default holds greypit's metrics; the packages that do the work count
// into the variables below, and `serve` exposes Default on metrics.listen.
var Default = &Registry{}

// The metrics a mail operator watches. Path is white, grey, black or none
// (refused before a path: busy, proxy-error); outcome is the verdict
// line's outcome.
var (
	Sessions = Default.NewCounterVec("greypit_sessions_total",
		"SMTP sessions ended, by path and verdict outcome.", "path", "outcome")
	Active = Default.NewGaugeVec("greypit_sessions_active",
		"Sessions open now, by path (black: held by the tarpit or refused).", "path")

	Greylist = Default.NewCounterVec("greypit_greylist_total",
		"Greylist checks of a tuple, by outcome: new (deferred, first seen), early (deferred, retried too soon), pass.", "outcome")
	GreylistDelay = Default.NewHistogram("greypit_greylist_pass_delay_seconds",
		"Time from a tuple's first attempt to the retry that passed.",
		[]float64{60, 180, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400, 172800})

	Handoffs = Default.NewCounterVec("greypit_backend_sessions_total",
		"Connections to the backend that were set up, by kind: splice (white) or handoff (grey passed).", "kind")
	BackendErrors = Default.NewCounterVec("greypit_backend_errors_total",
		"Failed backend set-ups, by step (connect, proxy header, greeting, ...).", "step")

	TarpitHeld = Default.NewFloatCounter("greypit_tarpit_held_seconds_total",
		"Seconds black hosts were held by the tarpit (time wasted for spammers).")
	TarpitDripped = Default.NewCounter("greypit_tarpit_dripped_bytes_total",
		"Bytes the tarpit dripped to black hosts.")

	TrapHits = Default.NewCounter("greypit_trap_hits_total",
		"Spamtrap hits by grey hosts (each blacklists the host).")
	Feedback = Default.NewCounterVec("greypit_feedback_verdicts_total",
		"Spam/ham verdicts applied, by source (cli, api, follow ...) and verdict.", "source", "verdict")

	DNSBLLookups = Default.NewCounterVec("greypit_dnsbl_lookups_total",
		"DNSBL lookups, by list and result: hit, miss, timeout, error.", "list", "result")

	Policy = Default.NewCounterVec("greypit_policy_requests_total",
		"Postfix policy delegation answers, by action verb.", "action")

	StoreErrors = Default.NewCounterVec("greypit_store_errors_total",
		"Failed store operations on the SMTP path, by operation.", "op")
)

// BuildVersion is greypit's version for greypit_build_info; `serve` sets
// it from the link-time version.
var BuildVersion atomic.Pointer[string]

func init() {
	Default.NewInfo("greypit_build_info", "greypit's version and Go version; always 1.",
		[]string{"version", "goversion"}, func() []string {
			v := "dev"
			if p := BuildVersion.Load(); p != nil {
				v = *p
			}
			return []string{v, runtime.Version()}
		})
}

// Handler serves GET /metrics in the text exposition format.
func Handler(r *Registry) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		r.Write(w)
	})
	return mux
}

// Serve answers scrapes on ln until ctx is done.
func Serve(ctx context.Context, ln net.Listener, log *slog.Logger) error {
	hs := &http.Server{
		Handler:           Handler(Default),
		ReadHeaderTimeout: 10 * time.Second,
		WriteTimeout:      30 * time.Second,
		MaxHeaderBytes:    8 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	stop := context.AfterFunc(ctx, func() { hs.Close() })
	defer stop()
	if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
