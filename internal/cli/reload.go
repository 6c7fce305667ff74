package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/greypit/greypit/internal/bigsenders"
	"github.com/greypit/greypit/internal/classify"
	"github.com/greypit/greypit/internal/config"
	"github.com/greypit/greypit/internal/dnsbl"
	"github.com/greypit/greypit/internal/dnsx"
	"github.com/greypit/greypit/internal/greylist"
	"github.com/greypit/greypit/internal/handoff"
	"github.com/greypit/greypit/internal/lists"
	"github.com/greypit/greypit/internal/policy"
	"github.com/greypit/greypit/internal/server"
	"github.com/greypit/greypit/internal/store"
	"github.com/greypit/greypit/internal/tarpit"
	"github.com/greypit/greypit/internal/traps"
)

// live is what a SIGHUP rebuilds: the running daemon's reloadable parts,
// each swapped in one atomic store once everything new has been built,
// so a reload that fails anywhere changes nothing.
type live struct {
	cf    configFlags // the -config file and -set overrides the daemon started with
	cfg   atomic.Pointer[config.Config]
	log   *slog.Logger
	level *slog.LevelVar

	store      store.Store // obs: every write counts against its network
	classifier *classify.Classifier
	lists      *lists.Set
	tls        *server.TLSHolder
	caps       *handoff.Capabilities
	srv        *server.Server
	tarpit     *tarpit.Tarpit
	sampler    *tarpit.Sampler
	policy     *policy.Server // nil without policy.listen
	trapFiles  *traps.Files
	big        *bigsenders.Set // nil without a resolver
	protected  func() error    // reloads candidates.protected

	// Background loops a reload restarts when their keys change.
	trapWatch, dnsblHealth, bigRun *loop
}

// loop is a background goroutine that a reload may stop and replace.
type loop struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// startLoop runs f until ctx ends or the loop is stopped.
func startLoop(ctx context.Context, f func(ctx context.Context)) *loop {
	ctx, cancel := context.WithCancel(ctx)
	l := &loop{cancel: cancel, done: make(chan struct{})}
	go func() { defer close(l.done); f(ctx) }()
	return l
}

// stop ends the loop and waits for it; a nil loop is a no-op.
func (l *loop) stop() {
	if l != nil {
		l.cancel()
		<-l.done
	}
}

// grey builds the greylister of cfg.
func (lv *live) grey(cfg *config.Config) *greylist.Greylister {
	var spf *greylist.SPF
	if cfg.Greylist.SPF {
		if r, err := resolverFor(cfg); err == nil {
			spf = &greylist.SPF{Resolver: dnsx.NetResolver(r), Timeout: cfg.Greylist.SPFTimeout.Duration}
		}
	}
	return newGreylister(cfg, lv.store, cfg.Greylist.Mode == config.GreylistSelective, spf)
}

// serverSettings are the SMTP front line's settings of cfg.
func (lv *live) serverSettings(cfg *config.Config, grey *greylist.Greylister, tlsh *server.TLSHolder, tc *traps.Checker) *server.Settings {
	max := cfg.SMTP.MaxMessageSize
	set := &server.Settings{
		Greylist:    grey,
		Black:       server.Reject{Hostname: cfg.SMTP.Hostname},
		PregreetTTL: cfg.Tarpit.PregreetTTL.Duration,
		Session:     sessionConfig(cfg, tlsh, func() []string { return lv.caps.LinesFor(max) }),
		WhiteTTL:    cfg.Greylist.WhiteTTL.Duration,
		MaxSessions: cfg.SMTP.MaxSessions,
		Traps:       tc,
	}
	if cfg.SMTP.ProxyProtocol {
		trusted, _ := config.ParsePrefixes(cfg.SMTP.ProxyTrusted) // validated
		set.Proxy = &server.ProxyIn{Trusted: trusted, Timeout: cfg.SMTP.ProxyTimeout.Duration}
	}
	return set
}

// onHUP re-reads the config file with the same -set overrides and puts
// what changed in force for new sessions. An invalid file changes no
// setting; the files the running config names are read again either way,
// as SIGHUP always did.
func (lv *live) onHUP(ctx context.Context) {
	cur := lv.cfg.Load()
	file, err := lv.cf.load()
	var next *config.Config
	if err == nil {
		next, err = config.Running(cur, file)
	}
	if err != nil {
		lv.log.Error("config reload failed; the running configuration stays in force", "err", err)
		lv.reloadFiles(cur, nil)
		return
	}
	changed, restart := config.Diff(cur, file)
	if len(restart) > 0 {
		lv.log.Warn("config keys changed that need a restart; they keep their running values until then", "keys", restart)
	}
	if err := lv.apply(ctx, next, changed); err != nil {
		lv.log.Error("config reload failed; the running configuration stays in force", "err", err)
		lv.reloadFiles(cur, nil)
	}
}

// changedIn reports whether a key of changed is one of keys, or in a
// section named as "section.".
func changedIn(changed []string, keys ...string) bool {
	return slices.ContainsFunc(changed, func(k string) bool {
		return slices.ContainsFunc(keys, func(p string) bool { return k == p || strings.HasSuffix(p, ".") && strings.HasPrefix(k, p) })
	})
}

