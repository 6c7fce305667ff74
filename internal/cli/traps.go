package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/greypit/greypit/internal/store"
)

// trapVerbs are the `greypit traps` verbs.
var trapVerbs = []string{"hits", "candidates", "approve", "reject"}

// trapsCmd runs `greypit traps VERB`. Like `greypit db` it talks to the
// daemon's control socket, or opens the store itself when none runs. The
// config flags may stand before or after the verb.
func trapsCmd(args []string, stdout, stderr io.Writer) error {
	i := slices.IndexFunc(args, func(a string) bool { return slices.Contains(trapVerbs, a) })
	if i < 0 {
		if n := len(args); n > 0 && !strings.HasPrefix(args[n-1], "-") {
			return fmt.Errorf("traps: unknown verb %q (%s)", args[n-1], strings.Join(trapVerbs, ", "))
		}
		return errors.New("traps: missing verb (" + strings.Join(trapVerbs, ", ") + ")")
	}
	if args[i] != "hits" {
		rest := append(slices.Clone(args[:i]), args[i+1:]...)
		return candidates(args[i], rest, stdout, stderr)
	}
	return trapHits(args, stdout, stderr)
}

// trapHits runs `greypit traps hits`.
func trapHits(args []string, stdout, stderr io.Writer) error {
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
