package testenv

import (
	"bufio"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Series is one parsed sample: name{labels} value.
type Series struct {
	Name   string
	Labels map[string]string
	Value  float64
}

var (
	metricName = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	labelName  = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

// ParseExposition is a strict reader of the text format (version 0.0.4)
// for tests: HELP and TYPE once per family before its samples, samples of
// a family together, valid names, escapes and values, no duplicate
// series, counters named _total, and histograms with cumulative buckets
// ending in le="+Inf" equal to _count.
func ParseExposition(text string) (map[string]Series, error) {
	out := map[string]Series{}
	types := map[string]string{}
	helps := map[string]bool{}
	done := map[string]bool{} // families whose samples have ended
	cur := ""
	type hist struct {
		last  float64
		lastC float64
		inf   float64
		seen  bool
	}
	hists := map[string]*hist{}
	sc := bufio.NewScanner(strings.NewReader(text))
	ln := 0
	for sc.Scan() {
		ln++
		line := sc.Text()
		fail := func(f string, a ...any) error { return fmt.Errorf("line %d %q: %s", ln, line, fmt.Sprintf(f, a...)) }
		if strings.HasPrefix(line, "# ") {
			f := strings.SplitN(line, " ", 4)
			if len(f) < 4 || !metricName.MatchString(f[2]) {
				return nil, fail("bad comment line")
			}
			name := f[2]
			if done[name] || (cur != name && types[name] != "") {
				return nil, fail("family %s split", name)
			}
			switch f[1] {
			case "HELP":
				if helps[name] || types[name] != "" {
					return nil, fail("HELP twice or after TYPE")
				}
				if strings.Contains(strings.ReplaceAll(strings.ReplaceAll(f[3], `\\`, ""), `\n`, ""), `\`) {
					return nil, fail("bad escape in HELP")
				}
				helps[name] = true
			case "TYPE":
				if types[name] != "" {
					return nil, fail("TYPE twice")
				}
				switch f[3] {
				case "counter", "gauge", "histogram":
				default:
					return nil, fail("type %q", f[3])
				}
				if f[3] == "counter" && !strings.HasSuffix(name, "_total") {
					return nil, fail("counter not named _total")
				}
				types[name] = f[3]
			default:
				return nil, fail("unknown comment")
			}
			if cur != "" && cur != name {
				done[cur] = true
			}
			cur = name
			continue
		}
		s, key, err := parseSample(line)
		if err != nil {
			return nil, fail("%v", err)
		}
		family := s.Name
		if types[cur] == "histogram" {
			family = strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(s.Name, "_bucket"), "_sum"), "_count")
		}
		if family != cur || types[cur] == "" || !helps[cur] {
			return nil, fail("sample outside its family (%s), or without HELP/TYPE", cur)
		}
		if _, dup := out[key]; dup {
			return nil, fail("duplicate series")
		}
		out[key] = s
		if types[cur] == "histogram" {
			h := hists[cur]
			if h == nil {
				h = &hist{}
				hists[cur] = h
			}
			switch {
			case strings.HasSuffix(s.Name, "_bucket"):
				le, ok := s.Labels["le"]
				if !ok {
					return nil, fail("bucket without le")
				}
				v, err := parseValue(le)
				if err != nil || (h.seen && v <= h.last) || s.Value < h.lastC {
					return nil, fail("buckets not ascending or not cumulative")
				}
				h.last, h.lastC, h.seen = v, s.Value, true
				if math.IsInf(v, 1) {
					h.inf = s.Value
				}
			case strings.HasSuffix(s.Name, "_count"):
				if !math.IsInf(h.last, 1) || s.Value != h.inf {
					return nil, fail("_count %v without or unlike the +Inf bucket %v", s.Value, h.inf)
				}
			}
		}
	}
	for name, typ := range types {
		if typ == "histogram" && (hists[name] == nil || !math.IsInf(hists[name].last, 1)) {
			return nil, fmt.Errorf("histogram %s lacks le=\"+Inf\"", name)
		}
	}
	return out, nil
}

// parseSample parses `name{a="x",b="y"} value` and returns the series
// with a canonical key.
func parseSample(line string) (Series, string, error) {
	s := Series{Labels: map[string]string{}}
	i := strings.IndexAny(line, "{ ")
	if i <= 0 {
		return s, "", fmt.Errorf("no value")
	}
	s.Name = line[:i]
	if !metricName.MatchString(s.Name) {
		return s, "", fmt.Errorf("bad name")
	}
	rest := line[i:]
	var names []string
	if rest[0] == '{' {
		rest = rest[1:]
		for {
			eq := strings.IndexByte(rest, '=')
			if eq <= 0 || !labelName.MatchString(rest[:eq]) || len(rest) < eq+2 || rest[eq+1] != '"' {
				return s, "", fmt.Errorf("bad label")
			}
			name := rest[:eq]
			rest = rest[eq+2:]
			var v strings.Builder
			j := 0
			for ; j < len(rest) && rest[j] != '"'; j++ {
				if rest[j] == '\n' {
					return s, "", fmt.Errorf("raw newline")
				}
				if rest[j] == '\\' {
					j++
					if j == len(rest) {
						return s, "", fmt.Errorf("bad escape")
					}
					switch rest[j] {
					case '\\', '"':
						v.WriteByte(rest[j])
					case 'n':
						v.WriteByte('\n')
					default:
						return s, "", fmt.Errorf("bad escape \\%c", rest[j])
					}
					continue
				}
				v.WriteByte(rest[j])
			}
			if j == len(rest) {
				return s, "", fmt.Errorf("unterminated label value")
			}
			if _, dup := s.Labels[name]; dup {
				return s, "", fmt.Errorf("label %s twice", name)
			}
			s.Labels[name] = v.String()
			names = append(names, name)
			rest = rest[j+1:]
			if strings.HasPrefix(rest, ",") {
				rest = rest[1:]
				continue
			}
			if !strings.HasPrefix(rest, "}") {
				return s, "", fmt.Errorf("bad label list")
			}
			rest = rest[1:]
			break
		}
	}
	if !strings.HasPrefix(rest, " ") || strings.Contains(rest[1:], " ") {
		return s, "", fmt.Errorf("want one space and a value (no timestamp)")
	}
	v, err := parseValue(rest[1:])
	if err != nil {
		return s, "", err
	}
	s.Value = v
	return s, seriesKey(s.Name, s.Labels), nil
}

func parseValue(v string) (float64, error) {
	switch v {
	case "+Inf":
		return math.Inf(1), nil
	case "-Inf":
		return math.Inf(-1), nil
	case "NaN":
		return math.NaN(), nil
	}
	return strconv.ParseFloat(v, 64)
}

// seriesKey is the key ParseExposition returns: name{a="x",b="y"} with labels sorted and unescaped.
func seriesKey(name string, labels map[string]string) string {
	var ks []string
	for k, v := range labels {
		ks = append(ks, k+"="+strconv.Quote(v))
	}
	slices.Sort(ks)
	return name + "{" + strings.Join(ks, ",") + "}"
}
