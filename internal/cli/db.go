package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/greypit/greypit/internal/classify"
	"github.com/greypit/greypit/internal/config"
	"github.com/greypit/greypit/internal/control"
	"github.com/greypit/greypit/internal/lists"
	"github.com/greypit/greypit/internal/networks"
	"github.com/greypit/greypit/internal/store"
)

// db runs `greypit db`. With a daemon running it talks to its control
// socket; otherwise it opens the store file itself.
func db(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	var kind, ttl, reason *string
	var asJSON, white *bool
	cf, verb, vfs, err := parseVerb("db", "list, add, del, why, release, dump, load", args, stderr, func(vfs *flag.FlagSet) {
		kind = vfs.String("type", "", "entry `type`: white, grey, black or spamtrap")
		asJSON = vfs.Bool("json", false, "print JSON lines")
		ttl = vfs.String("ttl", "", "lifetime of added entries, e.g. 36d, 24h (default: white "+
			"greylist.white_ttl, black and spamtrap never expire)")
		reason = vfs.String("reason", "", "reason recorded with added entries")
		white = vfs.Bool("white", false, "release: also whitelist the address")
	})
	if err != nil {
		return err
	}
	ops, closeOps, err := cf.openOps()
	if err != nil {
		return err
	}
	defer closeOps()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	var k store.Kind
	if *kind != "" {
		if k, err = store.ParseKind(*kind); err != nil {
			return err
		}
	}
	needType := func() error {
		if k == "" {
			return fmt.Errorf("db %s: -type is required", verb)
		}
		if vfs.NArg() == 0 {
			return fmt.Errorf("db %s: no values given", verb)
		}
		return nil
	}
	switch verb {
	case "list":
		return list(ctx, ops, k, *asJSON, stdout)
	case "add":
		if err := needType(); err != nil {
			return err
		}
		var d config.Duration
		if *ttl != "" {
			if err := d.UnmarshalText([]byte(*ttl)); err != nil {
				return fmt.Errorf("db add -ttl: %w", err)
			}
		}
		n, err := ops.Add(ctx, control.AddRequest{Kind: k, Values: vfs.Args(), TTL: d.Duration, Reason: *reason})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "added %d %s entr%s\n", n, k, plural(n))
	case "del":
		if err := needType(); err != nil {
			return err
		}
		n, err := ops.Del(ctx, k, vfs.Args())
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "deleted %d %s entr%s\n", n, k, plural(n))
		if n < vfs.NArg() {
			return fmt.Errorf("db del: %d of %d values had no entry", vfs.NArg()-n, vfs.NArg())
		}
	case "why":
		if vfs.NArg() != 1 {
			return errors.New("db why: give one IP address")
		}
		w, err := ops.Why(ctx, vfs.Arg(0))
		if err != nil {
			return err
		}
		return printWhy(w, *asJSON, stdout)
	case "release":
		if vfs.NArg() != 1 {
			return errors.New("db release: give one IP address")
		}
		r, err := control.Release(ctx, ops, vfs.Arg(0), *white, *reason)
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(stdout).Encode(r)
		}
		del := "no black entry to delete"
		if len(r.Deleted) > 0 {
			del = "deleted black " + strings.Join(r.Deleted, ", ")
		}
		if r.White {
			del += ", whitelisted"
		}
		fmt.Fprintf(stdout, "released %s: %s; now %s (%s)\n", r.Why.Address, del, strings.ToUpper(string(r.Why.Decision.Path)), r.Why.Decision.Rule)
	case "dump":
		return ops.Dump(ctx, stdout)
	case "load":
		in := stdin
		if vfs.NArg() > 0 && vfs.Arg(0) != "-" {
			f, err := os.Open(vfs.Arg(0))
			if err != nil {
				return fmt.Errorf("db load: %w", err)
			}
			defer f.Close()
			in = f
		}
		n, err := ops.Load(ctx, in)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "loaded %d record%s\n", n, map[bool]string{true: "", false: "s"}[n == 1])
	default:
		return fmt.Errorf("db: unknown verb %q (list, add, del, why, release, dump, load)", verb)
	}
	return nil
}

