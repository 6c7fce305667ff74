package cli

import (
	"context"
	"log/slog"
	"time"

	"github.com/greypit/greypit/internal/config"
	"github.com/greypit/greypit/internal/lists"
	"github.com/greypit/greypit/internal/networks"
)

// listFiles collects the list file keys of cfg.
func listFiles(cfg *config.Config) lists.Files {
	return lists.Files{Allow: cfg.Lists.Allow, Block: cfg.Lists.Block, DROP: cfg.Lists.DROP, SpamdConf: cfg.Lists.SpamdConf}
}

// pollLists reloads the list files when one changes (lists.poll_every),
// so an updated DROP file or block list needs no SIGHUP.
func pollLists(ctx context.Context, l *lists.Set, every time.Duration, log *slog.Logger) {
	tick(ctx, every, func() {
		changed, err := l.Poll()
		switch {
		case err != nil:
			log.Error("list file changed but does not load; keeping the previous lists", "err", err)
		case changed:
			log.Info("list file changed; reloaded lists", "prefixes", l.Counts())
		}
	})
}

// evaluateNetworks re-reads and re-judges every network periodically
// (networks.evaluate_every): expired evidence, entries written elsewhere.
func evaluateNetworks(ctx context.Context, e *networks.Engine, every time.Duration, log *slog.Logger) {
	tick(ctx, every, func() {
		up, down, err := e.Rebuild(ctx)
		if err != nil && ctx.Err() == nil {
			log.Error("network re-evaluation failed", "err", err)
		} else if up+down > 0 {
			log.Info("networks re-evaluated", "escalated", up, "de_escalated", down)
		}
	})
}

// tick calls fn every interval until ctx is done; a zero interval never.
func tick(ctx context.Context, every time.Duration, fn func()) {
	if every <= 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		fn()
	}
}
