package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/greypit/greypit/internal/api"
	"github.com/greypit/greypit/internal/bigsenders"
	"github.com/greypit/greypit/internal/classify"
	"github.com/greypit/greypit/internal/config"
	"github.com/greypit/greypit/internal/control"
	"github.com/greypit/greypit/internal/dnsbl"
	"github.com/greypit/greypit/internal/dnsx"
	"github.com/greypit/greypit/internal/greylist"
	"github.com/greypit/greypit/internal/handoff"
	"github.com/greypit/greypit/internal/lists"
	"github.com/greypit/greypit/internal/metrics"
	"github.com/greypit/greypit/internal/networks"
	"github.com/greypit/greypit/internal/server"
	"github.com/greypit/greypit/internal/session"
	"github.com/greypit/greypit/internal/store"
	"github.com/greypit/greypit/internal/tarpit"
	"github.com/greypit/greypit/internal/traps"
)

// probeEvery is how often the backend's EHLO extensions are re-read.
const probeEvery = 5 * time.Minute

// newLogger returns the logger of cfg and the level a reload may change.
func newLogger(cfg *config.Config, w io.Writer) (*slog.Logger, *slog.LevelVar) {
	lvl := new(slog.LevelVar)
	lvl.Set(logLevel(cfg))
	opts := &slog.HandlerOptions{Level: lvl}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), lvl
	}
	return slog.New(slog.NewTextHandler(w, opts)), lvl
}

// logLevel is log.level (validated).
func logLevel(cfg *config.Config) slog.Level {
	var lvl slog.Level
	lvl.UnmarshalText([]byte(cfg.Log.Level))
	return lvl
}

func serve(args []string, stderr io.Writer) error {
	fs := newFlagSet("serve", stderr)
	var cf configFlags
	cf.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("serve: unexpected argument %q", fs.Arg(0))
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	return run(cfg, cf, stderr, true)
}

