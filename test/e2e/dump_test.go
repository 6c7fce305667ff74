package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/greypit/greypit/internal/testenv"
)

// dumpFixture has the records real traffic does not make in a short test:
// a trap candidate, an auto-whitelist counter (policy server mode), a
// harvester visit and a trap hit with it.
const dumpFixture = `{"type":"greypit-dump","version":2}
{"type":"candidate","address":"gone@example.test","state":"pending","first":"2026-11-30T10:00:00Z","last":"2026-11-30T11:00:00Z","count":2,"networks":["198.51.100.0/24","203.0.113.0/24"],"days":["2026-11-30"],"evidence":[{"time":"2026-11-30T10:00:00Z","client":"198.51.100.9","source":"maillog","note":"maillog:7"},{"time":"2026-11-30T11:00:00Z","client":"203.0.113.9","source":"maillog"}]}
{"type":"awl","key":"127.0.0.62","count":3,"last":"2026-11-30T10:00:00Z","expires":"2099-01-01T00:00:00Z"}
{"type":"harvest","address":"k3x9@traps.example.test","visitor":"203.0.113.50","user_agent":"harvester/1.0","time":"2026-11-30T10:00:00Z","expires":"2099-01-01T00:00:00Z"}
{"type":"traphit","time":"2026-11-30T12:00:00Z","client":"203.0.113.66","helo":"bot","from":"x@bot.example","field":"rcpt","address":"k3x9@traps.example.test","rule":"traps.web_domain","harvest":{"address":"k3x9@traps.example.test","visitor":"203.0.113.50","time":"2026-11-30T10:00:00Z","expires":"2099-01-01T00:00:00Z"},"prior":0,"expires":"2099-01-01T00:00:00Z"}
`

// A site moves: the state a bolt greypit built from real traffic (a
// greylist pass, the white entry it earned, the session history) plus trap records goes through `greypit db dump` into
// a Redis greypit and from there into a fresh bolt file, with the daemons
// running and stopped; every dump on the way is the same, loading twice
// changes nothing, and a broken file loads nothing and names its line.
func TestDBDumpMove(t *testing.T) {
	pf := backend(t, testenv.ModeProxy)
	a := startGreypit(t, greypitOpts{backend: pf.Addr()})
	mustDB := func(g *Greypit, args ...string) string {
		t.Helper()
		out, code := g.DB(args...)
		if code != 0 {
			t.Fatalf("greypit db %s: exit %d\n%s", strings.Join(args, " "), code, out)
		}
		return out
	}
	writeFile := func(name, s string) string {
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	passGreylist(t, a, "127.0.0.61", "mover@example.test")
	if r := a.swaks("127.0.0.61", "mover@example.test", "retry"); r.Code != 0 {
		t.Fatalf("retry:\n%s", r)
	}
	pf.WaitMessages(t, 1, 20*time.Second)
	mustDB(a, "load", writeFile("fixture.jsonl", dumpFixture))
	running := mustDB(a, "dump")
	a.Stop() // flushes the session history
	d1 := mustDB(a, "dump")
	for _, typ := range []string{"greypit-dump", "white", "grey", "candidate", "awl", "harvest", "traphit", "event"} {
		if !strings.Contains(d1, `{"type":"`+typ+`"`) {
			t.Errorf("no %s record in the dump:\n%s", typ, d1)
		}
	}
	if !strings.HasPrefix(running, `{"type":"greypit-dump","version":2}`+"\n") {
		t.Errorf("dump through the daemon:\n%s", running)
	}
	dumpFile := writeFile("d1.jsonl", d1)

	// Into Redis, through a running daemon, twice.
	r := testenv.StartRedis(t)
	b := startGreypit(t, greypitOpts{backend: pf.Addr(), sets: redisSets(r)})
	if out := mustDB(b, "load", dumpFile); !strings.Contains(out, "loaded") {
		t.Errorf("load: %s", out)
	}
	if d2 := mustDB(b, "dump"); d2 != d1 {
		t.Fatalf("Redis dump through the daemon differs:\n%s\nwant\n%s", d2, d1)
	}
	mustDB(b, "load", dumpFile)
	if d2 := mustDB(b, "dump"); d2 != d1 {
		t.Fatalf("Redis dump after a second load differs:\n%s\nwant\n%s", d2, d1)
	}
	// A broken file: an error naming the line, nothing of it loaded.
	bad := writeFile("bad.jsonl", `{"type":"greypit-dump","version":2}`+"\n"+
		`{"type":"black","key":"127.0.0.99"}`+"\n"+`{"type":"traphit","client":"bot"}`+"\n")
	if out, code := b.DB("load", bad); code == 0 || !strings.Contains(out, "line 3") || !strings.Contains(out, "client") {
		t.Errorf("load of a broken dump: exit %d, %q", code, out)
	}
	if why := mustDB(b, "why", "127.0.0.99"); strings.Contains(why, "BLACK") {
		t.Errorf("a line of the broken dump was loaded:\n%s", why)
	}
	b.Stop()
	d2 := mustDB(b, "dump") // greypit db on Redis itself
	if d2 != d1 {
		t.Fatalf("Redis dump without the daemon differs:\n%s\nwant\n%s", d2, d1)
	}

	// Back into a fresh bolt file, without a daemon.
	c := startGreypit(t, greypitOpts{backend: pf.Addr()})
	c.Stop()
	mustDB(c, "load", writeFile("d2.jsonl", d2))
	if d3 := mustDB(c, "dump"); d3 != d1 {
		t.Fatalf("bolt dump after the Redis round trip differs:\n%s\nwant\n%s", d3, d1)
	}
	// The moved state works: the host is white at the new site.
	if why := mustDB(c, "why", "127.0.0.61"); !strings.Contains(why, "WHITE") {
		t.Errorf("moved white host:\n%s", why)
	}
}
