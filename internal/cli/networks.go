package cli

import (
	"context"
	"log/slog"
	"net/netip"

	"github.com/greypit/greypit/internal/config"
	"github.com/greypit/greypit/internal/lists"
	"github.com/greypit/greypit/internal/networks"
	"github.com/greypit/greypit/internal/store"
)

// openASN opens networks.asn_db; with none configured it returns nil.
// The close function is never nil.
func openASN(cfg *config.Config) (networks.ASNDB, func(), error) {
	if cfg.Networks.ASNDB == "" {
		return nil, func() {}, nil
	}
	db, err := networks.OpenASNDB(cfg.Networks.ASNDB)
	if err != nil {
		return nil, nil, err
	}
	return db, func() { db.Close() }, nil
}

// newEngine builds the network reputation engine on st and loads its
// index (without acting on it).
func newEngine(ctx context.Context, cfg *config.Config, st store.Store, lset *lists.Set, asn networks.ASNDB, log *slog.Logger) (*networks.Engine, error) {
	n := &cfg.Networks
	nc := networks.Config{
		PrefixV4: n.PrefixV4, PrefixV6: n.PrefixV6,
		EscalateHosts: n.EscalateHosts, EscalateTTL: n.EscalateTTL.Duration, HalfLife: n.HalfLife.Duration,
		ASN: asn, Allow: lset.Allow,
	}
	for _, s := range n.NeverEscalate {
		p, as, _ := config.ParseNetOrASN(s) // validated with the config
		if as != 0 {
			nc.NeverASNs = append(nc.NeverASNs, as)
		} else if p != (netip.Prefix{}) {
			nc.NeverPrefixes = append(nc.NeverPrefixes, p)
		}
	}
	e := networks.New(nc, st, log)
	return e, e.Load(ctx)
}
