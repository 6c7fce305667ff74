// Command greypit is an SMTP front line: it splices trusted hosts to the
// real MTA, greylists unknown ones and refuses known spam sources. The work
// is done in the internal packages; see README.md.
package main

import (
	"os"

	"github.com/greypit/greypit/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
