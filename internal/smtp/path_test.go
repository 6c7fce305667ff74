package smtp

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseMail(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	tests := []struct {
		in     string
		path   Path
		params Params
		code   int    // 0: success
		enh    string // checked when code != 0
	}{
		{"FROM:<a@b.example>", Path{Local: "a", Domain: "b.example"}, nil, 0, ""},
		{"from:<A@B>", Path{Local: "A", Domain: "B"}, nil, 0, ""},
		{"From: <a@b>", Path{Local: "a", Domain: "b"}, nil, 0, ""},
		{"FROM:   <a@b>", Path{Local: "a", Domain: "b"}, nil, 0, ""},
		{"FROM:<>", Path{Null: true}, nil, 0, ""},
		{"FROM:<> BODY=8BITMIME", Path{Null: true}, Params{{"BODY", "8BITMIME"}}, 0, ""},
		{"FROM:<a@b> SIZE=100 BODY=8BITMIME", Path{Local: "a", Domain: "b"},
			Params{{"SIZE", "100"}, {"BODY", "8BITMIME"}}, 0, ""},
		{"FROM:<a@b> smtputf8 size=1", Path{Local: "a", Domain: "b"},
			Params{{"SMTPUTF8", ""}, {"SIZE", "1"}}, 0, ""},
		{"FROM:<a@b>  SIZE=1 ", Path{Local: "a", Domain: "b"}, Params{{"SIZE", "1"}}, 0, ""},
		{"FROM:<a@b> ENVID=a+2Bb", Path{Local: "a", Domain: "b"}, Params{{"ENVID", "a+2Bb"}}, 0, ""},
		{"FROM:<a.b+c_d-e@sub-1.b.example>", Path{Local: "a.b+c_d-e", Domain: "sub-1.b.example"}, nil, 0, ""},
		{"FROM:<@r1.example,@r2.example:u@c.example>", Path{Local: "u", Domain: "c.example"}, nil, 0, ""},
		{"FROM:<@r1.example:u@c.example>", Path{Local: "u", Domain: "c.example"}, nil, 0, ""},
		{`FROM:<"a b"@c>`, Path{Local: `"a b"`, Domain: "c"}, nil, 0, ""},
		{`FROM:<"a\"b\\>"@c>`, Path{Local: `"a\"b\\>"`, Domain: "c"}, nil, 0, ""},
		{`FROM:<""@c>`, Path{Local: `""`, Domain: "c"}, nil, 0, ""},
		{"FROM:<a@[192.0.2.1]>", Path{Local: "a", Domain: "[192.0.2.1]"}, nil, 0, ""},
		{"FROM:<a@[IPv6:2001:db8::1]>", Path{Local: "a", Domain: "[IPv6:2001:db8::1]"}, nil, 0, ""},
		{"FROM:<a@[ipv6:::ffff:192.0.2.1]>", Path{Local: "a", Domain: "[ipv6:::ffff:192.0.2.1]"}, nil, 0, ""},
		// Liberal like Postfix: irregular dots occur in real senders.
		{"FROM:<.a@b>", Path{Local: ".a", Domain: "b"}, nil, 0, ""},
		{"FROM:<foo.@docomo.ne.jp>", Path{Local: "foo.", Domain: "docomo.ne.jp"}, nil, 0, ""},
		{"FROM:<a..b@c>", Path{Local: "a..b", Domain: "c"}, nil, 0, ""},
		// SMTPUTF8 (RFC 6531 §3.3): UTF-8 local parts and U-labels.
		{"FROM:<h\u00e9@b> SMTPUTF8", Path{Local: "h\u00e9", Domain: "b"}, Params{{"SMTPUTF8", ""}}, 0, ""},
		{"FROM:<a@b\u00fccher.example>", Path{Local: "a", Domain: "b\u00fccher.example"}, nil, 0, ""},
		{"FROM:<" + long(64) + "@b>", Path{Local: long(64), Domain: "b"}, nil, 0, ""},
		{"FROM:<a@" + long(63) + ".b>", Path{Local: "a", Domain: long(63) + ".b"}, nil, 0, ""},

		{"", Path{}, nil, 501, "5.5.4"},
		{"FROM", Path{}, nil, 501, "5.5.4"},
		{"TO:<a@b>", Path{}, nil, 501, "5.5.4"},
		{"FROM :<a@b>", Path{}, nil, 501, "5.5.4"},
		{"FROM:a@b", Path{}, nil, 501, "5.1.7"},
		{"FROM:<a@b", Path{}, nil, 501, "5.1.7"},
		{"FROM:<a@b>>", Path{}, nil, 501, "5.5.4"},
		{"FROM:<a@b>SIZE=1", Path{}, nil, 501, "5.5.4"},
		{"FROM:<a>", Path{}, nil, 501, "5.1.7"},
		{"FROM:<Postmaster>", Path{}, nil, 501, "5.1.7"},
		{"FROM:<@b>", Path{}, nil, 501, "5.1.7"},
		{"FROM:<a@>", Path{}, nil, 501, "5.1.7"},
		{"FROM:<.@b>", Path{}, nil, 501, "5.1.7"},
		{"FROM:<a@b\xff>", Path{}, nil, 501, "5.1.7"},
		{"FROM:<a b@c>", Path{}, nil, 501, "5.1.7"},
		{"FROM:<a@b.>", Path{}, nil, 501, "5.1.7"},
		{"FROM:<a@-b>", Path{}, nil, 501, "5.1.7"},
		{"FROM:<a@b->", Path{}, nil, 501, "5.1.7"},
		{"FROM:<a@b_c>", Path{}, nil, 501, "5.1.7"},
		{"FROM:<a@b..c>", Path{}, nil, 501, "5.1.7"},
		{"FROM:<a@" + long(64) + ".b>", Path{}, nil, 501, "5.1.7"},
		{"FROM:<a@[192.0.2.256]>", Path{}, nil, 501, "5.1.7"},
		{"FROM:<a@[192.0.2]>", Path{}, nil, 501, "5.1.7"},
		{"FROM:<a@[IPv6:192.0.2.1]>", Path{}, nil, 501, "5.1.7"},
		{"FROM:<a@[IPv6:fe80::1%eth0]>", Path{}, nil, 501, "5.1.7"},
		{"FROM:<a@[x-tag:foo]>", Path{}, nil, 501, "5.1.7"},
		{"FROM:<a@[192.0.2.1>", Path{}, nil, 501, "5.1.7"},
		{`FROM:<"a@b>`, Path{}, nil, 501, "5.1.7"},
		{"FROM:<\"a\x01\"@b>", Path{}, nil, 501, "5.1.7"},
		{"FROM:<@r.example,u@c>", Path{}, nil, 501, "5.1.7"},
		{"FROM:<@[192.0.2.1]:u@c>", Path{}, nil, 501, "5.1.7"},
		{"FROM:<@r.example:>", Path{}, nil, 501, "5.1.7"},
		{"FROM:<a\x00@b>", Path{}, nil, 501, "5.1.7"},
		{"FROM:<h\xe9@b>", Path{}, nil, 501, "5.1.7"}, // Latin-1, not UTF-8
		{"FROM:<" + long(65) + "@b>", Path{}, nil, 501, "5.1.7"},
		{"FROM:<a@" + strings.Repeat("abcdefg.", 32) + "com>", Path{}, nil, 501, "5.1.7"},
		{"FROM:<a@b> SIZE=", Path{}, nil, 501, "5.5.4"},
		{"FROM:<a@b> =1", Path{}, nil, 501, "5.5.4"},
		{"FROM:<a@b> -X=1", Path{}, nil, 501, "5.5.4"},
		{"FROM:<a@b> A=B=C", Path{}, nil, 501, "5.5.4"},
		{"FROM:<a@b> A_B=1", Path{}, nil, 501, "5.5.4"},
		{"FROM:<a@b> A=\x01", Path{}, nil, 501, "5.5.4"},
		{"FROM:<a@b> SIZE=1 size=2", Path{}, nil, 501, "5.5.4"},
		{"FROM:<a@b>\tSIZE=1", Path{}, nil, 501, "5.5.4"},
	}
	for _, tt := range tests {
		checkPathResult(t, "ParseMail", tt.in, tt.path, tt.params, tt.code, tt.enh)(ParseMail(tt.in))
	}
}

