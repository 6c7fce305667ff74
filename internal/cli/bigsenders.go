package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/greypit/greypit/internal/bigsenders"
	"github.com/greypit/greypit/internal/config"
	"github.com/greypit/greypit/internal/dnsx"
)

// loadBigSenders returns the providers of the built-in list, less
// bigsenders.disable, plus bigsenders.add.
func loadBigSenders(cfg *config.Config) ([]bigsenders.Provider, error) {
	f, err := bigsenders.Builtin()
	if err != nil {
		return nil, err
	}
	return bigsenders.Providers(f, cfg.Big.Disable, cfg.Big.Add), nil
}

// lists runs `greypit lists show`: it resolves the big-sender list now,
// through dnsbl.resolver, and prints every network with its provenance.
func listsCmd(args []string, stdout, stderr io.Writer) error {
	var asJSON *bool
	cf, verb, vfs, err := parseVerb("lists", "show", args, stderr, func(vfs *flag.FlagSet) {
		asJSON = vfs.Bool("json", false, "print one JSON object")
	})
	if err != nil {
		return err
	}
	if verb != "show" {
		return fmt.Errorf("lists: unknown verb %q (want show)", verb)
	}
	if vfs.NArg() > 0 {
		return fmt.Errorf("lists show: unexpected argument %q", vfs.Arg(0))
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	f, err := bigsenders.Builtin()
	if err != nil {
		return err
	}
	ps, err := loadBigSenders(cfg)
	if err != nil {
		return err
	}
	server, err := resolverFor(cfg)
	if err != nil {
		return err
	}
	var set bigsenders.Set
	res := set.Refresh(context.Background(), dnsx.NetResolver(server), ps, 30*time.Second)
	if *asJSON {
		return json.NewEncoder(stdout).Encode(struct {
			Enabled   bool                  `json:"enabled"`
			Version   int                   `json:"version"`
			Updated   string                `json:"updated"`
			Resolver  string                `json:"resolver"`
			Providers []bigsenders.Resolved `json:"providers"`
		}{cfg.Big.Enabled, f.Version, f.Updated, server, res})
	}
	state := "enabled"
	if !cfg.Big.Enabled {
		state = "disabled (bigsenders.enabled = false): greypit does not use it"
	}
	fmt.Fprintf(stdout, "bigsenders: built-in list version %d (updated %s), %d providers, %s; resolved now through %s\n",
		f.Version, f.Updated, len(ps), state, server)
	for _, r := range res {
		p := r.Provider
		fmt.Fprintf(stdout, "\n%s: SPF %s\n  source: %s\n", p.Domain, p.SPF, p.Source)
		if p.Added != "" {
			fmt.Fprintf(stdout, "  added: %s\n", p.Added)
		}
		if r.Err != "" {
			fmt.Fprintf(stdout, "  error: %s\n", r.Err)
		}
		for _, pfx := range r.Prefixes {
			src, _ := set.Lookup(pfx.Addr())
			fmt.Fprintf(stdout, "  %s (SPF record of %s)\n", pfx, src.Record)
		}
	}
	return nil
}
