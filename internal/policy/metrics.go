package policy

import (
	"strings"

	"github.com/greypit/greypit/internal/metrics"
)

// countAction counts an answer by its action verb (DUNNO, PREPEND,
// DEFER_IF_PERMIT, REJECT, ...): the text after it varies per request,
// the verbs are the few the configuration allows.
func countAction(action string) {
	verb, _, _ := strings.Cut(action, " ")
	metrics.Policy.With(verb).Inc()
}
