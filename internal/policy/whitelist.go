package policy

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"regexp"
	"strings"
)

// Whitelist holds postgrey's whitelist_clients and whitelist_recipients
// files, read with postgrey 1.37's rules (read_clients_whitelists and
// read_recipients_whitelists in /usr/sbin/postgrey):
//
// clients, matched against Postfix's client_name and client_address:
//   - /regex/: the regex, case-insensitive, against the client name;
//   - a.b.c.d or a.b.c.d/n: that address or network;
//   - a.b.c: a.b.c.0/24; a.b: a.b.0.0/24 (postgrey's comment says /16, its
//     code says 24);
//   - anything with two colons: an IPv6 address or network;
//   - any other word: that host name or any name under it.
//
// recipients, matched against the recipient address:
//   - /regex/: the regex, case-insensitive;
//   - user@domain: that address, also with a +extension;
//   - user@: that local part at any domain, also with a +extension;
//   - domain: addresses at that domain or under it.
//
// Everything after '#' is a comment. Lines that fit no rule are reported
// as warnings and skipped, as postgrey does.
type Whitelist struct {
	hosts   map[string]Source // client name suffixes
	nets    []netPrefix
	clientR *regexp.Regexp // every client regex in one alternation: one pass
	clientS []regex        // the same one by one, to name the match

	rcptExact  map[string]Source // user@domain
	rcptLocal  map[string]Source // user@
	rcptDomain map[string]Source // domain suffixes
	rcptR      *regexp.Regexp
	rcptS      []regex

	Warnings []string
}

// Source is the file line that made an entry.
type Source struct {
	File string
	Line int
	Text string
}

func (s Source) String() string { return fmt.Sprintf("%s:%d (%s)", s.File, s.Line, s.Text) }

type netPrefix struct {
	p   netip.Prefix
	src Source
}

type regex struct {
	re  *regexp.Regexp
	src Source
}

// LoadWhitelist reads the client and recipient files. Each file F is
// followed by F.local when that exists (postgrey reads the .local files of
// its defaults); a missing F is an error, a missing F.local is not.
func LoadWhitelist(clientFiles, rcptFiles []string) (*Whitelist, error) {
	w := &Whitelist{
		hosts:      map[string]Source{},
		rcptExact:  map[string]Source{},
		rcptLocal:  map[string]Source{},
		rcptDomain: map[string]Source{},
	}
	var errs []error
	for _, f := range clientFiles {
		errs = append(errs, w.readFiles(f, w.addClient))
	}
	for _, f := range rcptFiles {
		errs = append(errs, w.readFiles(f, w.addRecipient))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var err error
	if w.clientR, err = union(w.clientS); err != nil {
		return nil, err
	}
	if w.rcptR, err = union(w.rcptS); err != nil {
		return nil, err
	}
	return w, nil
}

func union(rs []regex) (*regexp.Regexp, error) {
	if len(rs) == 0 {
		return nil, nil
	}
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = "(?:" + r.re.String() + ")"
	}
	return regexp.Compile(strings.Join(parts, "|"))
}

