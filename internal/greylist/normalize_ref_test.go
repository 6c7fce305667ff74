package greylist

import (
	"regexp"
	"strings"
	"testing"
)

// refNormalize is the regexp version NormalizeSender replaced; the two
// must agree except on postgrey's swapped BATV form.
var (
	refBATV   = regexp.MustCompile(`^(?:prvs|msprvs\d*|btv\d*)=[^=@]+=`)
	refSRS0   = regexp.MustCompile(`^srs0[=+-][^=]+=[^=]+=([^=]+)=(.+)@[^@]+$`)
	refDigits = regexp.MustCompile(`\d+`)
	refToken  = regexp.MustCompile(`[0-9a-z]{16,}`)
)

func refNormalize(s string) string {
	s = strings.ToLower(s)
	if s == "" {
		return ""
	}
	if m := refSRS0.FindStringSubmatch(s); m != nil {
		s = m[2] + "@" + m[1]
	}
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return s
	}
	local, domain := s[:at], s[at:]
	local = refBATV.ReplaceAllString(local, "")
	if i := strings.IndexByte(local, '+'); i > 0 {
		local = local[:i]
	}
	local = refToken.ReplaceAllStringFunc(local, func(t string) string {
		if strings.ContainsAny(t, "0123456789") {
			return "#"
		}
		return t
	})
	return refDigits.ReplaceAllString(local, "#") + domain
}

func swappedBATV(s string) bool {
	l := strings.ToLower(s)
	if at := strings.LastIndexByte(l, '@'); at >= 0 {
		l = l[:at]
	}
	p := strings.Split(l, "=")
	return len(p) == 3 && p[0] == "prvs" && looksLikeTag(p[2]) && !looksLikeTag(p[1])
}

func FuzzNormalizeSender(f *testing.F) {
	for _, s := range []string{"", "Alice+x@Example.com", "prvs=1234567890=bob@example.org", "prvs=bob=0123456789@example.org",
		"SRS0=h=tt=orig.example=alice@fwd.example", "srs0-a=b=c=d@e@f", "bounce-a1b2c3d4e5f6a7b8c9@x", "msprvs1=x=y@z", "btv=x@y", "a1é2@x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, want := NormalizeSender(s), refNormalize(s)
		if got != want && !swappedBATV(s) {
			t.Fatalf("NormalizeSender(%q) = %q, regexp version %q", s, got, want)
		}
	})
}

func TestSwappedBATV(t *testing.T) {
	// postgrey: prvs=loc-core=tag-val; the tag changes per message.
	a, b := NormalizeSender("prvs=bob=0123456789@example.org"), NormalizeSender("prvs=bob=9876543210@example.org")
	if a != "bob@example.org" || a != b {
		t.Errorf("swapped BATV: %q, %q", a, b)
	}
}
