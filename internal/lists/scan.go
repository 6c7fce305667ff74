package lists

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

// ScanFile calls fn for each line of an operator's file, numbered from 1,
// with a leading byte-order mark (which editors add) removed. An error
// from fn or from reading is returned as "file:line: error".
func ScanFile(file string, fn func(n int, line string) error) error {
	fh, err := os.Open(file)
	if err != nil {
		return err
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if n == 1 {
			line = strings.TrimPrefix(line, "\uFEFF")
		}
		if err := fn(n, line); err != nil {
			return fmt.Errorf("%s:%d: %w", file, n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s:%d: %w", file, n+1, err)
	}
	return nil
}
