package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/greypit/greypit/internal/store"
	"github.com/greypit/greypit/internal/testenv"
)

// `greypit db` works the same with the daemon running (over the control
// socket) and stopped (opening the file), and `why` names what decides.
func TestDBCommands(t *testing.T) {
	pf := backend(t, testenv.ModePlain)
	g := startGreypit(t, greypitOpts{backend: pf.Addr(), allow: []string{"", "192.0.2.0/24 # partner"}, block: []string{"2001:db8:bad::/48"}})

	for _, running := range []bool{true, false} {
		name := map[bool]string{true: "daemon", false: "no-daemon"}[running]
		t.Run(name, func(t *testing.T) {
			if !running {
				g.Stop()
			}
			mustDB := func(args ...string) string {
				t.Helper()
				out, code := g.DB(args...)
				if code != 0 {
					t.Fatalf("greypit db %s: exit %d\n%s", strings.Join(args, " "), code, out)
				}
				return out
			}
			mustDB("add", "-type", "black", "-reason", "trap hit "+name, "198.51.100.7", "2001:db8::/32")
			mustDB("add", "-type", "white", "203.0.113.9")
			mustDB("add", "-type", "spamtrap", "Trap-"+name+"@Example.test")

			out := mustDB("list", "-type", "black", "-json")
			var keys []string
			for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
				var e store.Entry
				if err := json.Unmarshal([]byte(l), &e); err != nil {
					t.Fatalf("list -json line %q: %v", l, err)
				}
				keys = append(keys, e.Key)
				if e.Reason != "trap hit "+name || e.Source != "db" {
					t.Errorf("entry %+v", e)
				}
			}
			if strings.Join(keys, ",") != "198.51.100.7,2001:db8::/32" {
				t.Errorf("black keys %v", keys)
			}
			if out := mustDB("list", "-type", "spamtrap"); !strings.Contains(out, "trap-"+name+"@example.test") {
				t.Errorf("spamtrap not listed lower-cased:\n%s", out)
			}

			why := mustDB("why", "198.51.100.7")
			if !strings.Contains(why, "BLACK") || !strings.Contains(why, "store black 198.51.100.7") || !strings.Contains(why, "trap hit "+name) {
				t.Errorf("why black:\n%s", why)
			}
			why = mustDB("why", "2001:db8:1::5")
			if !strings.Contains(why, "BLACK") || !strings.Contains(why, "2001:db8::/32") {
				t.Errorf("why black prefix:\n%s", why)
			}
			why = mustDB("why", "192.0.2.44")
			if !strings.Contains(why, "WHITE") || !strings.Contains(why, "allow.list:3 (192.0.2.0/24)") {
				t.Errorf("why allow-listed:\n%s", why)
			}
			why = mustDB("why", "203.0.113.9")
			if !strings.Contains(why, "WHITE") || !strings.Contains(why, "store white 203.0.113.9") {
				t.Errorf("why white:\n%s", why)
			}
			why = mustDB("why", "198.18.0.1")
			if !strings.Contains(why, "GREY") {
				t.Errorf("why unknown:\n%s", why)
			}

			dump := filepath.Join(t.TempDir(), "dump.jsonl")
			out = mustDB("dump")
			if err := os.WriteFile(dump, []byte(out), 0o644); err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(out, "\n"); n < 4 {
				t.Errorf("dump has %d lines:\n%s", n, out)
			}
			out = mustDB("del", "-type", "black", "198.51.100.7", "2001:db8::/32")
			if !strings.Contains(out, "deleted 2") {
				t.Errorf("del: %s", out)
			}
			if why := mustDB("why", "198.51.100.7"); !strings.Contains(why, "GREY") {
				t.Errorf("after del:\n%s", why)
			}
			if out := mustDB("load", dump); !strings.Contains(out, "loaded") {
				t.Errorf("load: %s", out)
			}
			if why := mustDB("why", "198.51.100.7"); !strings.Contains(why, "BLACK") {
				t.Errorf("after load:\n%s", why)
			}

			// Bad input: clear errors, non-zero exit.
			for _, bad := range [][]string{
				{"add", "-type", "black", "not-an-ip"},
				{"add", "-type", "colour", "1.2.3.4"},
				{"add", "-type", "spamtrap", "nobody"},
				{"why", "example.org"},
				{"frobnicate"},
			} {
				out, code := g.DB(bad...)
				if code == 0 || !strings.Contains(out, "greypit:") {
					t.Errorf("greypit db %s: exit %d, output %q", strings.Join(bad, " "), code, out)
				}
			}
			badDump := filepath.Join(t.TempDir(), "bad.jsonl")
			os.WriteFile(badDump, []byte(`{"type":"black","key":"192.0.2.1","created":"2026-01-01T00:00:00Z","updated":"2026-01-01T00:00:00Z"}`+"\nnot json\n"), 0o644)
			if out, code := g.DB("load", badDump); code == 0 || !strings.Contains(out, "line 2") {
				t.Errorf("load of a broken dump: exit %d, %q", code, out)
			}
			// All or nothing: the good line before the bad one is not loaded.
			if why := mustDB("why", "192.0.2.1"); strings.Contains(why, "store black") {
				t.Errorf("line 1 of a broken dump loaded:\n%s", why)
			}
			mustDB("del", "-type", "black", "198.51.100.7", "2001:db8::/32")
			mustDB("del", "-type", "white", "203.0.113.9")
		})
	}
	if out, code := g.DB("list"); code != 0 {
		t.Errorf("list all without daemon: %s", out)
	}
}