// reloadFiles re-reads the contents of the files cfg names: lists, the
// certificate, candidates.protected and, with a policy server, its
// whitelists. A broken file keeps its previous contents. skip names what
// the caller has just loaded.
func (lv *live) reloadFiles(cfg *config.Config, skip map[string]bool) {
	var errs []error
	if !skip["lists"] {
		errs = append(errs, lv.lists.Reload())
	}
	if !skip["tls"] {
		errs = append(errs, lv.tls.Load())
	}
	errs = append(errs, lv.protected())
	if err := errors.Join(errs...); err != nil {
		lv.log.Error("reload failed; keeping the previous lists and certificate where broken", "err", err)
	} else {
		lv.log.Info("reloaded lists and certificate", "prefixes", lv.lists.Counts())
	}
	if lv.policy != nil && !skip["whitelist"] {
		wl, err := loadWhitelist(cfg, lv.log)
		if err != nil {
			lv.log.Error("policy whitelist reload failed; keeping the previous one", "err", err)
			return
		}
		lv.policy.Whitelist.Store(wl)
		lv.log.Info("reloaded policy whitelists", "entries", wl.Len())
	}
}

// apply builds everything next needs, then swaps it in. Until the swaps
// at the end nothing running has changed, so an error leaves it all as it
// was.
func (lv *live) apply(ctx context.Context, next *config.Config, changed []string) error {
	skip := map[string]bool{}
	tlsh := lv.tls
	if changedIn(changed, "smtp.tls_cert", "smtp.tls_key") {
		h, err := server.NewTLSHolder(next.SMTP.TLSCert, next.SMTP.TLSKey)
		if err != nil {
			return err
		}
		tlsh, skip["tls"] = h, true
	}
	files := lv.trapFiles
	if changedIn(changed, "traps.files") {
		f, err := traps.LoadFiles(next.Traps.Files)
		if err != nil {
			return fmt.Errorf("traps.files: %w", err)
		}
		files = f
	}
	var wl *policy.Whitelist
	if lv.policy != nil && changedIn(changed, "policy.whitelist_clients", "policy.whitelist_recipients") {
		w, err := loadWhitelist(next, lv.log)
		if err != nil {
			return err
		}
		wl, skip["whitelist"] = w, true
	}
	src := lv.classifier.Sources()
	src.Selective = next.Greylist.Mode == config.GreylistSelective
	dnsblChanged := changedIn(changed, "dnsbl.")
	if dnsblChanged {
		chk, err := newDNSBL(next, lv.log)
		if err != nil {
			return err
		}
		src.DNSBL = chk
	}
	bigChanged := lv.big != nil && changedIn(changed, "bigsenders.", "dnsbl.resolver")
	var providers []bigsenders.Provider
	var resolver string
	if bigChanged && next.Big.Enabled {
		ps, err := loadBigSenders(next)
		if err != nil {
			return fmt.Errorf("bigsenders: %w", err)
		}
		if resolver, err = resolverFor(next); err != nil {
			return err
		}
		providers = ps
	}
	// The last step that can fail swaps the lists itself; all after it
	// cannot fail.
	if changedIn(changed, "lists.allow", "lists.block", "lists.drop", "lists.spamd_conf") {
		if err := lv.lists.SetFiles(listFiles(next)); err != nil {
			return err
		}
		skip["lists"] = true
	}

	lv.level.Set(logLevel(next))
	if bigChanged {
		src.BigSenders = nil
		lv.bigRun.stop()
		lv.bigRun = nil
		if next.Big.Enabled {
			src.BigSenders = lv.big
			lv.bigRun = startLoop(ctx, func(ctx context.Context) {
				lv.big.Run(ctx, dnsx.NetResolver(resolver), providers, next.Big.Refresh.Duration, lv.log)
			})
		}
	}
	lv.classifier.Swap(src)
	if dnsblChanged {
		lv.dnsblHealth.stop()
		lv.dnsblHealth = lv.startDNSBLHealth(ctx, src.DNSBL, next)
	}
	if files != lv.trapFiles {
		lv.trapWatch.stop()
		lv.trapFiles = files
		lv.trapWatch = startLoop(ctx, func(ctx context.Context) { watchTrapFiles(ctx, files, lv.log) })
	}
	tc := newTrapChecker(next, lv.classifier, lv.store, files)
	grey := lv.grey(next)
	lv.tls = tlsh
	lv.srv.Reload(lv.serverSettings(next, grey, tlsh, tc))
	lv.tarpit.SetConfig(tarpitConfig(next, lv.sampler))
	if lv.policy != nil {
		lv.policy.Reload(policySettings(next, grey, tc))
		if wl != nil {
			lv.policy.Whitelist.Store(wl)
		}
	}
	lv.cfg.Store(next)
	lv.log.Info("config reloaded", "changed", changed)
	lv.reloadFiles(next, skip)
	return nil
}

// stopLoops ends the loops a reload may replace.
func (lv *live) stopLoops() {
	lv.trapWatch.stop()
	lv.dnsblHealth.stop()
	lv.bigRun.stop()
}

// startDNSBLHealth runs the RFC 5782 checks of chk (none when nil).
func (lv *live) startDNSBLHealth(ctx context.Context, chk *dnsbl.Checker, cfg *config.Config) *loop {
	if chk == nil {
		return nil
	}
	every := cfg.DNSBL.HealthEvery.Duration
	return startLoop(ctx, func(ctx context.Context) { chk.RunHealth(ctx, every, lv.log) })
}
