package lists

import (
	"net/netip"
	"path/filepath"
	"testing"
)

// SetFiles swaps to new files; if one of them does not load, the old
// files and lists stay, and a later Reload reads the old files.
func TestSetFiles(t *testing.T) {
	dir := t.TempDir()
	a := writeFile(t, dir, "a", "192.0.2.1\n")
	b := writeFile(t, dir, "b", "198.51.100.1\n")
	s, err := NewSetFiles(Files{Block: []string{a}})
	if err != nil {
		t.Fatal(err)
	}
	blocked := func(ip string) bool { return len(s.Blocked(netip.MustParseAddr(ip))) > 0 }
	if err := s.SetFiles(Files{Block: []string{b}}); err != nil {
		t.Fatal(err)
	}
	if blocked("192.0.2.1") || !blocked("198.51.100.1") {
		t.Fatal("SetFiles did not swap the block list")
	}
	if err := s.SetFiles(Files{Block: []string{a, filepath.Join(dir, "missing")}}); err == nil {
		t.Fatal("SetFiles with a missing file: no error")
	}
	if blocked("192.0.2.1") || !blocked("198.51.100.1") {
		t.Fatal("a failed SetFiles changed the lists")
	}
	writeFile(t, dir, "b", "198.51.100.2\n")
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	if !blocked("198.51.100.2") {
		t.Error("Reload after a failed SetFiles does not read the files in force")
	}
}
