package smtp

import (
	"net/netip"
	"strings"
	"unicode/utf8"
)

// Path is the address of a MAIL FROM or RCPT TO command (RFC 5321 §4.1.2).
// A source route is dropped, as §4.1.2 and appendix C allow.
type Path struct {
	// Local is the local-part as sent: a Quoted-string keeps its quotes
	// and backslashes, so String can be replayed to a backend verbatim.
	Local string
	// Domain is as sent (original case); an address literal keeps its
	// brackets, e.g. "[192.0.2.1]". It is empty for RCPT TO:<Postmaster>.
	Domain string
	// Null marks the null reverse-path "<>" (MAIL only).
	Null bool
}

// String returns "local@domain", "Postmaster" for a domain-less postmaster,
// or "" for the null path. "<" + String() + ">" parses back to p.
func (p Path) String() string {
	if p.Null {
		return ""
	}
	if p.Domain == "" {
		return p.Local
	}
	return p.Local + "@" + p.Domain
}

// Param is one ESMTP parameter of MAIL or RCPT (RFC 5321 §4.1.2).
type Param struct {
	Key   string // esmtp-keyword, upper-cased
	Value string // esmtp-value; empty for a keyword-only parameter
}

// Params keeps the parameters in the order sent.
type Params []Param

// Get returns the value of the parameter key (case-insensitive) and whether
// it was present.
func (ps Params) Get(key string) (string, bool) {
	for _, p := range ps {
		if strings.EqualFold(p.Key, key) {
			return p.Value, true
		}
	}
	return "", false
}

// String renders the parameters as " KEY=VALUE KEY2", the form that follows
// the path in a command line, for replay to a backend.
func (ps Params) String() string {
	var b strings.Builder
	for _, p := range ps {
		b.WriteByte(' ')
		b.WriteString(p.Key)
		if p.Value != "" {
			b.WriteByte('=')
			b.WriteString(p.Value)
		}
	}
	return b.String()
}

// ParseMail parses the argument of MAIL (Command.Arg), e.g.
// "FROM:<a@b.example> SIZE=100 BODY=8BITMIME". The null path "<>" is
// allowed. Errors are *ReplyError.
func ParseMail(arg string) (Path, Params, error) {
	return parsePathArg(arg, "FROM:", true)
}

// ParseRcpt parses the argument of RCPT (Command.Arg), e.g. "TO:<a@b.example>".
// "<Postmaster>" without a domain is allowed (§4.1.1.3); "<>" is not.
// Errors are *ReplyError.
func ParseRcpt(arg string) (Path, Params, error) {
	return parsePathArg(arg, "TO:", false)
}

func parsePathArg(arg, keyword string, mail bool) (Path, Params, error) {
	if len(arg) < len(keyword) || !strings.EqualFold(arg[:len(keyword)], keyword) {
		if mail {
			return Path{}, nil, &ReplyError{501, "5.5.4", "Syntax: MAIL FROM:<address>"}
		}
		return Path{}, nil, &ReplyError{501, "5.5.4", "Syntax: RCPT TO:<address>"}
	}
	// §4.1.2 has no space after the colon, but many clients send one and
	// common MTAs accept it.
	s := strings.TrimLeft(arg[len(keyword):], " ")
	p := pathParser{s: s}
	path, err := p.path(mail)
	if err != nil {
		return Path{}, nil, err
	}
	params, err := parseParams(s[p.i:])
	if err != nil {
		return Path{}, nil, err
	}
	return path, params, nil
}

// pathParser scans a Path (§4.1.2) at the start of s.
type pathParser struct {
	s string
	i int
}

// peek returns the next byte, or 0 at the end; NUL is valid nowhere in a path.
func (p *pathParser) peek() byte {
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

func (p *pathParser) path(mail bool) (Path, error) {
	// Bad sender and bad recipient syntax (RFC 3463 §3.2).
	bad := func(text string) error {
		if mail {
			return &ReplyError{501, "5.1.7", "Bad sender address syntax: " + text}
		}
		return &ReplyError{501, "5.1.3", "Bad recipient address syntax: " + text}
	}
	if p.peek() != '<' {
		return Path{}, bad("address must be in angle brackets")
	}
	p.i++
	if p.peek() == '>' {
		p.i++
		if !mail {
			return Path{}, bad("null recipient")
		}
		return Path{Null: true}, nil
	}
	route := false
	if p.peek() == '@' {
		// A-d-l ":" — a source route, parsed and dropped.
		route = true
		for {
			if p.peek() != '@' {
				return Path{}, bad("bad source route")
			}
			p.i++
			if !p.domain(false) {
				return Path{}, bad("bad source route")
			}
			if c := p.peek(); c == ':' {
				p.i++
				break
			} else if c != ',' {
				return Path{}, bad("bad source route")
			}
			p.i++
		}
	}
	ls := p.i
	if !p.localPart() {
		return Path{}, bad("bad local part")
	}
	local := p.s[ls:p.i]
	var domain string
	switch p.peek() {
	case '@':
		p.i++
		ds := p.i
		if !p.domain(true) {
			return Path{}, bad("bad domain")
		}
		domain = p.s[ds:p.i]
	case '>':
		if mail || route || !strings.EqualFold(local, "postmaster") {
			return Path{}, bad("missing domain")
		}
	default:
		return Path{}, bad("bad local part")
	}
	if p.peek() != '>' {
		return Path{}, bad("missing '>'")
	}
	p.i++
	switch {
	case p.i > MaxPath: // §4.5.3.1.10
		return Path{}, bad("path too long")
	case len(local) > MaxLocalPart:
		return Path{}, bad("local part too long")
	case len(domain) > MaxDomain:
		return Path{}, bad("domain too long")
	}
	return Path{Local: local, Domain: domain}, nil
}

// localPart scans Dot-string / Quoted-string (§4.1.2), with UTF-8 allowed
// in atoms (RFC 6531 §3.3). Empty atoms (leading, trailing or doubled
// dots) are accepted as Postfix accepts them: real senders such as
// Japanese mobile carriers use them, and refusing them loses their mail.
func (p *pathParser) localPart() bool {
	if p.peek() != '"' {
		s := p.i
		for c := p.peek(); isAtext(c) || c == '.' || c >= 0x80; c = p.peek() {
			p.i++
		}
		return p.i > s && p.s[s:p.i] != "." && utf8.ValidString(p.s[s:p.i])
	}
	p.i++
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '"':
			p.i++
			return true
		case c == '\\': // quoted-pairSMTP
			if p.i+1 >= len(p.s) || p.s[p.i+1] < 32 || p.s[p.i+1] > 126 {
				return false
			}
			p.i += 2
		case c >= 32 && c <= 126: // qtextSMTP: everything printable but `"` and `\`
			p.i++
		default:
			return false
		}
	}
	return false
}