func TestParseRcpt(t *testing.T) {
	tests := []struct {
		in     string
		path   Path
		params Params
		code   int
		enh    string
	}{
		{"TO:<a@b>", Path{Local: "a", Domain: "b"}, nil, 0, ""},
		{"to: <a@b> NOTIFY=SUCCESS,FAILURE", Path{Local: "a", Domain: "b"}, Params{{"NOTIFY", "SUCCESS,FAILURE"}}, 0, ""},
		{"TO:<Postmaster>", Path{Local: "Postmaster"}, nil, 0, ""},
		{"TO:<postmaster>", Path{Local: "postmaster"}, nil, 0, ""},
		{"TO:<postmaster@b.example>", Path{Local: "postmaster", Domain: "b.example"}, nil, 0, ""},
		{"TO:<@r.example:u@c>", Path{Local: "u", Domain: "c"}, nil, 0, ""},
		{"TO:<>", Path{}, nil, 501, "5.1.3"},
		{"TO:<user>", Path{}, nil, 501, "5.1.3"},
		{`TO:<"Postmaster">`, Path{}, nil, 501, "5.1.3"},
		{"TO:<@r.example:Postmaster>", Path{}, nil, 501, "5.1.3"},
		{"FROM:<a@b>", Path{}, nil, 501, "5.5.4"},
		{"TO:<a@b", Path{}, nil, 501, "5.1.3"},
	}
	for _, tt := range tests {
		checkPathResult(t, "ParseRcpt", tt.in, tt.path, tt.params, tt.code, tt.enh)(ParseRcpt(tt.in))
	}
}

