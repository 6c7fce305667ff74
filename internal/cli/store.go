package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/greypit/greypit/internal/config"
	"github.com/greypit/greypit/internal/store"
)

// openedStore is a Store that also runs its own expiry sweep.
type openedStore interface {
	store.Store
	RunExpiry(ctx context.Context, every time.Duration, log func(n int, err error))
}

// openStore opens the backend store.backend names. lock is how long to
// wait for the bbolt file lock; Redis has no lock: several daemons and
// `greypit db` commands share it, each write atomic on its own.
func openStore(cfg *config.Config, lock time.Duration) (openedStore, error) {
	// store.path's directory also holds the control socket and the
	// follower's state, whatever the backend.
	if err := os.MkdirAll(filepath.Dir(cfg.Store.Path), 0o700); err != nil {
		return nil, fmt.Errorf("store.path: %w", err)
	}
	if cfg.Store.Backend == config.StoreRedis {
		pw, err := cfg.RedisPassword()
		if err != nil {
			return nil, err
		}
		r, err := store.OpenRedis(store.RedisOptions{
			Addrs:      cfg.Store.RedisAddrs,
			MasterName: cfg.Store.RedisMaster,
			Password:   pw,
			DB:         cfg.Store.RedisDB,
			Prefix:     cfg.Store.RedisPrefix,
			Timeout:    cfg.Store.RedisTimeout.Duration,
			// Only white entry writes wait: they are what a failover must
			// not lose (README, "Redis Sentinel failover").
			WaitReplicas: cfg.Store.RedisWaitReplicas,
			WaitTimeout:  cfg.Store.RedisWaitTimeout.Duration,
		})
		if err != nil {
			return nil, fmt.Errorf("store.redis_addrs: %w", err)
		}
		return r, nil
	}
	b, err := store.OpenBolt(cfg.Store.Path, store.BoltOptions{Timeout: lock})
	if err != nil {
		return nil, fmt.Errorf("store.path: %w", err)
	}
	return b, nil
}