// domain scans Domain, or with literal also address-literal (§4.1.2, §4.1.3).
func (p *pathParser) domain(literal bool) bool {
	if p.peek() == '[' {
		return literal && p.addressLiteral()
	}
	for {
		s := p.i
		for c := p.peek(); isAlpha(c) || isDigit(c) || c == '-' || c >= 0x80; c = p.peek() {
			p.i++
		}
		// sub-domain = Let-dig [Ldh-str], or a U-label (RFC 6531 §3.3);
		// A-labels are at most 63 octets (RFC 1035 §2.3.4), U-labels may
		// take up to four times that in UTF-8.
		label := p.s[s:p.i]
		if label == "" || label[0] == '-' || label[len(label)-1] == '-' || len(label) > 4*63 ||
			!utf8.ValidString(label) || isASCII(label) && len(label) > 63 {
			return false
		}
		if p.peek() != '.' {
			return true
		}
		p.i++
	}
}

// addressLiteral scans "[IPv4]" or "[IPv6:...]" (§4.1.3). A
// General-address-literal is refused: no standardized tag other than IPv6
// exists.
func (p *pathParser) addressLiteral() bool {
	end := strings.IndexByte(p.s[p.i:], ']')
	if end < 0 {
		return false
	}
	lit := p.s[p.i+1 : p.i+end]
	if len(lit) > 5 && strings.EqualFold(lit[:5], "IPv6:") {
		a, err := netip.ParseAddr(lit[5:])
		if err != nil || !a.Is6() || a.Zone() != "" {
			return false
		}
	} else if !isIPv4Literal(lit) {
		return false
	}
	p.i += end + 1
	return true
}

// isIPv4Literal checks Snum 3("." Snum), Snum being 1*3DIGIT up to 255.
func isIPv4Literal(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 4 {
		return false
	}
	for _, n := range parts {
		if len(n) == 0 || len(n) > 3 {
			return false
		}
		v := 0
		for i := range len(n) {
			if !isDigit(n[i]) {
				return false
			}
			v = v*10 + int(n[i]-'0')
		}
		if v > 255 {
			return false
		}
	}
	return true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// isAtext reports atext (RFC 5322 §3.2.3, used by RFC 5321 §4.1.2).
func isAtext(c byte) bool {
	return isAlpha(c) || isDigit(c) || strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

// parseParams parses the text after the path: empty, or SP-separated
// esmtp-params (§4.1.2). Runs of spaces are tolerated. A repeated keyword is
// refused: front-end and backend might honour different copies.
func parseParams(s string) (Params, error) {
	if s == "" {
		return nil, nil
	}
	if s[0] != ' ' {
		return nil, &ReplyError{501, "5.5.4", "Syntax error after address"}
	}
	var ps Params
	for tok := range strings.SplitSeq(s, " ") {
		if tok == "" {
			continue
		}
		key, val, hasVal := strings.Cut(tok, "=")
		if !isKeyword(key) || hasVal && !isParamValue(val) {
			return nil, &ReplyError{501, "5.5.4", "Bad parameter syntax"}
		}
		if _, dup := ps.Get(key); dup {
			return nil, &ReplyError{501, "5.5.4", "Duplicate parameter " + strings.ToUpper(key)}
		}
		ps = append(ps, Param{Key: strings.ToUpper(key), Value: val})
	}
	return ps, nil
}

// isKeyword checks esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-").
func isKeyword(s string) bool {
	if s == "" || s[0] == '-' {
		return false
	}
	for i := range len(s) {
		if c := s[i]; !isAlpha(c) && !isDigit(c) && c != '-' {
			return false
		}
	}
	return true
}

// isParamValue checks esmtp-value = 1*(%d33-60 / %d62-126).
func isParamValue(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		if c := s[i]; c < 33 || c > 126 || c == '=' {
			return false
		}
	}
	return true
}
