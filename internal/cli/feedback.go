package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/greypit/greypit/internal/control"
	"github.com/greypit/greypit/internal/feedback"
)

// feedbackSession loads the config and reaches the daemon (or the store
// file) for one short command; done releases both.
func feedbackSession(cf configFlags) (control.FeedbackOps, context.Context, func(), error) {
	cfg, err := cf.load()
	if err != nil {
		return nil, nil, nil, err
	}
	ops, closeOps, err := openFeedbackOps(cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	return ops, ctx, func() { cancel(); closeOps() }, nil
}

// SourceFeedbackCLI marks verdicts given with `greypit feedback`.
const SourceFeedbackCLI = "feedback:cli"

// feedbackCmd runs `greypit feedback spam|ham ADDRESS [-reason R]`.
func feedbackCmd(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("feedback", stderr)
	var cf configFlags
	cf.register(fs)
	reason := fs.String("reason", "", "why: recorded with the entry and shown by `greypit db why`")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 || (pos[0] != feedback.Spam && pos[0] != feedback.Ham) {
		return errors.New("feedback: want spam|ham ADDRESS [-reason R]")
	}
	ops, ctx, done, err := feedbackSession(cf)
	if err != nil {
		return err
	}
	defer done()
	res, err := ops.Verdict(ctx, feedback.Verdict{Kind: pos[0], Client: pos[1], Reason: *reason, Source: SourceFeedbackCLI})
	if err != nil {
		return err
	}
	printResult(stdout, res)
	return nil
}

func printResult(w io.Writer, res feedback.Result) {
	fmt.Fprintf(w, "%s: %s\n", res.Client, strings.ToUpper(string(res.Path)))
	for _, c := range res.Changes {
		fmt.Fprintf(w, "  %s\n", c)
	}
	if res.Skipped != "" {
		fmt.Fprintf(w, "  nothing changed: %s\n", res.Skipped)
	}
	if res.Rule != "" {
		fmt.Fprintf(w, "  because: %s\n", res.Rule)
	}
}
