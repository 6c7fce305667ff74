package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/greypit/greypit/internal/store"
)

// candidates runs `greypit traps candidates|approve|reject`.
func candidates(verb string, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("traps "+verb, stderr)
	var cf configFlags
	cf.register(fs)
	asJSON := fs.Bool("json", false, "print JSON lines (candidates)")
	state := fs.String("state", "", "show only candidates in this `state`: pending, approved or rejected (candidates)")
	addrs, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	ops, ctx, done, err := feedbackSession(cf)
	if err != nil {
		return err
	}
	defer done()
	switch verb {
	case "approve":
		n, err := ops.Approve(ctx, addrs)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "approved %d address%s as spamtrap%s\n", n, es(n), plurals(n))
		return nil
	case "reject":
		n, err := ops.RejectCandidates(ctx, addrs)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "rejected %d address%s: never proposed again\n", n, es(n))
		return nil
	}
	if len(addrs) > 0 {
		return fmt.Errorf("traps candidates: unexpected argument %q", addrs[0])
	}
	enc := json.NewEncoder(stdout)
	tw := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', 0)
	if !*asJSON {
		fmt.Fprintln(tw, "ADDRESS\tSTATE\tREJECTS\tNETWORKS\tDAYS\tFIRST\tLAST\tLATEST EVIDENCE")
	}
	err = ops.Candidates(ctx, func(c store.Candidate) error {
		if *state != "" && string(c.State) != *state {
			return nil
		}
		if *asJSON {
			return enc.Encode(c)
		}
		ev := "-"
		if n := len(c.Evidence); n > 0 {
			e := c.Evidence[n-1]
			ev = strings.TrimSpace(e.Client + " " + e.Source + " " + e.Note)
		}
		_, err := fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\n", c.Address, c.State, c.Count, len(c.Networks), len(c.Days),
			when(c.First), when(c.Last), ev)
		return err
	})
	if ferr := tw.Flush(); err == nil {
		err = ferr
	}
	return err
}

func es(n int) string {
	if n == 1 {
		return ""
	}
	return "es"
}

func plurals(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
