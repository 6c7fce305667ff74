package tarpit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"os"
	"sync"
	"time"
)

// Sampler keeps a bounded record of what black hosts send: envelope,
// headers, a hash and the size of the body, one JSON line per message, in
// a file rotated at a size cap (one old file kept). A nil *Sampler keeps
// nothing; its methods are no-ops.
type Sampler struct {
	path    string
	maxSize int64

	mu   sync.Mutex
	f    *os.File
	size int64
}

// Sample bounds: enough to recognise a campaign, never a mailbox.
const (
	maxSampleRcpts  = 20
	maxSampleHeader = 8 << 10
)

// sample is the per-session state; it exists only while sampling is on.
type sample struct {
	started bool
	rcpts   []string
	header  []byte
	inBody  bool
	cut     bool // the header did not fit in maxSampleHeader
	body    hash.Hash
	size    int64
}

// NewSampler opens (appends to) path.
func NewSampler(path string, maxSize int64) (*Sampler, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("tarpit.sample_file: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("tarpit.sample_file: %w", err)
	}
	return &Sampler{path: path, maxSize: maxSize, f: f, size: fi.Size()}, nil
}

// Close closes the file.
func (sp *Sampler) Close() error {
	if sp == nil {
		return nil
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return sp.f.Close()
}

func (sp *Sampler) begin(s *sess) {
	if sp == nil {
		return
	}
	s.sample = &sample{started: true, body: sha256.New()}
}

func (sp *Sampler) rcpt(s *sess, r string) {
	if sp == nil || s.sample == nil || len(s.sample.rcpts) >= maxSampleRcpts {
		return
	}
	s.sample.rcpts = append(s.sample.rcpts, r)
}

// data keeps the header (bounded) and hashes the body.
func (sp *Sampler) data(s *sess, b []byte) {
	if sp == nil || s.sample == nil {
		return
	}
	sm := s.sample
	sm.size += int64(len(b))
	if !sm.inBody {
		take := b[:min(len(b), max(maxSampleHeader-len(sm.header), 0))]
		old := len(sm.header)
		from := max(old-3, 0)
		sm.header = append(sm.header, take...)
		if i := bytes.Index(sm.header[from:], []byte("\r\n\r\n")); i >= 0 {
			end := from + i + 4
			sm.header = sm.header[:end]
			sm.inBody = true
			sm.body.Write(b[end-old:])
			return
		}
		if len(sm.header) >= maxSampleHeader {
			sm.inBody, sm.cut = true, true
			sm.body.Write(b[len(take):])
		}
		return
	}
	sm.body.Write(b)
}

type sampleLine struct {
	Time      time.Time `json:"time"`
	Host      string    `json:"host"`
	Client    string    `json:"client"`
	Reason    string    `json:"reason,omitempty"`
	Helo      string    `json:"helo,omitempty"`
	From      string    `json:"from"`
	Rcpts     []string  `json:"rcpts"`
	Header    string    `json:"header"`
	BodySHA   string    `json:"body_sha256"`
	Size      int64     `json:"size"`
	Truncated bool      `json:"truncated,omitempty"`
}

// end writes the message's sample and resets for the next transaction.
func (sp *Sampler) end(s *sess, host string) {
	if sp == nil || s.sample == nil {
		return
	}
	sp.write(s, host, true)
	s.sample = nil
}

// write writes s's sample; complete tells whether its message ended, or
// the session ended within the transaction.
func (sp *Sampler) write(s *sess, host string, complete bool) {
	sm := s.sample
	line, _ := json.Marshal(sampleLine{
		Time: time.Now().UTC(), Host: host, Client: s.info.Client.Addr().String(), Reason: s.info.Reason,
		Helo: s.helo, From: s.from, Rcpts: sm.rcpts, Header: string(sm.header),
		BodySHA: hex.EncodeToString(sm.body.Sum(nil)), Size: sm.size, Truncated: sm.cut || !complete && sm.size > 0,
	})
	line = append(line, '\n')
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.size+int64(len(line)) > sp.maxSize {
		sp.rotate()
	}
	n, _ := sp.f.Write(line)
	sp.size += int64(n)
}

// rotate keeps one old file, path.1.
func (sp *Sampler) rotate() {
	sp.f.Close()
	os.Rename(sp.path, sp.path+".1")
	f, err := os.OpenFile(sp.path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		// Keep writing nowhere rather than fail the tarpit.
		f, _ = os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	}
	sp.f, sp.size = f, 0
}
