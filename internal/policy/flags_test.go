package policy

import (
	"slices"
	"strings"
	"testing"

	"github.com/greypit/greypit/internal/config"
)

// A postgrey command line, as in Debian's /etc/default/postgrey, becomes
// the greypit config it stands for.
func TestPostgreyFlags(t *testing.T) {
	PostgreyDir = "testdata/postgrey"
	own, pg := SplitArgs([]string{"-config", "x.toml", "--inet=10023", "--delay", "60", "--max-age=10",
		"--retry-window=6h", "--lookup-by-host", "--ipv4cidr=16", "--auto-whitelist-clients", "--privacy",
		"--greylist-text=wait %s", "-set", "log.level=warn", "--verbose", "--user=postgrey"})
	if !slices.Equal(own, []string{"-config", "x.toml", "-set", "log.level=warn"}) {
		t.Errorf("own args %q", own)
	}
	sets, err := PostgreyFlags(pg)
	if err != nil {
		t.Fatal(err)
	}
	c := config.Default()
	for _, s := range sets {
		if err := c.Apply(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	p, g := c.Policy, c.Greylist
	if p.Listen != "127.0.0.1:10023" || g.PassDelay.Seconds() != 60 || g.WhiteTTL.Hours() != 240 ||
		g.RetryWindow.Hours() != 6 || g.PrefixV4 != 32 || g.PrefixV6 != 128 || p.AutoWhitelistClient != 5 ||
		!p.Privacy || p.GreylistText != "wait %s" ||
		!slices.Equal([]string(p.WhitelistClients), []string{"testdata/postgrey/whitelist_clients"}) {
		t.Errorf("config %+v %+v", p, g)
	}
	for _, bad := range [][]string{{"--exim"}, {"--delay=x"}, {"--retry-window=2w"}, {"--privacy=1"}, {"--delay"}} {
		if _, err := PostgreyFlags(bad); err == nil || !strings.Contains(err.Error(), "--") {
			t.Errorf("%q: err %v", bad, err)
		}
	}
}
