package maillog

import (
	"regexp"
	"strings"
	"time"
)

var (
	// rspamd's default log_format (doc/faq.md); qid, ip, user and from are
	// optional.
	rspamdTask  = regexp.MustCompile(`rspamd_task_write_log: id: <([^>]*)>,(?: qid: <([^>]*)>,)?(?: ip: ([^,]+),)?(?: user: [^,]+,)?(?: from: <[^>]*>,)? \(\w+: ([TFS]) \(([a-z ]+)\): \[(-?[\d.]+|nan)/(-?[\d.]+)\]`)
	rspamdParse = regexp.MustCompile(`rspamd_message_parse: loaded message; id: <([^>]*)>; queue-id: <([^>]*)>`)

	// SpamAssassin spamd/spamd.raw.
	spamdResult  = regexp.MustCompile(`^result: ([Y.]) +(-?\d+) - (\S*) .*?\bmid=<([^>]*)>`)
	spamdVerdict = regexp.MustCompile(`^(identified spam|clean message) \((-?[\d.]+)/(-?[\d.]+)\)`)

	// amavis: "Blocked SPAM {…}, [relay]:port [originator] <from> -> <to>, …".
	amavisBlocked = regexp.MustCompile(`^\([\w-]+\) (?:Blocked|Discarded) ([A-Z-]+)(?: \([^)]*\))?(?: \{[^}]*\})?, (?:LOCAL )?\[([^\]]*)\](?::\d+)? (?:\[([^\]]*)\] )?`)
)

func (p *Parser) rspamd(h header) Result {
	if m := rspamdTask.FindStringSubmatch(h.msg); m != nil {
		mid, qid, ip, action := m[1], m[2], strings.TrimSpace(m[3]), m[5]
		if action != "reject" {
			return Result{Ignored: "rspamd action " + action + " is not reject"}
		}
		client := clientAddr(ip)
		if client == "" && qid != "" {
			client, _ = p.clients.get(qid, p.now())
		}
		if client == "" && mid != "" {
			if q, ok := p.queueIDs.get(normMID(mid), p.now()); ok {
				client, _ = p.clients.get(q, p.now())
				qid = q
			}
		}
		if client == "" {
			return Result{Ignored: ignNoClient}
		}
		return Result{Events: []Event{{Kind: Spam, Client: client, Source: SourceRspamd,
			Reason: "rspamd reject, score " + m[6] + "/" + m[7], QueueID: qid}}}
	}
	if m := rspamdParse.FindStringSubmatch(h.msg); m != nil {
		if mid := normMID(m[1]); mid != "" && m[2] != "" {
			p.queueIDs.put(mid, m[2], p.now())
			return Result{Ignored: ignJoinMID}
		}
		return Result{Ignored: "empty message id"}
	}
	return Result{Ignored: "rspamd line without a verdict"}
}

func (p *Parser) spamd(h header) Result {
	msg := strings.TrimPrefix(h.msg, "spamd: ")
	if m := spamdResult.FindStringSubmatch(msg); m != nil {
		if m[1] != "Y" {
			return Result{Ignored: "SpamAssassin result: not spam"}
		}
		mid := normMID(m[4])
		qid, ok := p.queueIDs.get(mid, p.now())
		if !ok {
			return Result{Ignored: "message id not seen on a Postfix cleanup line: " + ignNoClient}
		}
		client, ok := p.clients.get(qid, p.now())
		if !ok {
			return Result{Ignored: "queue id not seen on a client= line: " + ignNoClient}
		}
		return Result{Events: []Event{{Kind: Spam, Client: client, Source: SourceSpamd,
			Reason: "SpamAssassin score " + m[2] + " (" + shorten(m[3]) + ")", QueueID: qid}}}
	}
	if m := spamdVerdict.FindStringSubmatch(msg); m != nil {
		if m[1] == "clean message" {
			return Result{Ignored: "SpamAssassin clean message (ham from logs is not acted on)"}
		}
		// The line names neither the message nor the client; the result:
		// line of the same scan does, and carries the verdict.
		return Result{Ignored: "SpamAssassin verdict without message id (acted on at its result: line)"}
	}
	return Result{Ignored: "spamd line without a verdict"}
}

func amavis(h header) Result {
	m := amavisBlocked.FindStringSubmatch(h.msg)
	if m == nil {
		return Result{Ignored: "amavis line without a block verdict"}
	}
	if m[1] != "SPAM" {
		return Result{Ignored: "amavis " + m[1] + " verdict is not spam"}
	}
	client := clientAddr(m[3])
	if client == "" {
		client = clientAddr(m[2])
	}
	if client == "" {
		return Result{Ignored: ignNoClient}
	}
	return Result{Events: []Event{{Kind: Spam, Client: client, Source: SourceAmavis, Reason: "amavis Blocked SPAM"}}}
}

// joinTable maps keys to values for a while, holding at most size entries;
// when full, the oldest entry goes.
type joinTable struct {
	size int
	ttl  time.Duration
	seq  uint64
	m    map[string]joinEntry
	fifo []fifoKey // insertion order, including keys replaced since
}

type joinEntry struct {
	val string
	at  time.Time
	seq uint64
}

type fifoKey struct {
	key string
	seq uint64
}

func newJoinTable(size int, ttl time.Duration) *joinTable {
	return &joinTable{size: size, ttl: ttl, m: make(map[string]joinEntry)}
}

func (j *joinTable) put(k, v string, now time.Time) {
	if k == "" {
		return
	}
	// Drop stale FIFO slots and, while full, the oldest live entries.
	for len(j.fifo) > 0 {
		f := j.fifo[0]
		e, ok := j.m[f.key]
		live := ok && e.seq == f.seq
		if live && len(j.m) < j.size {
			break
		}
		if live {
			delete(j.m, f.key)
		}
		j.fifo = j.fifo[1:]
	}
	j.seq++
	j.m[k] = joinEntry{v, now, j.seq}
	j.fifo = append(j.fifo, fifoKey{k, j.seq})
	if len(j.fifo) > 2*j.size+16 {
		live := make([]fifoKey, 0, len(j.m)) // compact slots of replaced keys
		for _, f := range j.fifo {
			if e, ok := j.m[f.key]; ok && e.seq == f.seq {
				live = append(live, f)
			}
		}
		j.fifo = live
	}
}

func (j *joinTable) get(k string, now time.Time) (string, bool) {
	e, ok := j.m[k]
	if !ok || k == "" {
		return "", false
	}
	if now.Sub(e.at) > j.ttl {
		delete(j.m, k)
		return "", false
	}
	return e.val, true
}

// Len reports the entries held in both join tables (for tests and bounds).
func (p *Parser) joinLen() int { return len(p.clients.m) + len(p.queueIDs.m) }
