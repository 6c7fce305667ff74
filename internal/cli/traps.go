package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/greypit/greypit/internal/store"
)

// trapsCmd runs `greypit traps VERB`. Like `greypit db` it talks to the
// daemon's control socket, or opens the store itself when none runs.
func trapsCmd(args []string, stdout, stderr io.Writer) error {
	var asJSON *bool
	cf, verb, vfs, err := parseVerb("traps", "hits", args, stderr, func(vfs *flag.FlagSet) {
		asJSON = vfs.Bool("json", false, "print JSON lines")
	})
	if err != nil {
		return err
	}
	switch verb {
	case "hits":
		if vfs.NArg() > 0 {
			return fmt.Errorf("traps hits: unexpected argument %q", vfs.Arg(0))
		}
	default:
		return fmt.Errorf("traps: unknown verb %q (hits)", verb)
	}
	ops, closeOps, err := cf.openOps()
	if err != nil {
		return err
	}
	defer closeOps()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var hits []store.TrapHit
	if err := ops.TrapHits(ctx, func(h store.TrapHit) error { hits = append(hits, h); return nil }); err != nil {
		return err
	}
	slices.SortStableFunc(hits, func(a, b store.TrapHit) int { return a.Time.Compare(b.Time) })
	return printHits(hits, *asJSON, stdout)
}

func printHits(hits []store.TrapHit, asJSON bool, w io.Writer) error {
	if asJSON {
		enc := json.NewEncoder(w)
		for _, h := range hits {
			if err := enc.Encode(h); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tCLIENT\tHELO\tFIELD\tTRAP\tHARVESTED BY\tHARVESTED AT\tPRIOR\tRULE")
	for _, h := range hits {
		by, at := "-", "-"
		if h.Harvest != nil {
			by, at = h.Harvest.Visitor, when(h.Harvest.Time)
			if h.Harvest.UserAgent != "" {
				by += fmt.Sprintf(" (%q)", h.Harvest.UserAgent)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", when(h.Time), h.Client, dash(h.Helo), h.Field, h.Address, by, at, h.Prior, h.Rule)
	}
	return tw.Flush()
}
