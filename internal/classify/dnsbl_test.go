package classify

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/greypit/greypit/internal/bigsenders"
	"github.com/greypit/greypit/internal/dnsbl"
	"github.com/greypit/greypit/internal/dnsx"
	"github.com/greypit/greypit/internal/store"
	"github.com/greypit/greypit/internal/testenv"
)

// DNSBL and big-sender rules, against a loopback DNS server.
func TestDNSBLAndBigSenders(t *testing.T) {
	srv := testenv.StartDNS(t, "bl.test", "wl.test", "big.test")
	srv.Add(t,
		"9.2.0.192.bl.test. 300 IN A 127.0.0.2",
		"8.2.0.192.bl.test. 300 IN A 127.0.0.2",
		"7.2.0.192.wl.test. 300 IN A 127.0.10.2",
		"5.9.0.127.bl.test. 300 IN A 127.0.0.2",
		`big.test. 300 IN TXT "v=spf1 ip4:127.0.9.0/24 -all"`,
	)
	sites, err := dnsbl.ParseSites([]string{"bl.test*2", "wl.test=127.0.[0..255].[1..3]*-2"})
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, "", "")
	f.c.DNSBL = dnsbl.NewChecker(dnsbl.Options{Sites: sites, Threshold: 2, AllowThreshold: -1, Timeout: 2 * time.Second, DNS: &dnsx.Client{Server: srv.Addr}})
	f.c.BigSenders = &bigsenders.Set{}
	if res := f.c.BigSenders.Refresh(context.Background(), dnsx.NetResolver(srv.Addr), []bigsenders.Provider{{Domain: "big.test", SPF: "big.test", Source: "test zone"}}, 5*time.Second); res[0].Err != "" {
		t.Fatal(res[0].Err)
	}
	f.put(t, store.White, "192.0.2.8", SourceGreylist, "passed greylisting")

	d := f.classify(t, "192.0.2.9")
	if d.Path != Black || d.Reason != "listed in bl.test (127.0.0.2)" || !strings.Contains(d.Rule, "dnsbl score 2") || d.DNSBL == nil {
		t.Errorf("listed host: %+v", d)
	}
	// A host that earned its white entry stays white.
	if d := f.classify(t, "192.0.2.8"); d.Path != White || d.Entry == nil {
		t.Errorf("earned white, listed: %+v", d)
	}
	// An allow-listed (DNSWL) host: grey in mode "all", white in "selective".
	if d := f.classify(t, "192.0.2.7"); d.Path != Grey || d.DNSBL == nil || d.DNSBL.Score != -2 {
		t.Errorf("DNSWL host, mode all: %+v", d)
	}
	f.c.Selective = true
	if d := f.classify(t, "192.0.2.7"); d.Path != White || !strings.Contains(d.Rule, "dnsbl allow score -2") {
		t.Errorf("DNSWL host, selective: %+v", d)
	}
	// A big sender's network is white even when a DNSBL lists it.
	d = f.classify(t, "127.0.9.5")
	if d.Path != White || d.BigSender == nil || !strings.Contains(d.Rule, "bigsenders big.test (127.0.9.0/24") {
		t.Errorf("big sender: %+v", d)
	}
	if d := f.classify(t, "192.0.2.1"); d.Path != Grey || d.DNSBL == nil || d.DNSBL.Score != 0 {
		t.Errorf("unlisted host: %+v", d)
	}
}
