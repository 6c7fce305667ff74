package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/greypit/greypit/internal/classify"
	"github.com/greypit/greypit/internal/config"
	"github.com/greypit/greypit/internal/control"
	"github.com/greypit/greypit/internal/feedback"
	"github.com/greypit/greypit/internal/logfollow"
	"github.com/greypit/greypit/internal/maillog"
	"github.com/greypit/greypit/internal/store"
)

// followPoll is how often followed logs are checked for new lines.
const followPoll = 500 * time.Millisecond

// followEvent is one line of `greypit follow` output: the event, where it
// came from, and (unless -dry-run) what it changed.
type followEvent struct {
	maillog.Event
	File   string           `json:"file"`
	Line   int64            `json:"line"`
	Result *feedback.Result `json:"result,omitempty"`
	Error  string           `json:"error,omitempty"`
}

// newApplier builds the verdict and candidate logic from the config.
func newApplier(cfg *config.Config, st store.Store, c *classify.Classifier) (*feedback.Applier, error) {
	prot, err := feedback.LoadProtected(cfg.Candidates.Protected)
	if err != nil {
		return nil, err
	}
	return &feedback.Applier{
		Store:           st,
		Classifier:      c,
		BlackTTL:        cfg.Feedback.BlackTTL.Duration,
		WhiteTTL:        cfg.Greylist.WhiteTTL.Duration,
		PrefixV4:        cfg.Greylist.PrefixV4,
		PrefixV6:        cfg.Greylist.PrefixV6,
		Protected:       prot,
		PromoteNetworks: cfg.Candidates.PromoteNetworks,
		PromoteDays:     cfg.Candidates.PromoteDays,
	}, nil
}

// openFeedbackOps is openOps with the verdict and candidate operations.
func openFeedbackOps(cfg *config.Config) (control.FeedbackOps, func(), error) {
	ops, closeOps, err := openOps(cfg)
	if err != nil {
		return nil, nil, err
	}
	if l, ok := ops.(*control.Local); ok {
		if l.Feedback, err = newApplier(cfg, l.Store, l.Classifier); err != nil {
			closeOps()
			return nil, nil, err
		}
	}
	return ops.(control.FeedbackOps), closeOps, nil
}

// parseInterleaved parses flags that may stand before, between or after
// the positional arguments, and returns the positional ones.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// follow runs `greypit follow`.
func follow(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("follow", stderr)
	var cf configFlags
	cf.register(fs)
	once := fs.Bool("once", false, "read the files from the start once and exit")
	dry := fs.Bool("dry-run", false, "print the events, act on none")
	files, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	if len(files) == 0 {
		files = cfg.Follow.Files
	}
	if len(files) == 0 {
		return errors.New("follow: no files given (and follow.files is empty)")
	}
	// A dry run needs no store, but leaves out what the daemon would
	// never act on (role and protected addresses).
	never, err := newApplier(cfg, nil, nil)
	if err != nil {
		return err
	}
	var ops control.FeedbackOps
	if !*dry {
		var closeOps func()
		if ops, closeOps, err = openFeedbackOps(cfg); err != nil {
			return err
		}
		defer closeOps()
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	var lines, events int
	p := maillog.NewParser() // one for all files: a verdict may join to another log's client= line
	flog, _ := newLogger(cfg, stderr)
	fl := &logfollow.Follower{Files: files, Poll: followPoll, Once: *once, FromStart: *once, MaxLine: maillog.MaxLine,
		Log: flog}
	err = fl.Run(ctx, func(l logfollow.Line) {
		lines++
		if l.TooLong {
			return
		}
		for _, e := range p.Parse(l.Text).Events {
			if e.Kind == maillog.TrapCandidate && never.NeverTrap(e.Address) != "" && ops == nil {
				continue
			}
			events++
			out := followEvent{Event: e, File: l.File, Line: l.N}
			if ops != nil {
				res, err := ops.Event(ctx, e, l.File+":"+strconv.FormatInt(l.N, 10))
				if err != nil {
					out.Error = err.Error()
				} else {
					out.Result = &res
				}
			}
			enc.Encode(out)
		}
	})
	fmt.Fprintf(stderr, "greypit follow: %d lines, %d events\n", lines, events)
	return err
}

// runFollower is the follower inside `greypit serve`: it applies what the
// configured logs say (or, with follow.dry_run, logs what it would change).
func runFollower(ctx context.Context, cfg *config.Config, a *feedback.Applier, log *slog.Logger) {
	dry := *a
	dry.DryRun = cfg.Follow.DryRun
	p := maillog.NewParser()
	fl := &logfollow.Follower{Files: cfg.Follow.Files, Poll: followPoll, StateFile: cfg.FollowState(),
		MaxLine: maillog.MaxLine, Log: log,
		Ready: func() {
			log.Info("follow: following", "files", cfg.Follow.Files, "state", cfg.FollowState(), "dry_run", dry.DryRun)
		}}
	err := fl.Run(ctx, func(l logfollow.Line) {
		if l.TooLong {
			log.Debug("follow: line too long, ignored", "file", l.File, "line", l.N)
			return
		}
		for _, e := range p.Parse(l.Text).Events {
			where := l.File + ":" + strconv.FormatInt(l.N, 10)
			res, err := dry.Event(ctx, e, where)
			if err != nil {
				log.Error("follow: applying event failed", "kind", e.Kind, "client", e.Client, "address", e.Address, "at", where, "err", err)
				continue
			}
			msg := "follow: " + string(e.Kind)
			if dry.DryRun {
				msg += " (dry run: nothing changed)"
			}
			log.Info(msg, "client", e.Client, "address", e.Address, "source", e.Source, "reason", e.Reason,
				"at", where, "changes", res.Changes, "skipped", res.Skipped, "path", res.Path)
		}
	})
	if err != nil {
		log.Error("follow: stopped", "err", err)
	}
}

// checkFollowState makes serve fail at start-up, not later, when the
// follower's position file cannot be written.
func checkFollowState(cfg *config.Config) error {
	if len(cfg.Follow.Files) == 0 {
		return nil
	}
	f, err := os.OpenFile(cfg.FollowState(), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("follow.state: %w", err)
	}
	return f.Close()
}
