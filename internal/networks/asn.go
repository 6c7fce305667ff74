package networks

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/gaissmai/bart"
	"github.com/oschwald/maxminddb-golang/v2"

	"github.com/greypit/greypit/internal/lists"
)

// AS is an autonomous system as the ASN data names it.
type AS struct {
	Number  uint32 `json:"asn"`
	Country string `json:"country,omitempty"`
	Name    string `json:"name,omitempty"`
}

// String formats a as "AS13335 CLOUDFLARENET - Cloudflare, Inc.".
func (a AS) String() string {
	if a.Number == 0 {
		return "unknown AS"
	}
	s := "AS" + strconv.FormatUint(uint64(a.Number), 10)
	if a.Name != "" {
		s += " " + a.Name
	}
	return s
}

// ASNDB maps addresses to their AS.
type ASNDB interface {
	// Lookup returns the AS announcing a, or false.
	Lookup(a netip.Addr) (AS, bool)
	Close() error
}

// OpenASNDB opens networks.asn_db: a MaxMind DB (by its metadata marker)
// or an iptoasn.com TSV file, gzipped or not.
func OpenASNDB(path string) (ASNDB, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("networks.asn_db: %w", err)
	}
	if bytes.Contains(data[max(0, len(data)-128<<10):], []byte("\xab\xcd\xefMaxMind.com")) {
		r, err := maxminddb.OpenBytes(data)
		if err != nil {
			return nil, fmt.Errorf("networks.asn_db %s: %w", path, err)
		}
		return &mmdb{r: r}, nil
	}
	var in io.Reader = bytes.NewReader(data)
	if bytes.HasPrefix(data, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(in)
		if err != nil {
			return nil, fmt.Errorf("networks.asn_db %s: %w", path, err)
		}
		in = zr
	}
	db, err := ReadTSV(in)
	if err != nil {
		return nil, fmt.Errorf("networks.asn_db %s: %w", path, err)
	}
	return db, nil
}

// TSV is iptoasn.com data in a prefix table.
type TSV struct {
	table bart.Table[AS]
	rows  int
}

// ReadTSV reads iptoasn.com's format: tab-separated range_start,
// range_end, AS_number, country_code, AS_description, one inclusive range
// per line, IPv4 and IPv6 rows alike. AS 0 ("Not routed") rows are skipped.
func ReadTSV(r io.Reader) (*TSV, error) {
	db := &TSV{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 64<<10)
	n := 0
	for sc.Scan() {
		n++
		ps, as, ok, err := parseTSVLine(sc.Text())
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if !ok {
			continue
		}
		for _, p := range ps {
			db.table.Insert(p, as)
		}
		db.rows++
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w", n+1, err)
	}
	return db, nil
}

// parseTSVLine parses one iptoasn row into the prefixes of its range.
func parseTSVLine(line string) (ps []netip.Prefix, as AS, ok bool, err error) {
	line = strings.TrimSuffix(line, "\r")
	if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
		return nil, AS{}, false, nil
	}
	f := strings.Split(line, "\t")
	if len(f) < 3 {
		return nil, AS{}, false, errors.New("want range_start, range_end, AS_number, country, description separated by tabs")
	}
	from, err1 := netip.ParseAddr(f[0])
	to, err2 := netip.ParseAddr(f[1])
	if err1 != nil || err2 != nil {
		return nil, AS{}, false, fmt.Errorf("bad range %q - %q", f[0], f[1])
	}
	num, err := strconv.ParseUint(f[2], 10, 32)
	if err != nil {
		return nil, AS{}, false, fmt.Errorf("bad AS number %q", f[2])
	}
	if num == 0 {
		return nil, AS{}, false, nil // not routed
	}
	ps = lists.RangePrefixes(from, to)
	if ps == nil {
		return nil, AS{}, false, fmt.Errorf("bad range %q - %q", f[0], f[1])
	}
	as = AS{Number: uint32(num)}
	if len(f) > 3 && f[3] != "None" {
		as.Country = clean(f[3], 8)
	}
	if len(f) > 4 {
		as.Name = clean(strings.Join(f[4:], " "), 100)
	}
	return ps, as, true, nil
}

// clean bounds a name from a data file for logs and reports.
func clean(s string, n int) string {
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f || r == ' ' }), " ")
	if len(s) > n {
		s = strings.ToValidUTF8(s[:n], "")
	}
	return s
}

// Lookup implements ASNDB.
func (d *TSV) Lookup(a netip.Addr) (AS, bool) {
	if d == nil || !a.IsValid() {
		return AS{}, false
	}
	return d.table.Lookup(a.Unmap())
}

// Rows returns the number of routed rows read.
func (d *TSV) Rows() int { return d.rows }

// Close implements ASNDB.
func (d *TSV) Close() error { return nil }

// mmdb is a MaxMind ASN database (GeoLite2-ASN layout).
type mmdb struct{ r *maxminddb.Reader }

type mmdbASN struct {
	Number uint32 `maxminddb:"autonomous_system_number"`
	Org    string `maxminddb:"autonomous_system_organization"`
}

// Lookup implements ASNDB.
func (m *mmdb) Lookup(a netip.Addr) (AS, bool) {
	if !a.IsValid() {
		return AS{}, false
	}
	var rec mmdbASN
	res := m.r.Lookup(a.Unmap())
	if !res.Found() || res.Decode(&rec) != nil || rec.Number == 0 {
		return AS{}, false
	}
	return AS{Number: rec.Number, Name: clean(rec.Org, 100)}, true
}

// Close implements ASNDB.
func (m *mmdb) Close() error { return m.r.Close() }
