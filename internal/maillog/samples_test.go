package maillog

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// sampleLines returns the lines of a test data file as the follower would
// see them: the TSV's message bodies get a syslog header for the daemon
// that wrote them, fragments of lines (grok sub-patterns) are fed bare.
func sampleLines(t testing.TB, name string) []string {
	data, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if !strings.HasSuffix(name, ".tsv") {
		return lines
	}
	var out []string
	for _, l := range lines {
		if strings.HasPrefix(l, "#") {
			continue
		}
		f := strings.Split(l, "\t")
		if len(f) != 3 {
			t.Fatalf("%s: bad line %q", name, l)
		}
		var msg string
		if err := json.Unmarshal([]byte(f[2]), &msg); err != nil {
			t.Fatalf("%s: %s: %v", name, f[0], err)
		}
		pat := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(f[1], "^"), "%{POSTFIX_"), "}$")
		pat = strings.TrimSuffix(pat, "}")
		switch pat {
		case "COMMAND_COUNTER_DATA", "DELAYS", "RELAY", "TLS_FEATURES":
			out = append(out, msg)
		default:
			daemon := strings.ReplaceAll(strings.ToLower(pat), "_", "-")
			out = append(out, "Jan  2 03:04:05 mx postfix/"+daemon+"[4242]: "+msg)
		}
	}
	return out
}

// outcome is one line's result written out for the table.
func outcome(r Result) string {
	if len(r.Events) == 0 {
		return "ignored: " + r.Ignored
	}
	var s []string
	for _, e := range r.Events {
		x := string(e.Kind)
		if e.Client != "" {
			x += " client=" + e.Client
		}
		if e.Address != "" {
			x += " address=" + e.Address
		}
		x += " source=" + e.Source
		s = append(s, x)
	}
	return strings.Join(s, "; ")
}

var sampleFiles = []string{
	"postfix-grok-patterns-test-messages.tsv",
	"crowdsec-postfix-logs.log",
	"crowdsec-postscreen-logs.log",
	"crowdsec-postfix-honeypot-users.log",
	"crowdsec-amavis.log",
	"rspamd-faq-sample.log",
	"joins.log",
}

// TestSamples parses every line of every sample file and checks its
// outcome against the table in samples_expect_test.go. Each file has its
// own parser, as the follower has, so joins happen only within a file.
func TestSamples(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	print := os.Getenv("GREYPIT_PRINT_SAMPLES") != ""
	for _, name := range sampleFiles {
		p := NewParser()
		p.Now = func() time.Time { return now }
		lines := sampleLines(t, name)
		want := expected[name]
		if print {
			fmt.Printf("\t%q: {\n", name)
		}
		for i, l := range lines {
			got := outcome(p.Parse(l))
			if print {
				fmt.Printf("\t\t%q, // %d: %.70s\n", got, i+1, strings.ReplaceAll(l, "\n", `\n`))
				continue
			}
			if i >= len(want) {
				t.Errorf("%s:%d: no expected outcome; got %q", name, i+1, got)
				continue
			}
			if got != want[i] {
				t.Errorf("%s:%d: %.80q\n got %s\nwant %s", name, i+1, l, got, want[i])
			}
		}
		if print {
			fmt.Printf("\t},\n")
		}
		if !print && len(want) != len(lines) {
			t.Errorf("%s: %d lines, %d expected outcomes", name, len(lines), len(want))
		}
	}
}
