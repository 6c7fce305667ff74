package networks

import (
	"bytes"
	"compress/gzip"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

func TestTSV(t *testing.T) {
	db, err := OpenASNDB("testdata/iptoasn-ip2asn-v4-subset.tsv")
	if err != nil {
		t.Fatal(err)
	}
	if n := db.(*TSV).Rows(); n != 1427 {
		t.Errorf("%d rows, want 1427", n)
	}
	for addr, want := range map[string]uint32{
		"1.1.1.0":    13335,
		"1.1.1.1":    7497, // the odd single-address row
		"1.1.1.2":    13335,
		"1.1.1.255":  13335,
		"8.8.8.8":    15169,
		"8.8.4.4":    15169,
		"34.113.0.1": 19527,
		"192.0.2.1":  0,
	} {
		as, ok := db.Lookup(netip.MustParseAddr(addr))
		if ok != (want != 0) || as.Number != want {
			t.Errorf("%s: %+v %v, want AS%d", addr, as, ok, want)
		}
	}
	if as, _ := db.Lookup(netip.MustParseAddr("::ffff:8.8.8.8")); as.String() != "AS15169 GOOGLE - Google LLC" || as.Country != "US" {
		t.Errorf("mapped 8.8.8.8: %q %q", as, as.Country)
	}

	// Gzipped, IPv6 rows, "Not routed" rows, and errors with line numbers.
	dir := t.TempDir()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("1.0.1.0\t1.0.3.255\t0\tNone\tNot routed\n2001:db8::\t2001:db8:ffff:ffff:ffff:ffff:ffff:ffff\t64500\tZZ\tEXAMPLE-AS\n"))
	zw.Close()
	p := filepath.Join(dir, "ip2asn-combined.tsv.gz")
	os.WriteFile(p, gz.Bytes(), 0o644)
	db, err = OpenASNDB(p)
	if err != nil {
		t.Fatal(err)
	}
	if as, ok := db.Lookup(netip.MustParseAddr("2001:db8:5::1")); !ok || as.Number != 64500 {
		t.Errorf("IPv6 row: %+v", as)
	}
	if _, ok := db.Lookup(netip.MustParseAddr("1.0.2.1")); ok {
		t.Error("a not-routed row was attributed")
	}
	for _, bad := range []string{"1.0.0.0\t1.0.0.255\n", "1.0.0.9\t1.0.0.1\t5\tUS\tx\n", "1.0.0.0\tx\t5\n", "1.0.0.0\t1.0.0.1\tAS5\n"} {
		p := filepath.Join(dir, "bad.tsv")
		os.WriteFile(p, []byte("1.0.0.0\t1.0.0.255\t5\tUS\tok\n"+bad), 0o644)
		if _, err := OpenASNDB(p); err == nil || !strings.Contains(err.Error(), "line 2") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// A MaxMind ASN database written here with MaxMind's own writer.
func TestMMDB(t *testing.T) {
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "GeoLite2-ASN", RecordSize: 24, IncludeReservedNetworks: true})
	if err != nil {
		t.Fatal(err)
	}
	for cidr, rec := range map[string]mmdbtype.Map{
		"203.0.113.0/24": {"autonomous_system_number": mmdbtype.Uint32(64496), "autonomous_system_organization": mmdbtype.String("EXAMPLE-NET")},
		"2001:db8::/32":  {"autonomous_system_number": mmdbtype.Uint32(64497)},
	} {
		_, n, _ := net.ParseCIDR(cidr)
		if err := tree.Insert(n, rec); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(t.TempDir(), "asn.mmdb")
	f, _ := os.Create(p)
	if _, err := tree.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	db, err := OpenASNDB(p)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if as, ok := db.Lookup(netip.MustParseAddr("203.0.113.9")); !ok || as.String() != "AS64496 EXAMPLE-NET" {
		t.Errorf("203.0.113.9: %+v %v", as, ok)
	}
	if as, ok := db.Lookup(netip.MustParseAddr("2001:db8::1")); !ok || as.Number != 64497 {
		t.Errorf("2001:db8::1: %+v %v", as, ok)
	}
	if _, ok := db.Lookup(netip.MustParseAddr("198.51.100.1")); ok {
		t.Error("198.51.100.1 found")
	}
}

func FuzzParseTSVLine(f *testing.F) {
	for _, s := range []string{
		"1.1.1.0\t1.1.1.0\t13335\tUS\tCLOUDFLARENET - Cloudflare, Inc.", "1.0.1.0\t1.0.3.255\t0\tNone\tNot routed",
		"2001:db8::\t2001:db8::ffff\t64500\tZZ\tX", "1.0.0.9\t1.0.0.1\t5\tUS\tx", "#", "1.2.3.4\t::1\t5", "a\tb\tc\td\te\tf",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		ps, as, ok, err := parseTSVLine(line)
		if err != nil || !ok {
			if ok || len(ps) > 0 {
				t.Fatalf("%q: no entry but %v", line, ps)
			}
			return
		}
		if as.Number == 0 || len(ps) == 0 || len(ps) > 256 || len(as.Name) > 100 || strings.ContainsAny(as.Name+as.Country, "\t\r\n") {
			t.Fatalf("%q: %+v %d prefixes", line, as, len(ps))
		}
	})
}
