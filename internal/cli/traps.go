package cli

import (
	"fmt"
	"io"
)

// traps runs `greypit traps VERB`.
func traps(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("traps: missing verb (candidates, approve, reject)")
	}
	switch args[0] {
	case "candidates", "approve", "reject":
		return candidates(args[0], args[1:], stdout, stderr)
	}
	return fmt.Errorf("traps: unknown verb %q (candidates, approve, reject)", args[0])
}
