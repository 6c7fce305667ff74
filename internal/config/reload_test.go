package config

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestDiff(t *testing.T) {
	old := Default()
	for _, tc := range []struct {
		sets            []string
		reload, restart []string
	}{
		{nil, nil, nil},
		{[]string{"greylist.pass_delay=5m"}, []string{"greylist.pass_delay"}, nil},
		{[]string{"smtp.listen=127.0.0.1:2525", "store.path=/tmp/x.db", "dnsbl.sites=zen.example"},
			[]string{"dnsbl.sites"}, []string{"smtp.listen", "store.path"}},
		{[]string{"log.level=debug", "log.format=json"}, []string{"log.level"}, []string{"log.format"}},
		// The same value spelt differently is no change.
		{[]string{"greylist.pass_delay=180s", "lists.allow="}, nil, nil},
		{[]string{"policy.greylist_text=wait", "policy.listen=127.0.0.1:10023"},
			[]string{"policy.greylist_text"}, []string{"policy.listen"}},
	} {
		nc := Default()
		nc.SMTP.Hostname = old.SMTP.Hostname
		for _, s := range tc.sets {
			if err := nc.Apply(s); err != nil {
				t.Fatal(err)
			}
		}
		reload, restart := Diff(old, nc)
		if !slices.Equal(reload, tc.reload) || !slices.Equal(restart, tc.restart) {
			t.Errorf("%v: reload %v restart %v, want %v and %v", tc.sets, reload, restart, tc.reload, tc.restart)
		}
	}
}

// Every key the reload table names exists: a renamed key must not
// silently turn into one that needs a restart.
func TestReloadableKeysExist(t *testing.T) {
	for k := range reloadable {
		if keyTypes[k] == nil {
			t.Errorf("reloadable key %s is not a config key", k)
		}
	}
}

func TestDiffFromFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "greypit.toml")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("[greylist]\npass_delay = \"1m\"\n[smtp]\nlisten = [\"127.0.0.1:25\"]\n")
	sets := []string{"smtp.hostname=mx.test"}
	a, err := Load(path, sets)
	if err != nil {
		t.Fatal(err)
	}
	write("[greylist]\npass_delay = \"2m\"\n[smtp]\nlisten = [\"127.0.0.1:26\"]\n")
	b, err := Load(path, sets)
	if err != nil {
		t.Fatal(err)
	}
	reload, restart := Diff(a, b)
	if !slices.Equal(reload, []string{"greylist.pass_delay"}) || !slices.Equal(restart, []string{"smtp.listen"}) {
		t.Errorf("reload %v restart %v", reload, restart)
	}
	if b.SMTP.Hostname != "mx.test" {
		t.Errorf("-set not applied on reload: %q", b.SMTP.Hostname)
	}
}

func TestRunning(t *testing.T) {
	cur := Default()
	next := Default()
	for _, s := range []string{"greylist.pass_delay=1m", "smtp.listen=127.0.0.1:2525", "store.path=/x.db", "log.level=warn"} {
		if err := next.Apply(s); err != nil {
			t.Fatal(err)
		}
	}
	run, err := Running(cur, next)
	if err != nil {
		t.Fatal(err)
	}
	if run.Greylist.PassDelay.Duration != time.Minute || run.Log.Level != "warn" {
		t.Errorf("reloadable keys not taken: %v %q", run.Greylist.PassDelay, run.Log.Level)
	}
	if !slices.Equal(run.SMTP.Listen, cur.SMTP.Listen) || run.Store.Path != cur.Store.Path {
		t.Errorf("restart keys changed: %v %q", run.SMTP.Listen, run.Store.Path)
	}
	if _, restart := Diff(cur, run); restart != nil {
		t.Errorf("running config differs in restart keys %v", restart)
	}
}
