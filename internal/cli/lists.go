package cli

import (
	"context"
	"log/slog"
	"time"

	"github.com/greypit/greypit/internal/config"
	"github.com/greypit/greypit/internal/lists"
)

// listFiles collects the list file keys of cfg.
func listFiles(cfg *config.Config) lists.Files {
	return lists.Files{Allow: cfg.Lists.Allow, Block: cfg.Lists.Block, DROP: cfg.Lists.DROP, SpamdConf: cfg.Lists.SpamdConf}
}

// pollLists reloads the list files when one changes (lists.poll_every),
// so an updated DROP file or block list needs no SIGHUP.
func pollLists(ctx context.Context, l *lists.Set, every time.Duration, log *slog.Logger) {
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
		changed, err := l.Poll()
		switch {
		case err != nil:
			log.Error("list file changed but does not load; keeping the previous lists", "err", err)
		case changed:
			log.Info("list file changed; reloaded lists", "prefixes", l.Counts())
		}
	}
}