func (w *Whitelist) readFiles(f string, add func(Source)) error {
	if err := w.readFile(f, add); err != nil {
		return err
	}
	err := w.readFile(f+".local", add)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

func (w *Whitelist) readFile(f string, add func(Source)) error {
	fh, err := os.Open(f)
	if err != nil {
		return fmt.Errorf("policy: whitelist: %w", err)
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		add(Source{File: f, Line: n, Text: line})
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("policy: whitelist %s: %w", f, err)
	}
	return nil
}

var (
	ipv4Full    = regexp.MustCompile(`^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?:/\d{1,2})?$`)
	ipv4Partial = regexp.MustCompile(`^\d{1,3}\.\d{1,3}(?:\.\d{1,3})?$`)
	ipv6Like    = regexp.MustCompile(`^.*:.*:.*(?:/\d{1,3})?$`)
	regexLine   = regexp.MustCompile(`^/(\S+)/$`)
	noSpace     = regexp.MustCompile(`^\S+$`)
)

func (w *Whitelist) warn(s Source, what string) {
	w.Warnings = append(w.Warnings, fmt.Sprintf("%s:%d: %s: %q", s.File, s.Line, what, s.Text))
}

func (w *Whitelist) addRegex(dst *[]regex, s Source, body string) {
	re, err := regexp.Compile("(?i)" + body)
	if err != nil {
		w.warn(s, "regex not supported ("+err.Error()+")")
		return
	}
	*dst = append(*dst, regex{re, s})
}

func (w *Whitelist) addClient(s Source) {
	t := s.Text
	switch {
	case regexLine.MatchString(t):
		w.addRegex(&w.clientS, s, t[1:len(t)-1])
	case ipv4Full.MatchString(t), ipv6Like.MatchString(t):
		p, err := parseNet(t)
		if err != nil {
			w.warn(s, "bad address") // postgrey drops what NetAddr::IP refuses
			return
		}
		w.nets = append(w.nets, netPrefix{p, s})
	case ipv4Partial.MatchString(t):
		octets := strings.Split(t, ".")
		for len(octets) < 4 {
			octets = append(octets, "0")
		}
		p, err := netip.ParsePrefix(strings.Join(octets, ".") + "/24")
		if err != nil {
			w.warn(s, "bad address")
			return
		}
		w.nets = append(w.nets, netPrefix{p.Masked(), s})
	case noSpace.MatchString(t):
		w.hosts[strings.ToLower(t)] = s
	default:
		w.warn(s, "doesn't look like a hostname")
	}
}

func parseNet(t string) (netip.Prefix, error) {
	if strings.Contains(t, "/") {
		p, err := netip.ParsePrefix(t)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(t)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func (w *Whitelist) addRecipient(s Source) {
	t := s.Text
	user, domain, hasAt := strings.Cut(t, "@")
	switch {
	case regexLine.MatchString(t):
		w.addRegex(&w.rcptS, s, t[1:len(t)-1])
	case !noSpace.MatchString(t):
		w.warn(s, "doesn't look like an address")
	case hasAt && domain != "":
		w.rcptExact[strings.ToLower(user+"@"+domain)] = s
	case hasAt:
		w.rcptLocal[strings.ToLower(user)] = s
	default:
		w.rcptDomain[strings.ToLower(user)] = s
	}
}

// Len is the number of entries loaded.
func (w *Whitelist) Len() int {
	if w == nil {
		return 0
	}
	return len(w.hosts) + len(w.nets) + len(w.clientS) + len(w.rcptExact) + len(w.rcptLocal) + len(w.rcptDomain) + len(w.rcptS)
}

// MatchClient reports the entry that whitelists a client by name or
// address, as postgrey checks them: names first, then addresses.
func (w *Whitelist) MatchClient(name string, addr netip.Addr) (Source, bool) {
	if w == nil {
		return Source{}, false
	}
	lname := strings.ToLower(name)
	// postgrey's (?:^|\.)NAME$: the name itself or any name under it.
	for s := lname; s != ""; {
		if src, ok := w.hosts[s]; ok {
			return src, true
		}
		i := strings.IndexByte(s, '.')
		if i < 0 {
			break
		}
		s = s[i+1:]
	}
	if w.clientR != nil && w.clientR.MatchString(name) {
		for _, r := range w.clientS {
			if r.re.MatchString(name) {
				return r.src, true
			}
		}
	}
	addr = addr.Unmap()
	for _, n := range w.nets {
		if n.p.Contains(addr) {
			return n.src, true
		}
	}
	return Source{}, false
}

// MatchRecipient reports the entry that whitelists a recipient.
func (w *Whitelist) MatchRecipient(rcpt string) (Source, bool) {
	if w == nil {
		return Source{}, false
	}
	l := strings.ToLower(rcpt)
	if at := strings.IndexByte(l, '@'); at >= 0 {
		user, domain := l[:at], l[at+1:]
		base := user
		// postgrey's (?:\+[^@]+)? after the user: an extension matches too.
		if i := strings.IndexByte(user, '+'); i >= 0 && i < len(user)-1 {
			base = user[:i]
		}
		for _, u := range []string{user, base} {
			if src, ok := w.rcptExact[u+"@"+domain]; ok {
				return src, true
			}
			if src, ok := w.rcptLocal[u]; ok {
				return src, true
			}
		}
	}
	// (?:\@|\.)DOMAIN$: the part after any '@' or '.'.
	for i := 0; i < len(l); i++ {
		if l[i] == '@' || l[i] == '.' {
			if src, ok := w.rcptDomain[l[i+1:]]; ok {
				return src, true
			}
		}
	}
	if w.rcptR != nil && w.rcptR.MatchString(rcpt) {
		for _, r := range w.rcptS {
			if r.re.MatchString(rcpt) {
				return r.src, true
			}
		}
	}
	return Source{}, false
}
