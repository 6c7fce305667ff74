package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, data string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "greypit.toml")
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaultsValidate(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatal(err)
	}
	c, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, Default()) {
		t.Errorf("Load(\"\", nil) = %+v, want defaults", c)
	}
	if got := c.ControlSocket(); got != "/var/lib/greypit/greypit.db.sock" {
		t.Errorf("ControlSocket() = %q", got)
	}
	if got := c.BackendHelloName(); got != c.SMTP.Hostname {
		t.Errorf("BackendHelloName() = %q, want smtp.hostname %q", got, c.SMTP.Hostname)
	}
}

func TestLoadFile(t *testing.T) {
	p := writeFile(t, `
[smtp]
listen = "127.0.0.1:2525"
max_sessions = 10
greet_wait = "0s"

[greylist]
pass_delay = "5m"
white_ttl = "7d"

[lists]
allow = ["/etc/greypit/allow", "/etc/greypit/allow.local"]

[control]
socket = "/run/greypit.sock"
`)
	c, err := Load(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.SMTP.Listen = StringList{"127.0.0.1:2525"}
	want.SMTP.MaxSessions = 10
	want.SMTP.GreetWait = Duration{}
	want.Greylist.PassDelay = Duration{5 * time.Minute}
	want.Greylist.WhiteTTL = Duration{7 * 24 * time.Hour}
	want.Lists.Allow = StringList{"/etc/greypit/allow", "/etc/greypit/allow.local"}
	want.Control.Socket = "/run/greypit.sock"
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got  %+v\nwant %+v", c, want)
	}
	if c.ControlSocket() != "/run/greypit.sock" {
		t.Errorf("ControlSocket() = %q", c.ControlSocket())
	}
}

