package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration read from TOML as a string. It accepts Go
// syntax ("90s", "3m", "1h30m") and, because whitelist lifetimes are
// naturally written in days, a whole number of days with a "d" suffix,
// optionally followed by Go syntax: "36d", "1d12h".
type Duration struct{ time.Duration }

const day = 24 * time.Hour

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := parseDuration(string(b))
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// MarshalText implements encoding.TextMarshaler. Whole days are written as
// "Nd", everything else in Go syntax.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// String formats d as MarshalText does.
func (d Duration) String() string {
	if d.Duration > 0 && d.Duration%day == 0 {
		return strconv.FormatInt(int64(d.Duration/day), 10) + "d"
	}
	return d.Duration.String()
}

func parseDuration(s string) (time.Duration, error) {
	bad := func() (time.Duration, error) {
		return 0, fmt.Errorf("invalid duration %q (want e.g. 90s, 3m, 1h30m or 36d)", s)
	}
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 || i == len(s) || s[i] != 'd' {
		v, err := time.ParseDuration(s)
		if err != nil {
			return bad()
		}
		return v, nil
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil || n > int64(maxDuration/day) {
		return bad()
	}
	v := time.Duration(n) * day
	if rest := s[i+1:]; rest != "" {
		if rest[0] == '-' || rest[0] == '+' {
			return bad()
		}
		r, err := time.ParseDuration(rest)
		if err != nil || r > maxDuration-v {
			return bad()
		}
		v += r
	}
	return v, nil
}

const maxDuration = time.Duration(1<<63 - 1)

// StringList is a list of strings that may be written in TOML as a single
// string (listen = ":25") or as an array (listen = [":25", ":587"]).
type StringList []string

// UnmarshalTOML implements toml.Unmarshaler. An empty array yields nil.
func (l *StringList) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case string:
		*l = StringList{v}
		return nil
	case []any:
		var out StringList
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return fmt.Errorf("want a string or a list of strings, got a list element of type %T", e)
			}
			out = append(out, s)
		}
		*l = out
		return nil
	}
	return fmt.Errorf("want a string or a list of strings, got %T", v)
}

// String joins the list with commas, the form -set accepts.
func (l StringList) String() string { return strings.Join(l, ",") }
