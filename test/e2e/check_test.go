package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/greypit/greypit/internal/testenv"
)

// `greypit check` beside a running daemon and a real Postfix: the store
// is reported as in use (not a problem), the backend by its own greeting;
// a list file broken afterwards is a problem naming its line, and exit 1,
// while the daemon goes on with the lists it has.
func TestCheckCommand(t *testing.T) {
	pf := backend(t, testenv.ModeProxy)
	g := startGreypit(t, greypitOpts{backend: pf.Addr(), block: []string{"198.51.100.0/24 # spam run"}})
	out, code := runGreypit(g.args("check")...)
	if code != 0 {
		t.Fatalf("check of a running daemon's config: exit %d\n%s", code, out)
	}
	for _, want := range []string{"in use by a running greypit", "ok       backend    " + pf.Addr() + " (proxy-v2): offers PIPELINING SIZE", "block 1 prefixes"} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
	if err := os.WriteFile(filepath.Join(g.Dir, "block.list"), []byte("198.51.100.0/24\n198.51.100.300\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code = runGreypit(g.args("check")...)
	if code != 1 || !strings.Contains(out, "PROBLEM  lists") || !strings.Contains(out, "block.list:2") {
		t.Errorf("check of a broken block list: exit %d\n%s", code, out)
	}
	if out, code := g.DB("why", "198.51.100.7"); code != 0 || !strings.Contains(out, "BLACK") {
		t.Errorf("the daemon lost its block list (exit %d):\n%s", code, out)
	}
}
