package classify

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/greypit/greypit/internal/lists"
	"github.com/greypit/greypit/internal/store"
)

// An address on several block lists is black with every list's message;
// an operator's white entry still wins over them.
func TestSeveralBlockLists(t *testing.T) {
	f := newFixture(t, "", "203.0.113.5\n")
	dir := t.TempDir()
	drop := filepath.Join(dir, "drop.txt")
	os.WriteFile(drop, []byte("; DROP\n203.0.113.0/24 ; SBL42\n"), 0o644)
	set, err := lists.NewSetFiles(lists.Files{Allow: []string{f.allowFile}, Block: []string{f.blockFile}, DROP: []string{drop}})
	if err != nil {
		t.Fatal(err)
	}
	f.c.Lists = set
	d := f.classify(t, "203.0.113.5")
	if d.Path != Black || d.Rule != "lists.block "+f.blockFile+":1 (203.0.113.5) and 1 more list(s)" ||
		d.Reason != "listed in local block list; listed in Spamhaus DROP (SBL42)" || len(d.Listings) != 2 || d.List == nil || d.List.Line != 1 {
		t.Errorf("two lists: %+v", d)
	}
	d = f.classify(t, "203.0.113.6")
	if d.Path != Black || d.Rule != "lists.drop "+drop+":2 (203.0.113.0/24)" || d.Reason != "listed in Spamhaus DROP (SBL42)" {
		t.Errorf("DROP only: %+v", d)
	}
	f.put(t, store.White, "203.0.113.6", "db", "customer")
	if d := f.classify(t, "203.0.113.6"); d.Path != White {
		t.Errorf("operator white entry: %+v", d)
	}
}
