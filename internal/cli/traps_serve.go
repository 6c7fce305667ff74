package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/greypit/greypit/internal/classify"
	"github.com/greypit/greypit/internal/config"
	"github.com/greypit/greypit/internal/store"
	"github.com/greypit/greypit/internal/traps"
)

// trapFilesPoll is how often the trap files are checked for changes.
const trapFilesPoll = time.Second

func newTrapChecker(cfg *config.Config, c *classify.Classifier, st store.Store, files *traps.Files) *traps.Checker {
	var domains []string
	for _, d := range cfg.Traps.Domains {
		domains = append(domains, strings.ToLower(strings.TrimSuffix(d, ".")))
	}
	return &traps.Checker{
		Classifier: c,
		Store:      st,
		Files:      files,
		Domains:    domains,
		WebDomain:  strings.ToLower(strings.TrimSuffix(cfg.Traps.WebDomain, ".")),
		BlackTTL:   cfg.Traps.BlackTTL.Duration,
		MaxTTL:     cfg.Traps.MaxBlackTTL.Duration,
		Keep:       cfg.Traps.Keep.Duration,
	}
}

// watchTrapFiles reloads the trap files on change and on SIGHUP.
func watchTrapFiles(ctx context.Context, f *traps.Files, log *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	f.Watch(ctx, trapFilesPoll, hup, log)
}

func listenTrapWeb(cfg *config.Config) (net.Listener, error) {
	if cfg.Traps.WebListen == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", cfg.Traps.WebListen)
	if err != nil {
		return nil, fmt.Errorf("traps.web_listen: %w", err)
	}
	return ln, nil
}

func serveTrapWeb(ctx context.Context, cfg *config.Config, ln net.Listener, st store.Store, log *slog.Logger) {
	log.Info("harvester page listening", "addr", ln.Addr().String(), "domain", cfg.Traps.WebDomain)
	w := &traps.Web{
		Store:  st,
		Domain: cfg.Traps.WebDomain,
		Burst:  cfg.Traps.WebBurst,
		Every:  cfg.Traps.WebEvery.Duration,
		Keep:   cfg.Traps.Keep.Duration,
		Log:    log,
	}
	if err := traps.ServeWeb(ctx, ln, w); err != nil {
		log.Error("harvester page stopped", "err", err)
	}
}
