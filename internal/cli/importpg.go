package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/greypit/greypit/internal/policy"
	"github.com/greypit/greypit/internal/store"
)

// importPostgrey is `greypit policy import-postgrey`: it reads `db_dump`
// output of postgrey.db (and optionally of postgrey_clients.db) and writes
// the tuples and auto-whitelisted clients into greypit's store, so that
// switching does not greylist every correspondent again. The daemon must
// be stopped (the store file is opened directly).
func importPostgrey(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	own, pg := policy.SplitArgs(args)
	fs := newFlagSet("policy import-postgrey", stderr)
	var cf configFlags
	cf.register(fs)
	clients := fs.String("clients", "", "`file`: db_dump output of postgrey_clients.db (auto-whitelisted clients)")
	if err := fs.Parse(own); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("policy import-postgrey: want one dump file (db_dump -p postgrey.db), or - for stdin")
	}
	sets, err := policy.PostgreyFlags(pg)
	if err != nil {
		return fmt.Errorf("policy import-postgrey: %w", err)
	}
	cf.sets = append(sets, cf.sets...)
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	p := policy.ImportParams{
		PostgreyDelay: cfg.Greylist.PassDelay.Duration,
		Grey: store.GreyParams{
			PassDelay:   cfg.Greylist.PassDelay.Duration,
			RetryWindow: cfg.Greylist.RetryWindow.Duration,
			PassedTTL:   cfg.Greylist.WhiteTTL.Duration,
		},
		PrefixV4:      cfg.Greylist.PrefixV4,
		PrefixV6:      cfg.Greylist.PrefixV6,
		AutoWhitelist: cfg.Policy.AutoWhitelistClient,
		WhiteTTL:      cfg.Greylist.WhiteTTL.Duration,
		Now:           time.Now(),
	}
	var (
		es []store.Entry
		st policy.ImportStats
	)
	read := func(name string, entry func(k, v string, p policy.ImportParams) (store.Entry, bool, error)) error {
		var r io.Reader = stdin
		if name != "-" {
			f, err := os.Open(name)
			if err != nil {
				return fmt.Errorf("policy import-postgrey: %w", err)
			}
			defer f.Close()
			r = f
		}
		err := policy.ParseDump(r, func(k, v []byte) error {
			e, ok, err := entry(string(k), string(v), p)
			switch {
			case err != nil:
				st.Skipped++
				if st.Skipped <= 10 {
					fmt.Fprintf(stderr, "greypit: policy import-postgrey: %s: skipped: %v\n", name, err)
				}
			case !ok:
				st.Expired++
			default:
				es = append(es, e)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("policy import-postgrey: %s: %w", name, err)
		}
		return nil
	}
	if err := read(fs.Arg(0), policy.TupleEntry); err != nil {
		return err
	}
	if *clients != "" {
		if err := read(*clients, policy.ClientEntry); err != nil {
			return err
		}
	}
	for _, e := range es {
		switch {
		case e.Kind == store.White:
			st.White++
		case e.Passed.IsZero():
			st.Pending++
		default:
			st.Passed++
		}
	}
	b, err := store.OpenBolt(cfg.Store.Path, store.BoltOptions{})
	if err != nil {
		return fmt.Errorf("store.path: %w", err)
	}
	defer b.Close()
	if err := b.PutAll(context.Background(), es); err != nil {
		return fmt.Errorf("policy import-postgrey: %w", err)
	}
	fmt.Fprintf(stdout, "imported %d passed and %d pending tuples, %d white clients; %d expired, %d skipped\n",
		st.Passed, st.Pending, st.White, st.Expired, st.Skipped)
	return nil
}
