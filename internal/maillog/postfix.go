package maillog

import (
	"regexp"
	"strings"
)

// Sources recorded with the events.
const (
	SourceUnknownUser = "follow:postfix-unknown-user"
	SourceMilter      = "follow:postfix-milter"
	SourceProxy       = "follow:postfix-proxy"
	SourceChecks      = "follow:postfix-checks"
	SourceRspamd      = "follow:rspamd"
	SourceSpamd       = "follow:spamassassin"
	SourceAmavis      = "follow:amavis"
)

var (
	// smtpd_check.c log_whatsup(): "%s: %s: %s from %s: %s;" queue id or
	// NOQUEUE, action, state, name[addr], reply text and key=value tail.
	// postscreen writes "[addr]:port" with an empty name.
	whatsup = regexp.MustCompile(`(?s)^(NOQUEUE|[0-9A-Za-z]{5,20}): ([a-z_-]+): ([A-Z][A-Z-]*) from ([^\[\s]*)\[([^\]]*)\](?::\d+)?: (.*)$`)
	// smtpd_check.c: "<%s>: Recipient address rejected: User unknown%s"
	// with " in <class> table" while show_user_unknown_table_name = yes.
	userUnknown = regexp.MustCompile(`^(?:\d{3} )?(?:\d\.\d{1,3}\.\d{1,3} )?<([^>]*)>: Recipient address rejected: User unknown( in [a-z ]+ table)?(?:;|$)`)
	clientLine  = regexp.MustCompile(`^([0-9A-Za-z]{5,20}): client=([^\[\s]*)\[([^\]]*)\]`)
	messageID   = regexp.MustCompile(`^([0-9A-Za-z]{5,20}): message-id=(.*)$`)
	proxyReject = regexp.MustCompile(`^(?:([0-9A-Za-z]{5,20}): )?proxy-reject: ([A-Z][A-Z-]*): (.*)$`)
	// cleanup.c cleanup_act_log(): "%s: %s: %s %.200s from %s;" queue id,
	// action, class (header, body), the text; then the envelope and
	// ": reply" when the action has one (header_checks, body_checks).
	checksReject = regexp.MustCompile(`(?s)^([0-9A-Za-z]{5,20}): reject: (header|body|mime-header|nested-header) .* from ([^\[\s]*)\[([^\]]*)\];(?: from=<[^>]*>)?(?: to=<[^>]*>)?(?: proto=\S+)?(?: helo=<[^>]*>)?(?:: (.*))?$`)
	replyTailKey = regexp.MustCompile(`;? (?:from|to)=<`)
)

// replyText cuts the key=value tail (" from=<…> to=<…> proto=…") off a
// whatsup reply. The reply itself may contain ";", so the tail is found
// from its first key.
func replyText(s string) string {
	if loc := replyTailKey.FindStringIndex(s); loc != nil {
		s = s[:loc[0]]
	}
	return shorten(s)
}

func (p *Parser) postfix(daemon string, h header) Result {
	msg := h.msg
	switch daemon {
	case "smtpd", "cleanup":
	case "postscreen":
		return Result{Ignored: "postscreen event (greypit screens clients itself)"}
	default:
		return Result{Ignored: "Postfix daemon not followed (" + daemon + ")"}
	}
	if m := clientLine.FindStringSubmatch(msg); m != nil {
		if c := clientAddr(m[3]); c != "" {
			p.clients.put(m[1], c, p.now())
			return Result{Ignored: ignJoinClient}
		}
		return Result{Ignored: ignNoClient}
	}
	if m := messageID.FindStringSubmatch(msg); m != nil {
		mid := normMID(m[2])
		if mid == "" {
			return Result{Ignored: "empty message id"}
		}
		p.queueIDs.put(mid, m[1], p.now())
		return Result{Ignored: ignJoinMID}
	}
	if m := proxyReject.FindStringSubmatch(msg); m != nil {
		qid, reply := m[1], replyText(m[3])
		perm, known := permanent(reply)
		switch {
		case !known:
			return Result{Ignored: "reject without a reply code"}
		case !perm:
			return Result{Ignored: ignTemporary}
		case qid == "":
			return Result{Ignored: "proxy-reject without a queue id: client unknown"}
		}
		c, ok := p.clients.get(qid, p.now())
		if !ok {
			return Result{Ignored: "queue id not seen on a client= line: " + ignNoClient}
		}
		return Result{Events: []Event{{Kind: Spam, Client: c, Source: SourceProxy, Reason: reply, QueueID: qid}}}
	}
	if m := checksReject.FindStringSubmatch(msg); m != nil {
		// The operator's header_checks or body_checks rejected the content.
		reply := shorten(m[5])
		if perm, known := permanent(reply); known && !perm {
			return Result{Ignored: ignTemporary}
		}
		client := clientAddr(m[4])
		if client == "" {
			return Result{Ignored: ignNoClient}
		}
		return Result{Events: []Event{{Kind: Spam, Client: client, Source: SourceChecks,
			Reason: m[2] + "_checks reject: " + reply, QueueID: m[1]}}}
	}
	m := whatsup.FindStringSubmatch(msg)
	if m == nil {
		return Result{Ignored: ignNotReject}
	}
	qid, action, stage, client, reply := m[1], m[2], m[3], clientAddr(m[5]), m[6]
	if qid == "NOQUEUE" {
		qid = ""
	}
	if qid != "" && client != "" {
		p.clients.put(qid, client, p.now())
	}
	switch action {
	case "reject":
		u := userUnknown.FindStringSubmatch(reply)
		switch {
		case u == nil:
			return Result{Ignored: ignPolicy}
		case stage == "VRFY":
			return Result{Ignored: "VRFY probe, not a delivery attempt"}
		case stage != "RCPT":
			return Result{Ignored: "user unknown outside RCPT (" + stage + ")"}
		case client == "":
			return Result{Ignored: ignNoClient}
		}
		addr := strings.ToLower(u[1])
		at := strings.LastIndexByte(addr, '@')
		if at <= 0 || at == len(addr)-1 {
			return Result{Ignored: "unqualified recipient"}
		}
		return Result{Events: []Event{{Kind: TrapCandidate, Client: client, Address: addr,
			Source: SourceUnknownUser, Reason: "User unknown" + u[2], QueueID: qid}}}
	case "reject_warning":
		return Result{Ignored: ignDryRun}
	case "milter-reject", "milter-discard":
		text := replyText(reply)
		perm, known := permanent(text)
		switch {
		case action == "milter-discard":
		case !known:
			return Result{Ignored: "reject without a reply code"}
		case !perm:
			return Result{Ignored: ignTemporary}
		}
		if client == "" {
			return Result{Ignored: ignNoClient}
		}
		return Result{Events: []Event{{Kind: Spam, Client: client, Source: SourceMilter,
			Reason: shorten(action + " " + stage + ": " + text), QueueID: qid}}}
	}
	return Result{Ignored: "action " + action + " is not a reject"}
}

// normMID returns the message id without angle brackets and blanks, or
// "" when there is none.
func normMID(s string) string {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "<")
	if i := strings.IndexByte(s, '>'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 998 || strings.ContainsAny(s, " \t") {
		return ""
	}
	return s
}
