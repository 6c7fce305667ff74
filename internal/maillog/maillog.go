// Package maillog turns lines of the MTA's and the content filters' logs
// into the events greypit acts on: trap candidates (Postfix rejecting an
// unknown local recipient) and spam verdicts (milter and before-queue
// filter rejects, rspamd reject actions, SpamAssassin spam results).
//
// The logs are written by other programs and may hold anything, so the
// parser never fails: every line gives either events or a reason it was
// ignored, which the tests check line by line. Verdict lines that do not
// name the client (SpamAssassin, a before-queue filter) are joined to it
// through the queue id and message id seen on earlier lines, in a bounded
// join table whose entries expire.
package maillog

import (
	"net/netip"
	"regexp"
	"strings"
	"time"
)

// Kind is the kind of an event.
type Kind string

// Event kinds. Their values are the "kind" field of `greypit follow -dry-run`.
const (
	TrapCandidate Kind = "trap_candidate"
	Spam          Kind = "spam"
	Ham           Kind = "ham"
)

// Event is something the log says that greypit acts on.
type Event struct {
	Kind    Kind      `json:"kind"`
	Client  string    `json:"client,omitempty"`  // the SMTP client's address
	Address string    `json:"address,omitempty"` // the mail address (trap candidate: the rejected recipient)
	Source  string    `json:"source"`            // e.g. "follow:postfix-milter"
	Reason  string    `json:"reason,omitempty"`  // the reject text, shortened
	QueueID string    `json:"queue_id,omitempty"`
	Time    time.Time `json:"time,omitzero"` // the line's timestamp
}

// Result is the outcome for one line: events, or why there are none.
type Result struct {
	Events  []Event
	Ignored string // empty when Events is not
}

// MaxLine is the longest line parsed; longer lines are ignored. Postfix
// itself truncates log records at about 2 KB, syslog daemons at 8 KB.
const MaxLine = 16 << 10

// maxReason bounds the reject text kept in an event.
const maxReason = 200

// Parser parses lines of one or more logs. It keeps the join tables, so
// feed it the lines of related logs in order. It is not safe for
// concurrent use.
type Parser struct {
	// Now gives the time for join expiry and the year of BSD syslog
	// timestamps; nil means time.Now.
	Now func() time.Time

	clients  *joinTable // Postfix queue id → client address
	queueIDs *joinTable // message id → Postfix queue id
}

// Join-table bounds: a busy MX sees a few thousand messages an hour, and a
// verdict follows its message within minutes.
const (
	joinSize = 50000
	joinTTL  = time.Hour
)

// NewParser returns a parser with empty join tables.
func NewParser() *Parser {
	return &Parser{clients: newJoinTable(joinSize, joinTTL), queueIDs: newJoinTable(joinSize, joinTTL)}
}

func (p *Parser) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// Ignore reasons shared by several branches.
const (
	ignNoHeader   = "no syslog or rspamd log header"
	ignTooLong    = "line longer than the limit"
	ignProgram    = "program not followed"
	ignNotReject  = "not a reject"
	ignDryRun     = "reject_warning is a dry run, nothing was rejected"
	ignTemporary  = "temporary (4xx) reject, not a verdict"
	ignPolicy     = "policy reject, not an unknown user or a content verdict"
	ignNoClient   = "client address unknown"
	ignJoinClient = "remembered: queue id → client"
	ignJoinMID    = "remembered: message id → queue id"
)

// header is a parsed log line prefix.
type header struct {
	time time.Time
	prog string // "postfix/smtpd", "rspamd", "spamd"
	pid  string
	msg  string
}

var (
	bsdHeader  = regexp.MustCompile(`(?s)^([A-Z][a-z]{2} [ 0-3]?\d \d\d:\d\d:\d\d) +(\S+) +([\w./-]+?)(?:\[(\d+)\])?: (.*)$`)
	isoHeader  = regexp.MustCompile(`(?s)^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)) +(\S+) +([\w./-]+?)(?:\[(\d+)\])?: (.*)$`)
	rspamdFile = regexp.MustCompile(`(?s)^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) #(\d+)\(\w+\) (.*)$`)
	postfixRE  = regexp.MustCompile(`^postfix(?:-[\w.-]+)?(?:/[\w.-]+)*/([\w-]+)$`)
)

func (p *Parser) parseHeader(line string) (header, bool) {
	if m := bsdHeader.FindStringSubmatch(line); m != nil {
		h := header{prog: m[3], pid: m[4], msg: m[5]}
		if t, err := time.ParseInLocation("Jan _2 15:04:05", strings.Join(strings.Fields(m[1]), " "), time.Local); err == nil {
			now := p.now()
			t = t.AddDate(now.Year(), 0, 0)
			if t.After(now.Add(24 * time.Hour)) { // December's lines read in January
				t = t.AddDate(-1, 0, 0)
			}
			h.time = t
		}
		return h, true
	}
	if m := isoHeader.FindStringSubmatch(line); m != nil {
		h := header{prog: m[3], pid: m[4], msg: m[5]}
		if t, err := time.Parse(time.RFC3339Nano, m[1]); err == nil {
			h.time = t
		} else if t, err := time.Parse("2006-01-02T15:04:05.999999999-0700", m[1]); err == nil {
			h.time = t
		}
		return h, true
	}
	if m := rspamdFile.FindStringSubmatch(line); m != nil {
		h := header{prog: "rspamd", pid: m[2], msg: m[3]}
		if t, err := time.ParseInLocation(time.DateTime, m[1], time.Local); err == nil {
			h.time = t
		}
		return h, true
	}
	return header{}, false
}

// Parse parses one line (without its line ending).
func (p *Parser) Parse(line string) Result {
	if len(line) > MaxLine {
		return Result{Ignored: ignTooLong}
	}
	h, ok := p.parseHeader(line)
	if !ok {
		return Result{Ignored: ignNoHeader}
	}
	var r Result
	switch prog := h.prog; {
	case postfixRE.MatchString(prog):
		r = p.postfix(postfixRE.FindStringSubmatch(prog)[1], h)
	case prog == "rspamd":
		r = p.rspamd(h)
	case prog == "spamd" || strings.HasPrefix(h.msg, "spamd: "):
		r = p.spamd(h)
	case prog == "amavis" || prog == "amavisd":
		r = amavis(h)
	default:
		r = Result{Ignored: ignProgram + " (" + prog + ")"}
	}
	for i := range r.Events {
		r.Events[i].Time = h.time
		r.Events[i].Reason = shorten(r.Events[i].Reason)
	}
	return r
}

// clientAddr parses the address in Postfix's "name[addr]" or "[addr]"; it
// returns "" for "unknown" and anything that is not an IP address.
func clientAddr(s string) string {
	s = strings.TrimPrefix(s, "IPv6:")
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return ""
	}
	return a.Unmap().String()
}

func shorten(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > maxReason {
		s = s[:maxReason]
	}
	s = strings.ToValidUTF8(s, "") // also drops a rune cut in two
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// permanent reports whether a reply text starts with a 5xx code, basic
// ("550 5.7.1 ...") or enhanced only ("5.7.1 ...", as cleanup logs it).
func permanent(reply string) (perm, known bool) {
	reply = strings.TrimSpace(reply)
	if reply == "" {
		return false, false
	}
	switch reply[0] {
	case '5':
		return true, true
	case '4':
		return false, true
	}
	return false, false
}