func checkPathResult(t *testing.T, fn, in string, path Path, params Params, code int, enh string) func(Path, Params, error) {
	return func(p Path, ps Params, err error) {
		t.Helper()
		if code != 0 {
			var re *ReplyError
			if !errors.As(err, &re) || re.Code != code || re.Enhanced != enh {
				t.Errorf("%s(%q) = %+v, %v, %v; want error %d %s", fn, in, p, ps, err, code, enh)
			}
			return
		}
		if err != nil || p != path || !reflect.DeepEqual(ps, params) {
			t.Errorf("%s(%q) = %+v, %#v, %v; want %+v, %#v", fn, in, p, ps, err, path, params)
		}
	}
}

func TestPathLimits(t *testing.T) {
	// The path limit counts the brackets (§4.5.3.1.3): build a path of
	// exactly MaxPath octets from labels of 63, then one octet more.
	dom := strings.Repeat("d", 63) + "." + strings.Repeat("d", 63) + "." + strings.Repeat("d", 63)
	local := strings.Repeat("l", MaxPath-2-1-len(dom)-len(".dd"))
	ok := "FROM:<" + local + "@" + dom + ".dd>"
	if n := len(ok) - len("FROM:"); n != MaxPath {
		t.Fatalf("test path is %d octets", n)
	}
	if _, _, err := ParseMail(ok); err != nil {
		t.Errorf("path of %d octets: %v", MaxPath, err)
	}
	if _, _, err := ParseMail("FROM:<" + local + "@" + dom + ".ddd>"); err == nil {
		t.Errorf("path of %d octets accepted", MaxPath+1)
	}
	// A source route counts towards the limit even though it is dropped.
	if _, _, err := ParseMail("FROM:<@r.example:" + local + "@" + dom + ".dd>"); err == nil {
		t.Errorf("routed path over limit accepted")
	}
}

func TestPathString(t *testing.T) {
	tests := []struct {
		p    Path
		want string
	}{
		{Path{Null: true}, ""},
		{Path{Local: "a", Domain: "b"}, "a@b"},
		{Path{Local: "Postmaster"}, "Postmaster"},
		{Path{Local: `"a b"`, Domain: "[192.0.2.1]"}, `"a b"@[192.0.2.1]`},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.p, got, tt.want)
		}
	}
}

func TestParams(t *testing.T) {
	_, ps, err := ParseMail("FROM:<a@b> size=100 Body=8BITMIME smtputf8")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ps.String(), " SIZE=100 BODY=8BITMIME SMTPUTF8"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	for _, tt := range []struct {
		key, val string
		ok       bool
	}{
		{"SIZE", "100", true}, {"size", "100", true}, {"BODY", "8BITMIME", true},
		{"SMTPUTF8", "", true}, {"RET", "", false},
	} {
		if v, ok := ps.Get(tt.key); v != tt.val || ok != tt.ok {
			t.Errorf("Get(%q) = %q, %v; want %q, %v", tt.key, v, ok, tt.val, tt.ok)
		}
	}
	if got := Params(nil).String(); got != "" {
		t.Errorf("nil Params String() = %q", got)
	}
}
