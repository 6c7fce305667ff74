package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/greypit/greypit/internal/config"
	"github.com/greypit/greypit/internal/networks"
)

// report runs `greypit report networks`: blocked sessions, trap hits and
// tarpit time by AS and by network over a window of the session history.
func report(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "networks" {
		return errors.New("report: want `report networks [-since D] [-top N] [-json]`")
	}
	fs := newFlagSet("report networks", stderr)
	var cf configFlags
	cf.register(fs)
	sinceFlag := fs.String("since", "24h", "report the last `D` (e.g. 24h, 7d)")
	top := fs.Int("top", 20, "show the largest `N` groups of each kind; 0 shows all")
	asJSON := fs.Bool("json", false, "print the report as one JSON object")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("report networks: unexpected argument %q", fs.Arg(0))
	}
	var d config.Duration
	if err := d.UnmarshalText([]byte(*sinceFlag)); err != nil || d.Duration <= 0 {
		return fmt.Errorf("report networks -since %q: want a positive duration such as 24h or 7d", *sinceFlag)
	}
	if *top < 0 {
		return errors.New("report networks -top: must be >= 0")
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	asn, closeASN, err := openASN(cfg)
	if err != nil {
		return err
	}
	defer closeASN()
	ops, closeOps, err := openOps(cfg)
	if err != nil {
		return err
	}
	defer closeOps()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	until := time.Now()
	since := until.Add(-d.Duration)
	b := networks.NewReportBuilder(since, until, asn, cfg.Networks.PrefixV4, cfg.Networks.PrefixV6)
	if err := b.Collect(ctx, ops.Events); err != nil {
		return fmt.Errorf("report networks: %w", err)
	}
	r := b.Report(*top)
	if *asJSON {
		return json.NewEncoder(stdout).Encode(r)
	}
	return r.WriteText(stdout)
}

// printNetwork adds the network part of `db why`.
func printNetwork(out io.Writer, v *networks.Verdict) {
	if v == nil || len(v.Hosts) == 0 && v.Escalated == nil {
		return
	}
	as := ""
	if v.AS != nil {
		as = ", " + v.AS.String()
	}
	fmt.Fprintf(out, "  network %s%s: %d black host(s), score %.2f, escalates at %d\n", v.Network, as, len(v.Hosts), v.Score, v.Threshold)
	if v.AS != nil && v.ASHosts > 0 {
		fmt.Fprintf(out, "  %s: %d black host(s), score %.2f\n", v.AS, v.ASHosts, v.ASScore)
	}
	switch {
	case v.Escalated != nil:
		fmt.Fprintf(out, "  network escalated since %s, expires %s\n", when(v.Escalated.Created), when(v.Escalated.Expires))
	case v.Blocker != "":
		fmt.Fprintf(out, "  network not escalated: %s\n", v.Blocker)
	}
	for i, h := range v.Hosts {
		if i == 10 {
			fmt.Fprintf(out, "    ... and %d more\n", len(v.Hosts)-i)
			break
		}
		fmt.Fprintf(out, "    black host %s since %s (%s), last %s, expires %s\n", h.Key, when(h.Created),
			strings.Join(nonEmpty(h.Source, h.Reason), ": "), when(h.Updated), when(h.Expires))
	}
}

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}