// run is `greypit serve` (withSMTP) and `greypit policy` (without); cf
// is where cfg came from, read again on SIGHUP.
func run(cfg *config.Config, cf configFlags, stderr io.Writer, withSMTP bool) error {
	log, level := newLogger(cfg, stderr)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	ost, err := openStore(cfg, 2*time.Second)
	if err != nil {
		return err
	}
	var st store.Store = ost
	// The grey cache batches greylist writes inside this process: only
	// for the file, which this process alone writes; with Redis the other
	// hosts must see each attempt at once.
	var greyCache *store.GreyCache
	if bst, ok := ost.(*store.Bolt); ok && cfg.Store.GreyFlushEvery.Duration > 0 {
		greyCache = store.NewGreyCache(bst)
		st = greyCache
	}
	defer st.Close()
	if r, ok := st.(*store.Redis); ok {
		// Not fatal: the daemon starts and applies store.unreachable
		// until Redis answers.
		if err := r.Ping(ctx); err != nil {
			log.Error("store unreachable at start", "store.unreachable", cfg.Store.Unreachable, "err", err)
		}
	}
	lset, err := lists.NewSetFiles(listFiles(cfg))
	if err != nil {
		return err
	}
	asn, closeASN, err := openASN(cfg)
	if err != nil {
		return err
	}
	defer closeASN()
	// Every write goes through obs, so each black host also counts
	// against its network.
	nets, err := newEngine(ctx, cfg, st, lset, asn, log)
	if err != nil {
		return err
	}
	if _, _, err := nets.Rebuild(ctx); err != nil {
		log.Error("network evaluation failed", "err", err)
	}
	obs := networks.Observe(st, nets, log)
	var history *networks.Recorder
	if cfg.Networks.HistoryRetention.Duration > 0 {
		history = networks.NewRecorder(st, cfg.Networks.HistoryRetention.Duration, log)
		defer history.Close()
		obs.Trap = func(a netip.Addr, e store.Entry) {
			history.Record(store.Event{Time: time.Now(), Client: a.String(), Path: "black", Outcome: "trap-hit", Trap: true})
		}
	}
	tlsh, err := server.NewTLSHolder(cfg.SMTP.TLSCert, cfg.SMTP.TLSKey)
	if err != nil {
		return err
	}
	trapFiles, err := traps.LoadFiles(cfg.Traps.Files)
	if err != nil {
		return err
	}

	// Listeners first: a port that is taken is the commonest startup
	// failure, and it should stop greypit before anything else runs. Until
	// the servers own them, a failed start closes what was opened.
	var opened []io.Closer
	started := false
	defer func() {
		if !started {
			for _, c := range opened {
				c.Close()
			}
		}
	}()
	var lns []net.Listener
	smtpListen := cfg.SMTP.Listen
	if !withSMTP {
		smtpListen = nil
	}
	for _, a := range smtpListen {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			return fmt.Errorf("smtp.listen: %w", err)
		}
		lns = append(lns, ln)
		opened = append(opened, ln)
	}
	webLn, err := listenTrapWeb(cfg)
	if err != nil {
		return err
	}
	if webLn != nil {
		opened = append(opened, webLn)
	}
	var dnsPC net.PacketConn
	var dnsLn net.Listener
	if cfg.DNSBL.ServeListen != "" {
		if dnsPC, dnsLn, err = listenDNSBL(cfg); err != nil {
			return err
		}
		opened = append(opened, dnsPC, dnsLn)
	}
	var metricsLn net.Listener
	if cfg.Metrics.Listen != "" {
		if metricsLn, err = net.Listen("tcp", cfg.Metrics.Listen); err != nil {
			return fmt.Errorf("metrics.listen: %w", err)
		}
		opened = append(opened, metricsLn)
	}
	var apiLn net.Listener
	if cfg.API.Listen != "" {
		if apiLn, err = net.Listen("tcp", cfg.API.Listen); err != nil {
			return fmt.Errorf("api.listen: %w", err)
		}
		opened = append(opened, apiLn)
	}
	if err := checkFollowState(cfg); err != nil {
		return err
	}
	var policyLn net.Listener
	if cfg.Policy.Listen != "" {
		if policyLn, err = listenPolicy(cfg.Policy.Listen); err != nil {
			return fmt.Errorf("policy.listen: %w", err)
		}
		defer policyLn.Close()
	}
	ctlLn, err := control.Listen(cfg.ControlSocket())
	if err != nil {
		return fmt.Errorf("control.socket: %w", err)
	}
	defer os.Remove(cfg.ControlSocket())

	classifier := &classify.Classifier{Lists: lset, Store: obs}
	if err := addDNSBL(cfg, classifier, log); err != nil {
		return err
	}
	// SPF keying and big senders are on by default; without a resolver
	// they are turned off with a warning rather than stopping greypit.
	resolver, err := resolverFor(cfg)
	if err != nil && (cfg.Greylist.SPF || cfg.Big.Enabled) {
		log.Warn("no DNS resolver: SPF-aware greylisting and big senders are off", "err", err)
	}
	var bigProviders []bigsenders.Provider
	var bigSet *bigsenders.Set
	if resolver != "" {
		bigSet = &bigsenders.Set{}
	}
	if cfg.Big.Enabled && resolver != "" {
		if bigProviders, err = loadBigSenders(cfg); err != nil {
			return err
		}
		classifier.BigSenders = bigSet
	}
	dialer := newDialer(cfg)
	caps := &handoff.Capabilities{MaxSize: cfg.SMTP.MaxMessageSize}
	srv := &server.Server{
		Log:        log,
		Classifier: classifier,
		Store:      obs,
		Dialer:     dialer,
	}
	lv := &live{cf: cf, log: log, level: level, store: obs, classifier: classifier, lists: lset,
		tls: tlsh, caps: caps, srv: srv, trapFiles: trapFiles, big: bigSet,
	}
	lv.cfg.Store(cfg)
	grey := lv.grey(cfg)
	if history != nil {
		srv.History = history.Record
	}
	ops := &control.Local{
		Store:      obs,
		Classifier: classifier,
		WhiteTTL:   cfg.Greylist.WhiteTTL.Duration,
		PrefixV4:   cfg.Greylist.PrefixV4,
		PrefixV6:   cfg.Greylist.PrefixV6,
		Networks:   nets,
	}
	if ops.Feedback, err = newApplier(cfg, obs, classifier); err != nil {
		return err
	}

	var sampler *tarpit.Sampler
	if cfg.Tarpit.SampleFile != "" {
		if sampler, err = tarpit.NewSampler(cfg.Tarpit.SampleFile, cfg.Tarpit.SampleMaxSize); err != nil {
			return err
		}
		defer sampler.Close()
	}
	tp := tarpit.New(tarpitConfig(cfg, sampler), srv.LogTarpit)
	srv.Tarpit = tp
	lv.tarpit, lv.sampler = tp, sampler
	trapChecker := newTrapChecker(cfg, classifier, obs, trapFiles)
	srv.Reload(lv.serverSettings(cfg, grey, tlsh, trapChecker))
	lv.protected = ops.Feedback.Protected.Reload

	var wg sync.WaitGroup
	bg := func(f func()) {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	if greyCache != nil {
		bg(func() {
			greyCache.Run(ctx, cfg.Store.GreyFlushEvery.Duration, func(err error) {
				log.Error("greylist flush failed; retrying at the next interval", "err", err, "pending", greyCache.Pending())
			})
		})
	}
	bg(func() {
		ost.RunExpiry(ctx, cfg.Store.ExpireEvery.Duration, func(n int, err error) {
			if err != nil {
				log.Error("expiry sweep failed", "err", err)
			} else if n > 0 {
				log.Info("expired entries removed", "count", n)
			}
		})
	})
	if withSMTP {
		bg(func() { probeLoop(ctx, caps, dialer, log) })
	}
	bg(func() {
		if err := control.Serve(ctx, ctlLn, ops, log); err != nil {
			log.Error("control socket stopped", "err", err)
		}
	})
	bg(func() { pollLists(ctx, lset, cfg.Lists.PollEvery.Duration, log) })
	bg(func() { tp.Run(ctx) })
	lv.trapWatch = startLoop(ctx, func(ctx context.Context) { watchTrapFiles(ctx, trapFiles, log) })
	if webLn != nil {
		bg(func() { serveTrapWeb(ctx, cfg, webLn, st, log) })
	}
	bg(func() { evaluateNetworks(ctx, nets, cfg.Networks.EvaluateEvery.Duration, log) })
	lv.dnsblHealth = lv.startDNSBLHealth(ctx, classifier.DNSBL, cfg)
	if classifier.BigSenders != nil {
		lv.bigRun = startLoop(ctx, func(ctx context.Context) {
			bigSet.Run(ctx, dnsx.NetResolver(resolver), bigProviders, cfg.Big.Refresh.Duration, log)
		})
	}
	if dnsPC != nil {
		zone := &dnsbl.Server{Zone: cfg.DNSBL.ServeZone, Hostname: cfg.SMTP.Hostname, Store: st,
			TTL: cfg.DNSBL.ServeTTL.Duration, Rate: cfg.DNSBL.ServeRate, Log: log}
		log.Info("dnsbl zone listening", "addr", dnsPC.LocalAddr().String(), "zone", cfg.DNSBL.ServeZone)
		bg(func() {
			if err := zone.Serve(ctx, dnsPC, dnsLn); err != nil {
				log.Error("dnsbl zone stopped", "err", err)
			}
		})
	}
	if len(cfg.Follow.Files) > 0 {
		bg(func() { runFollower(ctx, cfg, ops.Feedback, log) })
	}

	if apiLn != nil {
		log.Info("api listening", "addr", apiLn.Addr().String(), "dashboard", "http://"+apiLn.Addr().String()+"/")
		if ap, err := netip.ParseAddrPort(apiLn.Addr().String()); err == nil && !ap.Addr().IsLoopback() {
			log.Warn("api.listen is not a loopback address: the token is sent in clear; prefer a tunnel or a TLS proxy", "addr", ap.String())
		}
		history := metrics.NewHistory(cfg.API.SampleEvery.Duration, cfg.API.Samples)
		bg(func() { history.Run(ctx) })
		admin := &api.Admin{Ops: ops, History: history, ASN: asn,
			PrefixV4: cfg.Networks.PrefixV4, PrefixV6: cfg.Networks.PrefixV6, Explain: whyText}
		bg(func() {
			a := &api.Server{Token: cfg.API.Token, Applier: ops.Feedback, Log: log, Admin: admin}
			if err := a.Serve(ctx, apiLn); err != nil {
				log.Error("api stopped", "err", err)
			}
		})
	}

	if metricsLn != nil {
		v := Version
		metrics.BuildVersion.Store(&v)
		log.Info("metrics listening", "addr", metricsLn.Addr().String())
		bg(func() {
			if err := metrics.Serve(ctx, metricsLn, log); err != nil {
				log.Error("metrics stopped", "err", err)
			}
		})
	}

	errc := make(chan error, len(lns)+1)
	if policyLn != nil {
		ps, err := newPolicyServer(cfg, log, classifier, obs, grey, trapChecker)
		if err != nil {
			stop()
			wg.Wait()
			return err
		}
		lv.policy = ps
		lns = append(lns, policyLn)
		log.Info("policy server listening", "addr", cfg.Policy.Listen, "whitelist_entries", ps.Whitelist.Load().Len(), "store", cfg.Store.Path)
		go func() { errc <- ps.Serve(ctx, policyLn) }()
	}
	// One goroutine handles every SIGHUP, so reloads never overlap.
	bg(func() { onSIGHUP(ctx, func() { lv.onHUP(ctx) }) })
	started = true
	for _, ln := range lns[:len(smtpListen)] {
		log.Info("listening", "addr", ln.Addr().String(), "backend", cfg.Backend.Address, "handoff", cfg.Backend.Handoff, "store", cfg.Store.Path)
		go func() { errc <- srv.Serve(ctx, ln) }()
	}
	var serveErr error
	for range lns {
		if err := <-errc; err != nil && serveErr == nil {
			serveErr = err
			stop() // one listener failed for good: shut down the rest
		}
	}
	drain := lv.cfg.Load().SMTP.DrainTimeout.Duration
	log.Info("shutting down: draining sessions", "active", srv.Active(), "timeout", drain)
	dctx, cancel := context.WithTimeout(context.Background(), drain)
	srv.Drain(dctx)
	cancel()
	wg.Wait()
	lv.stopLoops()
	history.Close() // the last sessions' events, before the store closes
	log.Info("stopped")
	return serveErr
}

