package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Client mode: one process of the load. It opens its share of the
// connections from its own 127.0.0.x source address, keeps them open and
// reading, and reports to the parent as JSON lines on stdout. The parent
// drives it with lines on stdin: "start" opens the measurement window,
// "stop" closes it, makes the client report and close everything; "snap"
// asks for a report of the counts now.

// ClientReport is one message from a client to the parent.
type ClientReport struct {
	Type   string `json:"type"` // progress, connected, snap or result
	Client int    `json:"client"`
	Src    string `json:"src"`
	Wanted int    `json:"wanted"`

	Connected   int   `json:"connected"`    // dials that succeeded
	Failed      int   `json:"failed"`       // dials given up after retries
	Retries     int   `json:"retries"`      // failed dial attempts that were retried
	Open        int   `json:"open"`         // connections open now
	ClosedEarly int   `json:"closed_early"` // connections the target closed (EOF, reset, ...) before "stop"
	ClosedInWin int   `json:"closed_in_window"`
	BytesTotal  int64 `json:"bytes_total"`

	// Measurement window only.
	WindowNS    int64 `json:"window_ns,omitempty"`
	BytesWindow int64 `json:"bytes_window,omitempty"`
	// Drip events in the window: bytes (unit "byte") or lines (unit "line").
	EventsWindow int64 `json:"events_window,omitempty"`
	// Interval between two drip events minus the stutter.
	Lateness *Dist `json:"lateness,omitempty"`
	// SMTP talk only: time from sending a command to the first byte of
	// its reply. These gaps are not in Lateness.
	ReplyDelay   *Dist `json:"reply_delay,omitempty"`
	CommandsSent int64 `json:"commands_sent,omitempty"`

	CloseSamples []string `json:"close_samples,omitempty"` // why the first few closed, and what they had received
}

type client struct {
	id      int
	src     string
	addr    string
	n       int
	unit    string // "byte" or "line"
	talk    bool
	stutter time.Duration

	outMu sync.Mutex

	stopping atomic.Bool

	mu        sync.Mutex
	conns     []net.Conn
	rep       ClientReport
	winStart  time.Time // zero until "start"
	winEnd    time.Time // zero until "stop"
	lateness  *Dist
	replyWait *Dist
}

func clientMain(args []string) int {
	fs := flag.NewFlagSet("tarpit -client", flag.ContinueOnError)
	c := &client{}
	fs.IntVar(&c.id, "id", 0, "client number")
	fs.StringVar(&c.src, "src", "", "source IP address")
	fs.StringVar(&c.addr, "addr", "", "target host:port")
	fs.IntVar(&c.n, "n", 0, "connections")
	fs.StringVar(&c.unit, "unit", "byte", "drip event: byte or line")
	fs.BoolVar(&c.talk, "talk", false, "answer SMTP replies with EHLO, then NOOP")
	fs.DurationVar(&c.stutter, "stutter", time.Second, "expected interval between drip events")
	dialers := fs.Int("dialers", 64, "dials in flight")
	rate := fs.Float64("rate", 0, "dials started per second; 0: as fast as -dialers allows")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if _, err := raiseNofile(); err != nil {
		fmt.Fprintln(os.Stderr, "client: RLIMIT_NOFILE:", err)
	}
	c.rep = ClientReport{Client: c.id, Src: c.src, Wanted: c.n}
	c.lateness = newDist()
	c.replyWait = newDist()

	cmds := make(chan string)
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			cmds <- strings.TrimSpace(sc.Text())
		}
		close(cmds) // parent gone
	}()

	dialDone := make(chan struct{})
	go func() { c.dialAll(*dialers, *rate); close(dialDone) }()
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for dialing := true; dialing; {
		select {
		case <-dialDone:
			dialing = false
		case <-tick.C:
			c.send("progress")
		case _, ok := <-cmds:
			if !ok {
				c.closeAll()
				return 1
			}
		}
	}
	c.send("connected")

	for cmd := range cmds {
		switch cmd {
		case "snap":
			c.send("snap")
		case "start":
			c.mu.Lock()
			c.winStart = time.Now()
			c.mu.Unlock()
		case "stop":
			c.mu.Lock()
			c.winEnd = time.Now()
			if !c.winStart.IsZero() {
				c.rep.WindowNS = int64(c.winEnd.Sub(c.winStart))
			}
			c.rep.Lateness = c.lateness
			if c.talk {
				c.rep.ReplyDelay = c.replyWait
			}
			c.mu.Unlock()
			c.send("result")
			c.closeAll()
			return 0
		}
	}
	c.closeAll()
	return 1
}

func (c *client) send(typ string) {
	c.mu.Lock()
	r := c.rep
	r.Type = typ
	b, err := json.Marshal(&r) // under mu: it holds the live Dists
	c.mu.Unlock()
	if err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		return
	}
	c.outMu.Lock()
	os.Stdout.Write(append(b, '\n'))
	c.outMu.Unlock()
}

