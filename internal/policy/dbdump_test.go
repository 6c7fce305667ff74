package policy

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/greypit/greypit/internal/greylist"
	"github.com/greypit/greypit/internal/store"
)

// sampleDump has the shape `db_dump -p postgrey.db` prints (see the e2e
// test for one from a real postgrey): a passed and a pending tuple, a null
// sender, an escaped byte and a --privacy hash.
const sampleDump = `VERSION=3
format=print
type=btree
db_pagesize=4096
HEADER=END
 192.0.2.0/bob@example.org/kim@example.test
 1764590000,1764590400
 192.0.2.0//kim@example.test
 1764590000,1764590010
 198.51.100.0/a\5cb@example.org/kim@example.test
 1764590000,1764590400,host
 3f786850e387550fdab836ed7e6dc881de23001b
 1764590000,1764590400
DATA=END
`

var testImport = ImportParams{
	PostgreyDelay: 300 * time.Second,
	Grey:          store.GreyParams{PassDelay: 300 * time.Second, RetryWindow: 48 * time.Hour, PassedTTL: 35 * 24 * time.Hour},
	PrefixV4:      24, PrefixV6: 64, AutoWhitelist: 5, WhiteTTL: 35 * 24 * time.Hour,
	Now: time.Unix(1764590500, 0),
}

func TestImportDump(t *testing.T) {
	var got []store.Entry
	var errs []string
	err := ParseDump(strings.NewReader(sampleDump), func(k, v []byte) error {
		e, ok, err := TupleEntry(string(k), string(v), testImport)
		if err != nil {
			errs = append(errs, err.Error())
		} else if ok {
			got = append(got, e)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || len(errs) != 1 {
		t.Fatalf("entries %+v, errors %q", got, errs)
	}
	a := got[0]
	if want := greylist.Key(netipMust("192.0.2.1"), 24, 64, "bob@example.org", "kim@example.test"); a.Key != want || a.Passed.IsZero() {
		t.Errorf("passed tuple: %+v (want key %q)", a, want)
	}
	if b := got[1]; b.Key != "192.0.2.0/24  kim@example.test" || !b.Passed.IsZero() || !b.Pass.Equal(time.Unix(1764590300, 0)) {
		t.Errorf("pending null-sender tuple: %+v", b)
	}
	if c := got[2]; !strings.Contains(c.Key, ` a\b@example.org `) {
		t.Errorf("escaped sender: %q", c.Key)
	}
	// A passed tuple is one greypit passes at once.
	if _, out := stepOf(a, testImport); out != store.GreyPass {
		t.Errorf("imported passed tuple: %v", out)
	}

	w, ok, err := ClientEntry("192.0.2.7", "6,1764590000", testImport)
	if err != nil || !ok || w.Kind != store.White || w.Key != "192.0.2.7" {
		t.Errorf("client: %+v %v %v", w, ok, err)
	}
	if _, ok, _ := ClientEntry("192.0.2.8", "4,1764590000", testImport); ok {
		t.Error("client below the threshold imported as white")
	}
	for _, bad := range []string{"", "VERSION=3\nHEADER=END\n 61\n", "HEADER=END\nx\nDATA=END\n", "format=print\nHEADER=END\n \\zz\n 1\nDATA=END\n"} {
		if err := ParseDump(strings.NewReader(bad), func(k, v []byte) error { return nil }); err == nil {
			t.Errorf("ParseDump(%q) accepted", bad)
		}
	}
}

func netipMust(s string) netip.Addr { return netip.MustParseAddr(s) }

// stepOf runs one greylist attempt against an imported entry in a store.
func stepOf(e store.Entry, p ImportParams) (store.Entry, store.GreyOutcome) {
	db, err := store.OpenBolt(tempDB(), store.BoltOptions{})
	if err != nil {
		panic(err)
	}
	defer db.Close()
	ctx := context.Background()
	if err := db.PutAll(ctx, []store.Entry{e}); err != nil {
		panic(err)
	}
	got, out, err := db.Greylist(ctx, e.Key, "192.0.2.1", p.Now, p.Grey)
	if err != nil {
		panic(err)
	}
	return got, out
}

func tempDB() string {
	d, err := os.MkdirTemp("", "greypit-policy-")
	if err != nil {
		panic(err)
	}
	return filepath.Join(d, "g.db")
}