func TestLoadFileErrors(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		want       []string // substrings of the error
	}{
		{"unknown key", "[smtp]\nlisen = \":25\"\n", []string{"unknown key smtp.lisen"}},
		{"unknown keys", "[smtp]\nlisen = \":25\"\n[log]\nlevle = \"debug\"\n", []string{"unknown key smtp.lisen", "unknown key log.levle"}},
		{"unknown section", "[smpt]\nlisten = \":25\"\nhostname = \"x\"\n", []string{"unknown key smpt"}},
		{"unknown top-level key", "listen = \":25\"\n", []string{"unknown key listen"}},
		{"wrong case", "[smtp]\nListen = \":25\"\n", []string{"unknown key smtp.Listen (keys are case-sensitive)"}},
		{"bad duration", "[greylist]\npass_delay = \"3 minutes\"\n", []string{":2: greylist.pass_delay: invalid duration \"3 minutes\""}},
		{"duration without unit", "[greylist]\npass_delay = 180\n", []string{"greylist.pass_delay: invalid duration \"180\""}},
		{"wrong type", "[smtp]\nmax_sessions = \"many\"\n", []string{":2: smtp.max_sessions: incompatible types"}},
		{"bad list", "[smtp]\nlisten = [25]\n", []string{"smtp.listen: want a string or a list of strings"}},
		{"syntax", "[smtp]\nlisten = \n", []string{":2: "}},
		{"validation", "[greylist]\npass_delay = \"0s\"\n", []string{"greylist.pass_delay: must be > 0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, tc.data)
			_, err := Load(p, nil)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if !strings.Contains(err.Error(), p) && tc.name != "validation" {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

func TestUnknownSectionReportedOnce(t *testing.T) {
	for _, data := range []string{"[smpt]\nlisten = \":25\"\n", "[smpt.x]\nlisten = \":25\"\n"} {
		_, err := Load(writeFile(t, data), nil)
		if err == nil || strings.Count(err.Error(), "unknown key") != 1 || !strings.Contains(err.Error(), "unknown key smpt") {
			t.Errorf("error %v: want only the unknown section named", err)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.toml"), nil)
	if err == nil || !strings.Contains(err.Error(), "nope.toml") {
		t.Errorf("error %v does not name the file", err)
	}
}

func TestSet(t *testing.T) {
	for _, tc := range []struct {
		set   string
		check func(*Config) bool
	}{
		{"smtp.listen=127.0.0.1:25", func(c *Config) bool { return reflect.DeepEqual(c.SMTP.Listen, StringList{"127.0.0.1:25"}) }},
		{"smtp.listen=127.0.0.1:25,[::1]:25", func(c *Config) bool {
			return reflect.DeepEqual(c.SMTP.Listen, StringList{"127.0.0.1:25", "[::1]:25"})
		}},
		{"smtp.listen= :25 , :587 ", func(c *Config) bool { return reflect.DeepEqual(c.SMTP.Listen, StringList{":25", ":587"}) }},
		{`smtp.listen=[":25", ":587"]`, func(c *Config) bool { return reflect.DeepEqual(c.SMTP.Listen, StringList{":25", ":587"}) }},
		{`smtp.listen=":2525"`, func(c *Config) bool { return reflect.DeepEqual(c.SMTP.Listen, StringList{":2525"}) }},
		{"lists.allow=/etc/a", func(c *Config) bool { return reflect.DeepEqual(c.Lists.Allow, StringList{"/etc/a"}) }},
		{"lists.block=", func(c *Config) bool { return c.Lists.Block == nil }},
		{"greylist.pass_delay=90s", func(c *Config) bool { return c.Greylist.PassDelay.Duration == 90*time.Second }},
		{"greylist.white_ttl=36d", func(c *Config) bool { return c.Greylist.WhiteTTL.Duration == 36*24*time.Hour }},
		{`greylist.retry_window="1d12h"`, func(c *Config) bool { return c.Greylist.RetryWindow.Duration == 36*time.Hour }},
		{"smtp.max_sessions=500", func(c *Config) bool { return c.SMTP.MaxSessions == 500 }},
		{"smtp.max_message_size=10_485_760", func(c *Config) bool { return c.SMTP.MaxMessageSize == 10<<20 }},
		{"smtp.proxy_protocol=true", func(c *Config) bool { return c.SMTP.ProxyProtocol }},
		{"backend.address=10.0.0.1:25", func(c *Config) bool { return c.Backend.Address == "10.0.0.1:25" }},
		{"backend.handoff=xclient", func(c *Config) bool { return c.Backend.Handoff == "xclient" }},
		{"store.path=/tmp/x y.db", func(c *Config) bool { return c.Store.Path == "/tmp/x y.db" }},
		{`store.path=C:\db "x"`, func(c *Config) bool { return c.Store.Path == `C:\db "x"` }},
		{`log.level="debug"`, func(c *Config) bool { return c.Log.Level == "debug" }},
		// Strings that happen to be TOML of another type stay strings.
		{"smtp.hostname=inf", func(c *Config) bool { return c.SMTP.Hostname == "inf" }},
		{"smtp.hostname=123", func(c *Config) bool { return c.SMTP.Hostname == "123" }},
		// A value cannot smuggle in other keys.
		{"store.path=\"x\"\n[log]\nlevel = \"debug\"", func(c *Config) bool {
			return c.Store.Path == "\"x\"\n[log]\nlevel = \"debug\"" && c.Log.Level == "info"
		}},
	} {
		t.Run(tc.set, func(t *testing.T) {
			c := Default()
			if err := c.Apply(tc.set); err != nil {
				t.Fatal(err)
			}
			if !tc.check(c) {
				t.Errorf("not applied: %+v", c)
			}
		})
	}
}

func TestSetErrors(t *testing.T) {
	for _, tc := range []struct{ set, want string }{
		{"smtp.lisen=:25", "-set smtp.lisen=:25: unknown key smtp.lisen"},
		{"smpt.listen=:25", "unknown key smpt"},
		{"smtp.Listen=:25", "unknown key smtp.Listen"},
		{"smtp=1", "want section.key=value"},
		{"smtp.listen", "want section.key=value"},
		{"smtp.tls.cert=x", "want section.key=value"},
		{"greylist.pass_delay=3 minutes", "greylist.pass_delay: invalid duration \"3 minutes\""},
		{"greylist.pass_delay=180", "greylist.pass_delay: invalid duration \"180\""},
		{"smtp.max_sessions=lots", "smtp.max_sessions: incompatible types"},
		{"smtp.max_sessions=1.5", "smtp.max_sessions: incompatible types"},
		{"smtp.proxy_protocol=yes", "smtp.proxy_protocol: incompatible types"},
		{"smtp.listen=[1,2]", "smtp.listen: want a string or a list of strings"},
		{"store.path=\xff", "value is not valid UTF-8"},
	} {
		t.Run(tc.set, func(t *testing.T) {
			c := Default()
			err := c.Apply(tc.set)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			if !reflect.DeepEqual(c, Default()) {
				t.Errorf("rejected override changed the config: %+v", c)
			}
		})
	}
}

func TestSetOverridesFile(t *testing.T) {
	p := writeFile(t, "[greylist]\npass_delay = \"5m\"\nretry_window = \"1h\"\n")
	c, err := Load(p, []string{"greylist.pass_delay=10m", "log.format=json"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Greylist.PassDelay.Duration != 10*time.Minute || c.Greylist.RetryWindow.Duration != time.Hour || c.Log.Format != "json" {
		t.Errorf("got %+v", c)
	}
	// Validation sees the result of all overrides.
	_, err = Load(p, []string{"greylist.pass_delay=2h"})
	if err == nil || !strings.Contains(err.Error(), "greylist.retry_window: must be longer than greylist.pass_delay") {
		t.Errorf("error %v", err)
	}
	_, err = Load(p, []string{"smtp.lisen=:25"})
	if err == nil || !strings.Contains(err.Error(), "unknown key smtp.lisen") {
		t.Errorf("error %v", err)
	}
}

func TestDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"3m", 3 * time.Minute},
		{"1h30m", 90 * time.Minute},
		{"0", 0},
		{"36d", 36 * 24 * time.Hour},
		{"1d", 24 * time.Hour},
		{"1d12h", 36 * time.Hour},
		{"2d30m", 48*time.Hour + 30*time.Minute},
		{"0d", 0},
	} {
		var d Duration
		if err := d.UnmarshalText([]byte(tc.in)); err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if d.Duration != tc.want {
			t.Errorf("%q = %v, want %v", tc.in, d.Duration, tc.want)
		}
	}
	for _, in := range []string{"", "d", "3", "1.5d", "-1d", "1d-1h", "1dd", "d1", "1 d", "36days", "999999999999d", "106751d24h"} {
		var d Duration
		if err := d.UnmarshalText([]byte(in)); err == nil {
			t.Errorf("%q: no error, got %v", in, d.Duration)
		}
	}
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{36 * 24 * time.Hour, "36d"},
		{48 * time.Hour, "2d"},
		{3 * time.Minute, "3m0s"},
		{36 * time.Hour, "36h0m0s"},
		{0, "0s"},
	} {
		b, _ := Duration{tc.d}.MarshalText()
		if string(b) != tc.want {
			t.Errorf("MarshalText(%v) = %q, want %q", tc.d, b, tc.want)
		}
		var back Duration
		if err := back.UnmarshalText(b); err != nil || back.Duration != tc.d {
			t.Errorf("round trip of %v: %v, %v", tc.d, back.Duration, err)
		}
	}
}

func TestValidate(t *testing.T) {
	certFile := writeFile(t, "cert")
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"empty listen", func(c *Config) { c.SMTP.Listen = nil }, "smtp.listen: must not be empty"},
		{"listen no port", func(c *Config) { c.SMTP.Listen = StringList{"127.0.0.1"} }, "smtp.listen: address 127.0.0.1: missing port"},
		{"listen named port", func(c *Config) { c.SMTP.Listen = StringList{":smtp"} }, "smtp.listen: \":smtp\": port must be a number"},
		{"listen port 0", func(c *Config) { c.SMTP.Listen = StringList{":25", ":0"} }, "smtp.listen: \":0\": port must be"},
		{"listen port big", func(c *Config) { c.SMTP.Listen = StringList{":65536"} }, "smtp.listen: \":65536\": port must be"},
		{"hostname empty", func(c *Config) { c.SMTP.Hostname = "" }, "smtp.hostname: must not be empty"},
		{"hostname crlf", func(c *Config) { c.SMTP.Hostname = "mx\r\n250 x" }, "smtp.hostname: "},
		{"greet_wait", func(c *Config) { c.SMTP.GreetWait = Duration{-time.Second} }, "smtp.greet_wait: must be >= 0"},
		{"drain_timeout", func(c *Config) { c.SMTP.DrainTimeout = Duration{} }, "smtp.drain_timeout: must be > 0"},
		{"proxy_trusted", func(c *Config) { c.SMTP.ProxyTrusted = StringList{"10.0.0.0/33"} }, `smtp.proxy_trusted: "10.0.0.0/33" is not a CIDR prefix`},
		{"proxy_trusted empty", func(c *Config) { c.SMTP.ProxyProtocol, c.SMTP.ProxyTrusted = true, nil }, "smtp.proxy_trusted: must not be empty"},
		{"proxy_timeout", func(c *Config) { c.SMTP.ProxyTimeout = Duration{} }, "smtp.proxy_timeout: must be > 0"},
		{"command_timeout", func(c *Config) { c.SMTP.CommandTimeout = Duration{-1} }, "smtp.command_timeout: must be > 0"},
		{"session_timeout", func(c *Config) { c.SMTP.SessionTimeout = Duration{} }, "smtp.session_timeout: must be > 0"},
		{"data_timeout", func(c *Config) { c.SMTP.DataTimeout = Duration{} }, "smtp.data_timeout: must be > 0"},
		{"max_sessions", func(c *Config) { c.SMTP.MaxSessions = 0 }, "smtp.max_sessions: must be > 0"},
		{"max_errors", func(c *Config) { c.SMTP.MaxErrors = -1 }, "smtp.max_errors: must be > 0"},
		{"max_recipients", func(c *Config) { c.SMTP.MaxRecipients = 0 }, "smtp.max_recipients: must be > 0"},
		{"max_message_size", func(c *Config) { c.SMTP.MaxMessageSize = 0 }, "smtp.max_message_size: must be > 0"},
		{"cert without key", func(c *Config) { c.SMTP.TLSCert = certFile }, "smtp.tls_key: must be set when smtp.tls_cert is"},
		{"key without cert", func(c *Config) { c.SMTP.TLSKey = certFile }, "smtp.tls_cert: must be set when smtp.tls_key is"},
		{"key unreadable", func(c *Config) { c.SMTP.TLSCert, c.SMTP.TLSKey = certFile, certFile+".missing" }, "smtp.tls_key: open "},
		{"backend address", func(c *Config) { c.Backend.Address = "localhost" }, "backend.address: address localhost: missing port"},
		{"backend port", func(c *Config) { c.Backend.Address = "localhost:x" }, "backend.address: \"localhost:x\": port must be"},
		{"handoff", func(c *Config) { c.Backend.Handoff = "lmtp" }, "backend.handoff: \"lmtp\": must be proxy-v2, xclient or plain"},
		{"connect_timeout", func(c *Config) { c.Backend.ConnectTimeout = Duration{} }, "backend.connect_timeout: must be > 0"},
		{"reply_timeout", func(c *Config) { c.Backend.ReplyTimeout = Duration{} }, "backend.reply_timeout: must be > 0"},
		{"helo_name", func(c *Config) { c.Backend.HelloName = "a b" }, "backend.helo_name: "},
		{"pass_delay", func(c *Config) { c.Greylist.PassDelay = Duration{} }, "greylist.pass_delay: must be > 0"},
		{"retry_window", func(c *Config) { c.Greylist.RetryWindow = Duration{} }, "greylist.retry_window: must be > 0"},
		{"retry_window short", func(c *Config) { c.Greylist.RetryWindow = c.Greylist.PassDelay }, "greylist.retry_window: must be longer than greylist.pass_delay (3m0s)"},
		{"white_ttl", func(c *Config) { c.Greylist.WhiteTTL = Duration{} }, "greylist.white_ttl: must be > 0"},
		{"prefix_v4 low", func(c *Config) { c.Greylist.PrefixV4 = 7 }, "greylist.prefix_v4: must be from 8 to 32"},
		{"prefix_v4 high", func(c *Config) { c.Greylist.PrefixV4 = 33 }, "greylist.prefix_v4: must be from 8 to 32"},
		{"prefix_v6 low", func(c *Config) { c.Greylist.PrefixV6 = 15 }, "greylist.prefix_v6: must be from 16 to 128"},
		{"prefix_v6 high", func(c *Config) { c.Greylist.PrefixV6 = 129 }, "greylist.prefix_v6: must be from 16 to 128"},
		{"store path", func(c *Config) { c.Store.Path = "" }, "store.path: must not be empty"},
		{"expire_every", func(c *Config) { c.Store.ExpireEvery = Duration{} }, "store.expire_every: must be > 0"},
		{"allow empty name", func(c *Config) { c.Lists.Allow = StringList{""} }, "lists.allow: empty file name"},
		{"block empty name", func(c *Config) { c.Lists.Block = StringList{" "} }, "lists.block: empty file name"},
		{"socket too long", func(c *Config) { c.Store.Path = "/" + strings.Repeat("x", 110) }, "control.socket: "},
		{"log level", func(c *Config) { c.Log.Level = "trace" }, "log.level: \"trace\": must be debug, info, warn or error"},
		{"log format", func(c *Config) { c.Log.Format = "xml" }, "log.format: \"xml\": must be text or json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.mutate(c)
			err := c.Validate()
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}

	// Every problem is reported, one per line.
	c := Default()
	c.SMTP.MaxErrors = 0
	c.Log.Level = "x"
	err := c.Validate()
	if err == nil || strings.Count(err.Error(), "\n") != 1 {
		t.Errorf("want two lines, got %q", err)
	}

	// Both TLS files readable: fine.
	c = Default()
	c.SMTP.TLSCert, c.SMTP.TLSKey = certFile, certFile
	if err := c.Validate(); err != nil {
		t.Error(err)
	}
}

// Whatever the value, -set changes at most the key it names.
func FuzzSetOneKey(f *testing.F) {
	for _, s := range []string{"x", `"x"`, "1", "inf", "[1]", "\"a\"\n[log]\nlevel=\"debug\"", "a,b", `x"y\z`, "{a=1}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if len(v) > 256 {
			// The TOML parser is superlinear on deeply nested input
			// ("{a={a=..."), which would only slow fuzzing down.
			t.Skip()
		}
		for _, key := range []string{"store.path", "lists.allow", "smtp.max_sessions", "greylist.pass_delay"} {
			c := Default()
			if err := c.Apply(key + "=" + v); err != nil {
				continue
			}
			d := Default()
			switch key {
			case "store.path":
				d.Store.Path = c.Store.Path
			case "lists.allow":
				d.Lists.Allow = c.Lists.Allow
			case "smtp.max_sessions":
				d.SMTP.MaxSessions = c.SMTP.MaxSessions
			case "greylist.pass_delay":
				d.Greylist.PassDelay = c.Greylist.PassDelay
			}
			if !reflect.DeepEqual(c, d) {
				t.Fatalf("-set %s=%q changed other keys: %+v", key, v, c)
			}
		}
	})
}

func TestProxyTrustedParsed(t *testing.T) {
	got, err := ParsePrefixes([]string{"10.1.2.3/8", "::ffff:192.0.2.0/120", "2001:db8::1"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.0/8", "192.0.2.0/24", "2001:db8::1/128"}
	for i, p := range got {
		if p.String() != want[i] {
			t.Errorf("prefix %d = %s, want %s", i, p, want[i])
		}
	}
}
