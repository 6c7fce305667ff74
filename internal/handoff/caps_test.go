package handoff

import (
	"context"
	"github.com/greypit/greypit/internal/testenv"
	"slices"
	"testing"
)

func TestCapabilitiesBeforeProbe(t *testing.T) {
	c := &Capabilities{MaxSize: 10 << 20}
	if got, want := c.Lines(), []string{"PIPELINING", "ENHANCEDSTATUSCODES"}; !slices.Equal(got, want) {
		t.Errorf("Lines() before probe = %q, want %q", got, want)
	}
}

func TestCapabilitiesProbe(t *testing.T) {
	all := []string{"PIPELINING", "SIZE 1000000", "VRFY", "ETRN", "STARTTLS", "AUTH PLAIN LOGIN",
		"ENHANCEDSTATUSCODES", "8BITMIME", "DSN", "SMTPUTF8", "CHUNKING", "XCLIENT NAME ADDR PROTO HELO"}
	tests := []struct {
		name    string
		ext     []string
		maxSize int64
		want    []string
	}{
		{"backend smaller", all, 10 << 20,
			[]string{"PIPELINING", "SIZE 1000000", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8", "DSN"}},
		{"ours smaller", all, 500,
			[]string{"PIPELINING", "SIZE 500", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8", "DSN"}},
		{"backend SIZE without limit", []string{"SIZE", "PIPELINING"}, 4096,
			[]string{"PIPELINING", "SIZE 4096"}},
		{"backend SIZE 0 means no limit", []string{"SIZE 0"}, 4096, []string{"SIZE 4096"}},
		{"backend SIZE garbage", []string{"SIZE lots"}, 4096, []string{"SIZE 4096"}},
		{"no SIZE at backend", []string{"PIPELINING", "8BITMIME"}, 4096, []string{"PIPELINING", "8BITMIME"}},
		{"lower-case keywords", []string{"pipelining", "size 2000"}, 4096, []string{"PIPELINING", "SIZE 2000"}},
		// Offered in greypit's own order, not the backend's.
		{"our order", []string{"DSN", "SMTPUTF8", "8BITMIME", "PIPELINING"}, 4096, []string{"PIPELINING", "8BITMIME", "SMTPUTF8", "DSN"}},
		{"nothing safe", []string{"CHUNKING", "STARTTLS", "AUTH PLAIN", "BINARYMIME"}, 4096, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := testenv.NewFakeMTA(t, true, func(m *testenv.FakeMTA) { m.Ext = tt.ext })
			c := &Capabilities{MaxSize: tt.maxSize}
			if err := c.Probe(context.Background(), dialer(m.Addr, ProxyV2)); err != nil {
				t.Fatalf("Probe: %v", err)
			}
			if got := c.Lines(); !slices.Equal(got, tt.want) {
				t.Errorf("Lines() = %q, want %q", got, tt.want)
			}
			mc := m.Next(t)
			// greypit's own name, and a polite goodbye.
			if want := []string{"EHLO greypit.test", "QUIT"}; !slices.Equal(mc.Lines, want) {
				t.Errorf("backend got %q, want %q", mc.Lines, want)
			}
		})
	}
}

func TestCapabilitiesProbeFailureKeepsPrevious(t *testing.T) {
	m := testenv.NewFakeMTA(t, false, func(m *testenv.FakeMTA) { m.Ext = []string{"PIPELINING", "SIZE 1000", "DSN"} })
	c := &Capabilities{MaxSize: 4096}
	if err := c.Probe(context.Background(), dialer(m.Addr, Plain)); err != nil {
		t.Fatalf("Probe: %v", err)
	}
	want := []string{"PIPELINING", "SIZE 1000", "DSN"}
	if got := c.Lines(); !slices.Equal(got, want) {
		t.Fatalf("Lines() = %q, want %q", got, want)
	}
	if err := c.Probe(context.Background(), dialer(testenv.ClosedPort(t), Plain)); err == nil {
		t.Fatal("Probe of a dead backend succeeded")
	}
	if got := c.Lines(); !slices.Equal(got, want) {
		t.Errorf("Lines() after failed probe = %q, want the previous %q", got, want)
	}
}