// probeLoop keeps the backend's EHLO extensions current, so greypit only
// offers grey clients what the backend will honour after a hand-off.
// newDialer is the backend dialer of cfg.
func newDialer(cfg *config.Config) *handoff.Dialer {
	return &handoff.Dialer{
		Address:        cfg.Backend.Address,
		Mode:           handoff.Mode(cfg.Backend.Handoff),
		ConnectTimeout: cfg.Backend.ConnectTimeout.Duration,
		ReplyTimeout:   cfg.Backend.ReplyTimeout.Duration,
		Hostname:       cfg.BackendHelloName(),
	}
}

func probeLoop(ctx context.Context, caps *handoff.Capabilities, d *handoff.Dialer, log *slog.Logger) {
	t := time.NewTicker(probeEvery)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		if err := caps.Probe(pctx, d); err != nil && ctx.Err() == nil {
			log.Warn("backend probe failed", "err", err)
		}
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sessionConfig is the grey session settings of cfg; ext returns the
// EHLO extensions.
func sessionConfig(cfg *config.Config, tlsh *server.TLSHolder, ext func() []string) session.Config {
	return session.Config{
		Hostname:       cfg.SMTP.Hostname,
		GreetWait:      cfg.SMTP.GreetWait.Duration,
		CommandTimeout: cfg.SMTP.CommandTimeout.Duration,
		SessionTimeout: cfg.SMTP.SessionTimeout.Duration,
		MaxErrors:      cfg.SMTP.MaxErrors,
		MaxRecipients:  cfg.SMTP.MaxRecipients,
		MaxMessageSize: cfg.SMTP.MaxMessageSize,
		TLS:            tlsh.Config,
		Extensions:     ext,
		Stutter:        cfg.Tarpit.Stutter.Duration,
		StutterFor:     cfg.Tarpit.GreyStutterFor.Duration,
	}
}

// tarpitConfig is the tarpit settings of cfg.
func tarpitConfig(cfg *config.Config, sampler *tarpit.Sampler) tarpit.Config {
	return tarpit.Config{
		Hostname:       cfg.SMTP.Hostname,
		Stutter:        cfg.Tarpit.Stutter.Duration,
		ReplyCode:      cfg.Tarpit.ReplyCode,
		Blackhole:      cfg.Tarpit.Blackhole,
		MaxSessions:    cfg.Tarpit.MaxSessions,
		MaxPerPrefix:   cfg.Tarpit.MaxPerPrefix,
		PrefixV4:       cfg.Greylist.PrefixV4,
		PrefixV6:       cfg.Greylist.PrefixV6,
		Pressure:       cfg.Tarpit.Pressure,
		IdleTimeout:    cfg.Tarpit.IdleTimeout.Duration,
		DataTimeout:    cfg.SMTP.DataTimeout.Duration,
		SessionTimeout: cfg.Tarpit.SessionTimeout.Duration,
		MaxDataSize:    cfg.Tarpit.MaxDataSize,
		Sampler:        sampler,
	}
}

// onSIGHUP calls fn at every SIGHUP until ctx is done.
func onSIGHUP(ctx context.Context, fn func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		}
		fn()
	}
}

// newGreylister is the greylist engine on st with the [greylist] timings,
// selective mode and SPF keying (spf may be nil); the SMTP front line and
// the policy server share its settings.
func newGreylister(cfg *config.Config, st store.Store, selective bool, spf *greylist.SPF) *greylist.Greylister {
	return &greylist.Greylister{
		Store: st,
		Params: store.GreyParams{
			PassDelay:   cfg.Greylist.PassDelay.Duration,
			RetryWindow: cfg.Greylist.RetryWindow.Duration,
			PassedTTL:   cfg.Greylist.WhiteTTL.Duration,
		},
		PrefixV4:  cfg.Greylist.PrefixV4,
		PrefixV6:  cfg.Greylist.PrefixV6,
		Selective: selective,
		SPF:       spf,
		FailOpen:  cfg.Store.Unreachable == config.StoreOpen,
	}
}
