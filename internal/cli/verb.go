package cli

import (
	"errors"
	"flag"
	"io"

	"github.com/greypit/greypit/internal/control"
)

// parseVerb parses "CMD [-config F] [-set ...] VERB [flags] [args]": the
// config flags may stand before or after the verb. define adds the verb's
// own flags. It returns the config flags, the verb and its flag set,
// parsed.
func parseVerb(cmd, verbs string, args []string, stderr io.Writer, define func(*flag.FlagSet)) (configFlags, string, *flag.FlagSet, error) {
	fs := newFlagSet(cmd, stderr)
	var cf configFlags
	cf.register(fs)
	if err := fs.Parse(args); err != nil {
		return cf, "", nil, err
	}
	if fs.NArg() == 0 {
		return cf, "", nil, errors.New(cmd + ": missing verb (" + verbs + ")")
	}
	verb, rest := fs.Arg(0), fs.Args()[1:]
	vfs := newFlagSet(cmd+" "+verb, stderr)
	var vcf configFlags
	vcf.register(vfs)
	define(vfs)
	if err := vfs.Parse(rest); err != nil {
		return cf, verb, vfs, err
	}
	if vcf.path != "" {
		cf.path = vcf.path
	}
	cf.sets = append(cf.sets, vcf.sets...)
	return cf, verb, vfs, nil
}

// openOps loads the config and reaches the daemon or the store (openOps).
func (c *configFlags) openOps() (control.Ops, func(), error) {
	cfg, err := c.load()
	if err != nil {
		return nil, nil, err
	}
	return openOps(cfg)
}
