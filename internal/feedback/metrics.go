package feedback

import "github.com/greypit/greypit/internal/metrics"

// countVerdict counts a verdict that changed the store, by its source and
// kind; one an operator's white entry stood against counts as "skipped".
// Failed and dry-run verdicts change nothing and are not counted.
func countVerdict(v Verdict, res Result, err error, dryRun bool) {
	switch {
	case err != nil || dryRun:
	case res.Skipped != "":
		metrics.Feedback.With(v.Source, "skipped").Inc()
	default:
		metrics.Feedback.With(v.Source, v.Kind).Inc()
	}
}
