package cli

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// trapVerbs are the `greypit traps` verbs.
var trapVerbs = []string{"candidates", "approve", "reject"}

// traps runs `greypit traps VERB`. The config flags may stand before or
// after the verb.
func traps(args []string, stdout, stderr io.Writer) error {
	i := slices.IndexFunc(args, func(a string) bool { return slices.Contains(trapVerbs, a) })
	if i < 0 {
		if n := len(args); n > 0 && !strings.HasPrefix(args[n-1], "-") {
			return fmt.Errorf("traps: unknown verb %q (candidates, approve, reject)", args[n-1])
		}
		return errors.New("traps: missing verb (candidates, approve, reject)")
	}
	rest := append(slices.Clone(args[:i]), args[i+1:]...)
	return candidates(args[i], rest, stdout, stderr)
}