func plural(n int) string {
	if n == 1 {
		return "y"
	}
	return "ies"
}

// openOps reaches the daemon if one runs, else opens the store file.
func openOps(cfg *config.Config) (control.Ops, func(), error) {
	if c, err := control.Dial(cfg.ControlSocket()); err == nil {
		return c, func() {}, nil
	}
	st, err := openStore(cfg, time.Second)
	if errors.Is(err, store.ErrLocked) {
		return nil, nil, fmt.Errorf("%w; its control socket %s does not answer (control.socket)", err, cfg.ControlSocket())
	}
	if err != nil {
		return nil, nil, err
	}
	lset, err := lists.NewSetFiles(listFiles(cfg))
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	classifier := &classify.Classifier{Lists: lset, Store: st}
	if err := addDNSBL(cfg, classifier, nil); err != nil {
		st.Close()
		return nil, nil, err
	}
	asn, closeASN, err := openASN(cfg)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	nets, err := newEngine(context.Background(), cfg, st, lset, asn, nil)
	if err != nil {
		closeASN()
		st.Close()
		return nil, nil, err
	}
	return &control.Local{
		Networks:   nets,
		Store:      networks.Observe(st, nets, nil),
		Classifier: classifier,
		WhiteTTL:   cfg.Greylist.WhiteTTL.Duration,
		PrefixV4:   cfg.Greylist.PrefixV4,
		PrefixV6:   cfg.Greylist.PrefixV6,
	}, func() { closeASN(); st.Close() }, nil
}

func list(ctx context.Context, ops control.Ops, k store.Kind, asJSON bool, w io.Writer) error {
	if asJSON {
		enc := json.NewEncoder(w)
		return ops.List(ctx, k, func(e store.Entry) error { return enc.Encode(e) })
	}
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "TYPE\tKEY\tEXPIRES\tCOUNT\tSOURCE\tREASON")
	err := ops.List(ctx, k, func(e store.Entry) error {
		_, err := fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", e.Kind, e.Key, when(e.Expires), e.Count, dash(e.Source), dash(e.Reason))
		return err
	})
	if ferr := tw.Flush(); err == nil {
		err = ferr
	}
	return err
}

func when(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// whyText is `greypit db why` as text, for the dashboard.
func whyText(w control.Why) string {
	var b strings.Builder
	printWhy(w, false, &b)
	return b.String()
}

func printWhy(w control.Why, asJSON bool, out io.Writer) error {
	if asJSON {
		return json.NewEncoder(out).Encode(w)
	}
	fmt.Fprintf(out, "%s: %s\n", w.Address, strings.ToUpper(string(w.Decision.Path)))
	fmt.Fprintf(out, "  because: %s\n", w.Decision.Rule)
	if w.Decision.Reason != "" {
		fmt.Fprintf(out, "  reason: %s\n", w.Decision.Reason)
	}
	switch w.Decision.Path {
	case classify.White:
		fmt.Fprintln(out, "  path: spliced to the backend MTA")
	case classify.Black:
		fmt.Fprintln(out, "  path: refused with the reason above")
	case classify.Grey:
		fmt.Fprintln(out, "  path: greylisted; a retry after the pass delay is handed to the backend")
	}
	for _, l := range w.Decision.Listings {
		fmt.Fprintf(out, "  listed: %s: %s\n", l.Describe(), l.Message)
	}
	printWhyDNSBL(w.Decision, out)
	printNetwork(out, w.Network)
	for _, e := range w.Grey {
		state := "pending, passes from " + when(e.Pass)
		if !e.Passed.IsZero() {
			state = "passed " + when(e.Passed)
		}
		fmt.Fprintf(out, "  tuple %s: %s, %d attempt(s), expires %s\n", e.Key, state, e.Count, when(e.Expires))
	}
	return nil
}