func (c *client) closeAll() {
	c.stopping.Store(true)
	c.mu.Lock()
	conns := c.conns
	c.conns = nil
	c.mu.Unlock()
	for _, cn := range conns {
		cn.Close()
	}
}

func (c *client) dialAll(inflight int, rate float64) {
	d := net.Dialer{
		LocalAddr: &net.TCPAddr{IP: net.ParseIP(c.src)},
		Timeout:   5 * time.Second,
	}
	sem := make(chan struct{}, max(1, inflight))
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := 0; i < c.n && !c.stopping.Load(); i++ {
		if rate > 0 {
			time.Sleep(time.Until(t0.Add(time.Duration(float64(i) / rate * float64(time.Second)))))
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			const attempts = 8
			backoff := 50 * time.Millisecond
			for a := 1; ; a++ {
				cn, err := d.Dial("tcp", c.addr)
				if err == nil {
					c.mu.Lock()
					c.rep.Connected++
					c.rep.Open++
					c.conns = append(c.conns, cn)
					c.mu.Unlock()
					go c.read(cn)
					return
				}
				if a == attempts || c.stopping.Load() {
					c.mu.Lock()
					c.rep.Failed++
					if len(c.rep.CloseSamples) < 5 {
						c.rep.CloseSamples = append(c.rep.CloseSamples, "dial: "+err.Error())
					}
					c.mu.Unlock()
					return
				}
				c.mu.Lock()
				c.rep.Retries++
				c.mu.Unlock()
				time.Sleep(backoff)
				backoff = min(2*backoff, 2*time.Second)
			}
		}()
	}
	wg.Wait()
}

func (c *client) inWindow(t time.Time) bool {
	return !c.winStart.IsZero() && !t.Before(c.winStart) && (c.winEnd.IsZero() || t.Before(c.winEnd))
}

// read holds one connection: it reads whatever arrives and timestamps
// each byte with the time the read returned. With a dripping target each
// read returns one byte; bytes that arrive together get the same time, so
// a burst shows as intervals of 0 (lateness −stutter).
func (c *client) read(cn net.Conn) {
	buf := make([]byte, 512)
	var (
		prev      time.Time // last drip event
		first     []byte    // the first bytes received, for close samples
		line      [4]byte   // start of the current line (SMTP reply code and separator)
		lineLen   int
		cmdSent   time.Time
		awaiting  bool // a command was sent, its reply has not started
		greeted   bool // EHLO sent
		nextWrite []byte
		total     int64 // bytes received on this connection
	)
	for {
		n, err := cn.Read(buf)
		now := time.Now()
		if n > 0 {
			c.mu.Lock()
			in := c.inWindow(now)
			c.rep.BytesTotal += int64(n)
			total += int64(n)
			if in {
				c.rep.BytesWindow += int64(n)
			}
			if len(first) < 80 {
				first = append(first, buf[:min(n, 80-len(first))]...)
			}
			for _, b := range buf[:n] {
				event := c.unit == "byte" || b == '\n'
				if event {
					switch {
					case awaiting:
						// First byte of a reply to our command: its delay
						// is the target's turnaround, not drip cadence.
						if in {
							c.replyWait.Add(now.Sub(cmdSent))
						}
						awaiting = false
					case !prev.IsZero():
						if in {
							c.lateness.Add(now.Sub(prev) - c.stutter)
						}
					}
					prev = now
					if in {
						c.rep.EventsWindow++
					}
				}
				if !c.talk {
					continue
				}
				if lineLen < len(line) {
					line[lineLen] = b
				}
				lineLen++
				if b == '\n' {
					// "ddd-text" continues a reply, "ddd text" or "ddd" ends it.
					last := lineLen < 4 || line[3] != '-'
					lineLen = 0
					if last {
						if !greeted {
							nextWrite = []byte("EHLO client.bench.test\r\n")
							greeted = true
						} else {
							nextWrite = []byte("NOOP\r\n")
						}
					}
				}
			}
			c.mu.Unlock()
		}
		if nextWrite != nil && err == nil {
			cmdSent = time.Now()
			awaiting = true
			_, err = cn.Write(nextWrite)
			nextWrite = nil
			c.mu.Lock()
			c.rep.CommandsSent++
			c.mu.Unlock()
		}
		if err != nil {
			if c.stopping.Load() {
				return
			}
			c.mu.Lock()
			c.rep.Open--
			c.rep.ClosedEarly++
			if c.inWindow(time.Now()) {
				c.rep.ClosedInWin++
			}
			if len(c.rep.CloseSamples) < 5 {
				why := err.Error()
				if err == io.EOF {
					why = "EOF (closed by target)"
				}
				c.rep.CloseSamples = append(c.rep.CloseSamples,
					fmt.Sprintf("%s after %d bytes; first bytes %q", why, total, first))
			}
			for i, x := range c.conns {
				if x == cn {
					c.conns[i] = c.conns[len(c.conns)-1]
					c.conns = c.conns[:len(c.conns)-1]
					break
				}
			}
			c.mu.Unlock()
			cn.Close()
			return
		}
	}
}
