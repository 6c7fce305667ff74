// Package cli implements greypit's command line: `serve` and `db`. It
// wires the packages together; the work is done in them.
package cli

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/greypit/greypit/internal/config"
)

// Version is set at link time (-ldflags -X).
var Version = "dev"

const usage = `greypit: an SMTP front line (white splice, greylisting, tarpit).

Usage:
  greypit serve [-config FILE] [-set section.key=value ...]
  greypit check [-config FILE] [-set ...]
  greypit db [-config FILE] [-set ...] list [-type T] [-json]
  greypit db ... add -type T [-ttl D] [-reason R] VALUE...
  greypit db ... del -type T VALUE...
  greypit db ... why [-json] ADDRESS
  greypit db ... dump > FILE
  greypit db ... load [FILE]
  greypit report networks [-config FILE] [-since D] [-top N] [-json]
  greypit lists [-config FILE] [-set ...] show [-json]
  greypit follow [-config FILE] [-set ...] [-once] [-dry-run] [FILE...]
  greypit feedback [-config FILE] [-set ...] spam|ham ADDRESS [-reason R]
  greypit traps hits [-config FILE] [-set ...] [-json]
  greypit traps candidates [-config FILE] [-set ...] [-json] [-state S]
  greypit traps approve [-config FILE] [-set ...] ADDRESS...
  greypit traps reject [-config FILE] [-set ...] ADDRESS...
  greypit policy [-config FILE] [-set ...] [postgrey flags: --inet=PORT --delay=N ...]
  greypit policy import-postgrey [-config FILE] [-set ...] [-clients FILE] [postgrey flags] DUMP
  greypit version

Types: white, grey, black, spamtrap. White and black values are IP
addresses or CIDR prefixes; spamtrap values are mail addresses.
`

// Main runs the command line and returns the exit status.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = serve(args[1:], stderr)
	case "check":
		err = check(args[1:], stdout, stderr)
	case "db":
		err = db(args[1:], stdin, stdout, stderr)
	case "traps":
		err = trapsCmd(args[1:], stdout, stderr)
	case "report":
		err = report(args[1:], stdout, stderr)
	case "lists":
		err = listsCmd(args[1:], stdout, stderr)
	case "follow":
		err = follow(args[1:], stdout, stderr)
	case "feedback":
		err = feedbackCmd(args[1:], stdout, stderr)
	case "policy":
		err = policyCmd(args[1:], stdin, stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "greypit", Version)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "greypit: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err == flag.ErrHelp {
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, "greypit:", err)
		return 1
	}
	return 0
}

// configFlags are the flags every command that reads the config takes.
type configFlags struct {
	path string
	sets stringsFlag
}

func (c *configFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.path, "config", "", "config `file` (TOML); without it the built-in defaults apply")
	fs.Var(&c.sets, "set", "override a config key: `section.key=value` (repeatable)")
}

func (c *configFlags) load() (*config.Config, error) {
	return config.Load(c.path, c.sets)
}

type stringsFlag []string

func (s *stringsFlag) String() string     { return strings.Join(*s, ",") }
func (s *stringsFlag) Set(v string) error { *s = append(*s, v); return nil }

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}
