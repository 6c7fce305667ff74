// Command tarpit measures a tarpit daemon holding many concurrent
// connections: server RSS per held connection, server CPU per dripped byte,
// and drip cadence (how late each byte comes). It runs greypit (black
// hosts are tarpitted) or, for reference, endlessh, the C SSH tarpit.
//
// The harness starts the target, re-executes itself -clients times as load
// processes (each opens its share of the connections from its own
// 127.0.0.x source address), waits until every connection is up, then
// measures the target through /proc over a -hold window. See
// docs/benchmarks.md.
//
//	go run ./bench/tarpit -target endlessh -conns 15000 -hold 60s
//	go run ./bench/tarpit -target greypit -conns 15000 -hold 60s -out greypit.json
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type options struct {
	target         string
	conns          int
	clients        int
	hold           time.Duration
	stutter        time.Duration
	greypit        string
	out            string
	lineLen        int
	timeout        time.Duration
	connectTimeout time.Duration
	dialers        int
	rate           float64
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-client" {
		os.Exit(clientMain(os.Args[2:]))
	}
	os.Exit(parentMain(os.Args[1:]))
}

func parentMain(args []string) int {
	var o options
	fs := flag.NewFlagSet("tarpit", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: go run ./bench/tarpit [flags]

Holds -conns concurrent connections to a tarpit (greypit, every client
black; or endlessh) from -clients load processes on 127.0.0.10, .11, ...
and reports, over a -hold window once all are connected: the target's RSS
per held connection above its idle RSS, its CPU per dripped byte, and drip
lateness (interval between two drips minus the stutter; endlessh drips a
line, greypit a byte). Exit status: 0 all held, 1 the target failed (closed
connections, refused them, died), 2 the harness failed.

Flags:
`)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.target, "target", "greypit", "server under test: greypit or endlessh")
	fs.IntVar(&o.conns, "conns", 15000, "concurrent connections to hold")
	fs.IntVar(&o.clients, "clients", 3, "client processes (source addresses 127.0.0.10, .11, ...)")
	fs.DurationVar(&o.hold, "hold", 60*time.Second, "measurement window once all connections are up")
	fs.DurationVar(&o.stutter, "stutter", time.Second, "drip interval: greypit tarpit.stutter, endlessh -d")
	fs.StringVar(&o.greypit, "greypit", "", "greypit binary `path`; empty: go build ./cmd/greypit into a temp dir")
	fs.StringVar(&o.out, "out", "", "write the results as JSON to `file`")
	fs.IntVar(&o.lineLen, "linelen", 32, "endlessh -l: maximum line length (3-255)")
	fs.DurationVar(&o.timeout, "timeout", 0, "give up after this long in all (0: hold + 15m)")
	fs.DurationVar(&o.connectTimeout, "connect-timeout", 5*time.Minute, "limit for opening all connections")
	fs.IntVar(&o.dialers, "dialers", 64, "dials in flight per client process")
	fs.Float64Var(&o.rate, "rate", 0, "connections opened per second, all clients together; 0: as fast as -dialers allows")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "tarpit: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	switch {
	case o.target != "greypit" && o.target != "endlessh":
		fmt.Fprintln(os.Stderr, "tarpit: -target must be greypit or endlessh")
		return 2
	case o.conns < 1 || o.clients < 1 || o.clients > 200 || o.clients > o.conns:
		fmt.Fprintln(os.Stderr, "tarpit: need 1 <= -clients <= min(200, -conns)")
		return 2
	case o.hold <= 0 || o.stutter <= 0:
		fmt.Fprintln(os.Stderr, "tarpit: -hold and -stutter must be > 0")
		return 2
	case o.lineLen < 3 || o.lineLen > 255:
		fmt.Fprintln(os.Stderr, "tarpit: -linelen must be 3-255")
		return 2
	}
	if o.timeout <= 0 {
		o.timeout = o.hold + 15*time.Minute
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()

	res, err := run(ctx, &o)
	if res != nil && err != nil {
		res.Error = err.Error()
	}
	if res != nil {
		printSummary(os.Stdout, res)
		if o.out != "" {
			b, _ := json.MarshalIndent(res, "", "  ")
			if werr := os.WriteFile(o.out, append(b, '\n'), 0o644); werr != nil {
				fmt.Fprintln(os.Stderr, "tarpit:", werr)
			}
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tarpit:", err)
		return 2
	}
	if len(res.Failures) > 0 {
		return 1
	}
	return 0
}

// Machine describes where the run happened.
type Machine struct {
	CPUs       int    `json:"cpus"`
	MemTotal   string `json:"mem_total"`
	Kernel     string `json:"kernel"`
	Go         string `json:"go"`
	NofileHard uint64 `json:"nofile"`
	Somaxconn  string `json:"somaxconn"`
	ClkTck     int64  `json:"clk_tck"`
}

// Result is everything a run measured.
type Result struct {
	Target   string   `json:"target"`
	Version  string   `json:"version"`
	Command  []string `json:"command"`
	Config   string   `json:"config,omitempty"`
	Unit     string   `json:"drip_unit"` // byte or line
	Machine  Machine  `json:"machine"`
	Started  string   `json:"started"`
	Conns    int      `json:"conns"`
	Clients  int      `json:"clients"`
	Hold     string   `json:"hold"`
	Rate     float64  `json:"rate,omitempty"`
	Dialers  int      `json:"dialers"`
	Stutter  string   `json:"stutter"`
	LineLen  int      `json:"endlessh_line_len,omitempty"`
	Failures []string `json:"failures"`
	Error    string   `json:"error,omitempty"` // the run stopped early: its figures are incomplete

	Idle ProcSample  `json:"idle"`           // after start, before any connection
	Held *ProcSample `json:"held,omitempty"` // all connections up (and accepted)
	End  *ProcSample `json:"end,omitempty"`  // end of the hold window

	ConnectSeconds float64 `json:"connect_seconds"`
	Connected      int     `json:"connected"`
	DialFailed     int     `json:"dial_failed"`
	DialRetries    int     `json:"dial_retries"`
	OpenAtHeld     int     `json:"open_at_held"`
	OpenAtEnd      int     `json:"open_at_end"`
	ClosedEarly    int     `json:"closed_early"`
	ClosedInWindow int     `json:"closed_in_window"`

	HoldSeconds      float64 `json:"hold_seconds"` // measured window
	BytesWindow      int64   `json:"bytes_window"`
	EventsWindow     int64   `json:"events_window"`
	CPUSeconds       float64 `json:"cpu_seconds"`        // target, over the window
	ClientCPUSeconds float64 `json:"client_cpu_seconds"` // all client processes, over the window
	// Everything else on the machine during the window: user-space
	// processes other than the benchmark's (sampled from /proc each
	// second), kernel threads (ksoftirqd and kworkers carry part of the
	// loopback TCP load), and CPU time the hypervisor gave to other guests.
	OtherCPUSeconds        float64  `json:"other_processes_cpu_seconds"`
	OtherProcsStarted      int      `json:"other_processes_started"`
	KernelThreadCPUSeconds float64  `json:"kernel_threads_cpu_seconds"`
	StealSeconds           float64  `json:"steal_seconds"`
	Warnings               []string `json:"warnings,omitempty"`

	RSSPerConnHeldB  float64 `json:"rss_per_conn_held_bytes"`
	RSSPerConnEndB   float64 `json:"rss_per_conn_end_bytes"`
	CPUPercent       float64 `json:"cpu_percent_of_one_core"`
	CPUPerByteUS     float64 `json:"cpu_per_byte_us"`
	CPUPerEventUS    float64 `json:"cpu_per_drip_us"`
	BytesPerConnSec  float64 `json:"bytes_per_conn_per_second"`
	EventsPerConnSec float64 `json:"drips_per_conn_per_second"`

	Lateness     *Dist            `json:"lateness,omitempty"`
	LatenessQ    map[string]int64 `json:"lateness_quantiles_us,omitempty"`
	ReplyDelay   *Dist            `json:"reply_delay,omitempty"`
	ReplyDelayQ  map[string]int64 `json:"reply_delay_quantiles_us,omitempty"`
	CommandsSent int64            `json:"commands_sent,omitempty"`
	CloseSamples []string         `json:"close_samples,omitempty"`
	TargetOutput string           `json:"target_output,omitempty"`
}

type clientProc struct {
	idx   int
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan struct{}
}

type clientMsg struct {
	idx int
	rep *ClientReport
	eof bool
}

func run(ctx context.Context, o *options) (*Result, error) {
	nofile, err := raiseNofile()
	if err != nil {
		return nil, fmt.Errorf("RLIMIT_NOFILE: %w", err)
	}
	clk := clockTicks()
	res := &Result{
		Target:  o.target,
		Started: time.Now().UTC().Format(time.RFC3339),
		Conns:   o.conns,
		Clients: o.clients,
		Hold:    o.hold.String(),
		Rate:    o.rate,
		Dialers: o.dialers,
		Stutter: o.stutter.String(),
		Machine: Machine{
			CPUs:       runtime.NumCPU(),
			MemTotal:   fmt.Sprintf("%.1f GiB", float64(memTotalKiB())/(1<<20)),
			Kernel:     readTrim("/proc/sys/kernel/osrelease"),
			Go:         runtime.Version(),
			NofileHard: nofile,
			Somaxconn:  readTrim("/proc/sys/net/core/somaxconn"),
			ClkTck:     clk,
		},
		Failures: []string{},
	}
	fail := func(format string, a ...any) { res.Failures = append(res.Failures, fmt.Sprintf(format, a...)) }

	dir, err := os.MkdirTemp("", "tarpit-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	var t *target
	if o.target == "greypit" {
		t, err = prepareGreypit(o, dir)
	} else {
		res.LineLen = o.lineLen
		t, err = prepareEndlessh(o, dir)
	}
	if err != nil {
		return nil, err
	}
	res.Version, res.Command, res.Config, res.Unit = t.version, t.argv, t.config, t.unit
	if uint64(o.conns)+64 > nofile {
		fail("-conns %d does not fit the open-files limit %d of one process", o.conns, nofile)
	}

	logf("starting %s: %s", t.name, strings.Join(t.argv, " "))
	if err := t.start(); err != nil {
		return nil, err
	}
	defer func() {
		t.stop(10 * time.Second)
		res.TargetOutput = t.out.String()
	}()
	if err := t.waitListening(ctx, 15*time.Second); err != nil {
		return res, err
	}
	if err := sleepCtx(ctx, time.Second); err != nil {
		return res, err
	}
	if res.Idle, err = sampleProc(t.pid); err != nil {
		return res, err
	}
	logf("%s pid %d listening on port %d; idle RSS %d KiB", t.name, t.pid, t.port, res.Idle.RSSKiB)

	// Load processes.
	self, err := os.Executable()
	if err != nil {
		return res, err
	}
	msgs := make(chan clientMsg, 64)
	procs := make([]*clientProc, o.clients)
	defer func() { stopClients(procs, msgs) }()
	for i := range procs {
		n := o.conns / o.clients
		if i < o.conns%o.clients {
			n++
		}
		cmd := exec.Command(self, "-client",
			"-id", strconv.Itoa(i),
			"-src", fmt.Sprintf("127.0.0.%d", 10+i),
			"-addr", fmt.Sprintf("127.0.0.1:%d", t.port),
			"-n", strconv.Itoa(n),
			"-unit", t.unit,
			"-talk="+strconv.FormatBool(t.talk),
			"-stutter", o.stutter.String(),
			"-dialers", strconv.Itoa(o.dialers),
			"-rate", strconv.FormatFloat(o.rate/float64(o.clients), 'f', -1, 64))
		cmd.Stderr = os.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		stdin, err := cmd.StdinPipe()
		if err != nil {
			return res, err
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return res, err
		}
		if err := cmd.Start(); err != nil {
			return res, err
		}
		p := &clientProc{idx: i, cmd: cmd, stdin: stdin, done: make(chan struct{})}
		procs[i] = p
		go func() {
			sc := bufio.NewScanner(stdout)
			sc.Buffer(make([]byte, 1<<20), 64<<20)
			for sc.Scan() {
				var r ClientReport
				if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
					fmt.Fprintf(os.Stderr, "client %d: bad report: %v\n", p.idx, err)
					continue
				}
				msgs <- clientMsg{idx: p.idx, rep: &r}
			}
			msgs <- clientMsg{idx: p.idx, eof: true}
			cmd.Wait()
			close(p.done)
		}()
	}

	// Connect phase.
	t0 := time.Now()
	connected := make([]*ClientReport, o.clients)
	progress := make([]*ClientReport, o.clients)
	connectDeadline := time.After(o.connectTimeout)
	logEvery := time.NewTicker(5 * time.Second)
	defer logEvery.Stop()
	for waiting := o.clients; waiting > 0; {
		select {
		case m := <-msgs:
			if m.eof {
				return res, fmt.Errorf("client %d exited during the connect phase", m.idx)
			}
			progress[m.idx] = m.rep
			if m.rep.Type == "connected" {
				connected[m.idx] = m.rep
				waiting--
			}
		case <-logEvery.C:
			var c, open, closed int
			for _, r := range progress {
				if r != nil {
					c, open, closed = c+r.Connected, open+r.Open, closed+r.ClosedEarly
				}
			}
			logf("connecting: %d/%d connected, %d open, %d closed by the target", c, o.conns, open, closed)
		case <-t.exited:
			fail("%s", t.deadErr())
			return res, nil
		case <-connectDeadline:
			fail("not all connections were up after -connect-timeout %v", o.connectTimeout)
			return res, nil
		case <-ctx.Done():
			return res, ctx.Err()
		}
	}
	res.ConnectSeconds = time.Since(t0).Seconds()
	open := 0
	for _, r := range connected {
		res.Connected += r.Connected
		res.DialFailed += r.Failed
		res.DialRetries += r.Retries
		open += r.Open
	}
	logf("connect phase done in %.1fs: %d connected, %d dials failed, %d open", res.ConnectSeconds, res.Connected, res.DialFailed, open)

	// A completed handshake is not an accept(): wait until the target
	// holds a descriptor per connection still open (the clients are asked
	// for their count each round), or until its descriptor count stops
	// moving, before sampling its memory.
	snap := func() (int, error) {
		for _, p := range procs {
			io.WriteString(p.stdin, "snap\n")
		}
		n, got := 0, 0
		timeout := time.After(10 * time.Second)
		for got < o.clients {
			select {
			case m := <-msgs:
				if m.eof {
					return 0, fmt.Errorf("client %d exited", m.idx)
				}
				if m.rep.Type == "snap" {
					n += m.rep.Open
					got++
				}
			case <-timeout:
				return 0, errors.New("clients did not answer snap within 10s")
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		}
		return n, nil
	}
	acceptDeadline := time.Now().Add(30 * time.Second)
	lastFDs, stable := -1, 0
	for {
		if open, err = snap(); err != nil {
			return res, err
		}
		s, err := sampleProc(t.pid)
		if err != nil {
			return res, err
		}
		if s.FDs == lastFDs {
			stable++
		} else {
			lastFDs, stable = s.FDs, 0
		}
		if s.FDs >= res.Idle.FDs+open || stable >= 10 || time.Now().After(acceptDeadline) {
			break
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return res, err
		}
	}
	if err := sleepCtx(ctx, time.Second); err != nil {
		return res, err
	}
	if !t.alive() {
		fail("%s", t.deadErr())
		return res, nil
	}
	if open, err = snap(); err != nil {
		return res, err
	}
	res.OpenAtHeld = open
	held, err := sampleProc(t.pid)
	if err != nil {
		return res, err
	}
	res.Held = &held

	// Measurement window.
	clientCPU := func() int64 {
		var sum int64
		for _, p := range procs {
			if n, err := cpuTicks(p.cmd.Process.Pid); err == nil {
				sum += n
			}
		}
		return sum
	}
	cc0 := clientCPU()
	watch := newOtherWatch(os.Getpid(), os.Getppid(), t.pid)
	for _, p := range procs {
		watch.exclude[p.cmd.Process.Pid] = true
	}
	watch.sample()
	steal0 := stealTicks()
	cpu0, err := cpuTicks(t.pid)
	if err != nil {
		return res, err
	}
	w0 := time.Now()
	for _, p := range procs {
		io.WriteString(p.stdin, "start\n")
	}
	logf("holding for %v (RSS %d KiB, %d fds, %d threads)", o.hold, held.RSSKiB, held.FDs, held.Threads)
	windowEnd := time.After(o.hold)
	watchTick := time.NewTicker(time.Second)
	defer watchTick.Stop()
	var died bool
hold:
	for {
		select {
		case <-watchTick.C:
			watch.sample()
		case <-windowEnd:
			break hold
		case m := <-msgs:
			if m.eof {
				return res, fmt.Errorf("client %d exited during the hold window", m.idx)
			}
		case <-t.exited:
			died = true
			break hold
		case <-ctx.Done():
			return res, ctx.Err()
		}
	}
	var end ProcSample
	if !died {
		end, err = sampleProc(t.pid)
		if err != nil {
			return res, err
		}
		res.End = &end
	}
	res.HoldSeconds = time.Since(w0).Seconds()
	cc1 := clientCPU()
	watch.sample()
	steal1 := stealTicks()
	for _, p := range procs {
		io.WriteString(p.stdin, "stop\n")
	}
	if died {
		fail("%s", t.deadErr())
	}

	// Results.
	lat, rd := newDist(), newDist()
	results := 0
	got := make([]bool, o.clients)
	collectDeadline := time.After(30 * time.Second)
	for results < o.clients {
		select {
		case m := <-msgs:
			if m.eof {
				if !got[m.idx] {
					return res, fmt.Errorf("client %d exited without a result", m.idx)
				}
				continue
			}
			if m.rep.Type != "result" {
				continue
			}
			r := m.rep
			got[m.idx] = true
			results++
			res.OpenAtEnd += r.Open
			res.ClosedEarly += r.ClosedEarly
			res.ClosedInWindow += r.ClosedInWin
			res.BytesWindow += r.BytesWindow
			res.EventsWindow += r.EventsWindow
			res.CommandsSent += r.CommandsSent
			lat.Merge(r.Lateness)
			rd.Merge(r.ReplyDelay)
			for _, s := range r.CloseSamples {
				if len(res.CloseSamples) < 8 {
					res.CloseSamples = append(res.CloseSamples, fmt.Sprintf("client %d: %s", r.Client, s))
				}
			}
		case <-collectDeadline:
			return res, errors.New("clients did not report within 30s of stop")
		case <-ctx.Done():
			return res, ctx.Err()
		}
	}
	if lat.N > 0 {
		res.Lateness, res.LatenessQ = lat, quantiles(lat)
	}
	if rd.N > 0 {
		res.ReplyDelay, res.ReplyDelayQ = rd, quantiles(rd)
	}

	// Derived figures.
	res.ClientCPUSeconds = float64(cc1-cc0) / float64(clk)
	res.OtherCPUSeconds = float64(watch.user) / float64(clk)
	res.OtherProcsStarted = watch.started
	res.KernelThreadCPUSeconds = float64(watch.kernel) / float64(clk)
	res.StealSeconds = float64(steal1-steal0) / float64(clk)
	if open > 0 {
		res.RSSPerConnHeldB = float64(held.RSSKiB-res.Idle.RSSKiB) * 1024 / float64(open)
	}
	if res.End != nil {
		res.CPUSeconds = float64(res.End.CPUTicks-cpu0) / float64(clk)
		if res.OtherCPUSeconds > 0.05*res.HoldSeconds {
			res.Warnings = append(res.Warnings, fmt.Sprintf(
				"the machine was not quiet: other processes used %.1fs of CPU (%.0f%% of one core) during the window; lateness and CPU figures may be disturbed",
				res.OtherCPUSeconds, 100*res.OtherCPUSeconds/res.HoldSeconds))
		}
		if res.StealSeconds > 0.05*res.HoldSeconds {
			res.Warnings = append(res.Warnings, fmt.Sprintf(
				"the hypervisor took %.1fs of CPU (steal) during the window; lateness and CPU figures are disturbed", res.StealSeconds))
		}
		res.CPUPercent = 100 * res.CPUSeconds / res.HoldSeconds
		if res.OpenAtEnd > 0 {
			res.RSSPerConnEndB = float64(res.End.RSSKiB-res.Idle.RSSKiB) * 1024 / float64(res.OpenAtEnd)
			res.BytesPerConnSec = float64(res.BytesWindow) / res.HoldSeconds / float64(res.OpenAtEnd)
			res.EventsPerConnSec = float64(res.EventsWindow) / res.HoldSeconds / float64(res.OpenAtEnd)
		}
		if res.BytesWindow > 0 {
			res.CPUPerByteUS = res.CPUSeconds * 1e6 / float64(res.BytesWindow)
		}
		if res.EventsWindow > 0 {
			res.CPUPerEventUS = res.CPUSeconds * 1e6 / float64(res.EventsWindow)
		}
	}

	// Verdicts on the target.
	if res.DialFailed > 0 {
		fail("%d connections could not be opened", res.DialFailed)
	}
	if res.ClosedEarly > 0 {
		fail("connection closed early: the target closed %d of %d connections before the end of the hold (%d of them inside the window)",
			res.ClosedEarly, res.Connected, res.ClosedInWindow)
	}
	if res.BytesWindow == 0 {
		fail("nothing was dripped during the hold window")
	}
	return res, nil
}

func quantiles(d *Dist) map[string]int64 {
	q := map[string]int64{}
	for _, p := range []struct {
		name string
		q    float64
	}{{"p50", 0.50}, {"p90", 0.90}, {"p99", 0.99}, {"p99.9", 0.999}} {
		v, _ := d.Quantile(p.q)
		q[p.name] = v
	}
	q["min"], q["max"] = d.MinUS, d.MaxUS
	return q
}

// stopClients ends the load processes: a closed stdin makes a client
// close its connections and exit; one still there after 15s is killed.
// Reports still coming in are drained, so no reader blocks.
func stopClients(procs []*clientProc, msgs <-chan clientMsg) {
	for _, p := range procs {
		if p != nil {
			p.stdin.Close()
		}
	}
	timeout := time.After(15 * time.Second)
	for _, p := range procs {
		if p == nil {
			continue
		}
	wait:
		for {
			select {
			case <-p.done:
				break wait
			case <-msgs:
			case <-timeout:
				for _, q := range procs {
					if q != nil {
						q.cmd.Process.Kill()
					}
				}
				timeout = nil
			}
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, a...))
}

func ms(us int64) string { return strconv.FormatFloat(float64(us)/1000, 'f', 3, 64) + " ms" }

func printSummary(w io.Writer, r *Result) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	p("== tarpit benchmark: %s ==", r.Target)
	p("version       %s", r.Version)
	p("command       %s", strings.Join(r.Command, " "))
	p("machine       %d CPUs, %s, Linux %s, %s, nofile %d, somaxconn %s", r.Machine.CPUs, r.Machine.MemTotal, r.Machine.Kernel, r.Machine.Go, r.Machine.NofileHard, r.Machine.Somaxconn)
	rate := "unpaced"
	if r.Rate > 0 {
		rate = fmt.Sprintf("%g/s", r.Rate)
	}
	p("load          %d conns from %d client processes (%d dials in flight each, %s), hold %s, stutter %s, drip unit %s", r.Conns, r.Clients, r.Dialers, rate, r.Hold, r.Stutter, r.Unit)
	p("connect       %d connected in %.1fs, %d dials failed, %d retries", r.Connected, r.ConnectSeconds, r.DialFailed, r.DialRetries)
	p("connections   held at start of window %d, at end %d; closed early by target %d (%d in window)", r.OpenAtHeld, r.OpenAtEnd, r.ClosedEarly, r.ClosedInWindow)
	p("idle          RSS %d KiB (anon %d, file %d), %d fds, %d threads", r.Idle.RSSKiB, r.Idle.AnonKiB, r.Idle.FileKiB, r.Idle.FDs, r.Idle.Threads)
	if r.Held != nil {
		p("all connected RSS %d KiB (anon %d, file %d), %d fds, %d threads", r.Held.RSSKiB, r.Held.AnonKiB, r.Held.FileKiB, r.Held.FDs, r.Held.Threads)
	}
	if r.End != nil {
		p("end of hold   RSS %d KiB (anon %d, file %d; peak %d), %d fds, %d threads", r.End.RSSKiB, r.End.AnonKiB, r.End.FileKiB, r.End.HWMKiB, r.End.FDs, r.End.Threads)
	}
	if r.Held != nil && r.OpenAtHeld > 0 {
		p("RSS/conn      %.0f B when all connected, %.0f B at end of hold (RSS above idle / connections held)", r.RSSPerConnHeldB, r.RSSPerConnEndB)
	}
	if r.End != nil {
		p("window        %.1fs: %d bytes in %d drips (%.2f B/s and %.3f drips/s per connection)", r.HoldSeconds, r.BytesWindow, r.EventsWindow, r.BytesPerConnSec, r.EventsPerConnSec)
		p("CPU           target %.2fs = %.1f%% of one core; %.2f µs per dripped byte, %.2f µs per drip", r.CPUSeconds, r.CPUPercent, r.CPUPerByteUS, r.CPUPerEventUS)
		p("other CPU     clients %.2fs; other processes %.2fs (%d started in the window); kernel threads %.2fs; steal %.2fs",
			r.ClientCPUSeconds, r.OtherCPUSeconds, r.OtherProcsStarted, r.KernelThreadCPUSeconds, r.StealSeconds)
	}
	if r.Lateness != nil {
		q := r.LatenessQ
		p("lateness      p50 %s, p90 %s, p99 %s, p99.9 %s, min %s, max %s, mean %.3f ms (n=%d)",
			ms(q["p50"]), ms(q["p90"]), ms(q["p99"]), ms(q["p99.9"]), ms(q["min"]), ms(q["max"]), r.Lateness.MeanUS()/1000, r.Lateness.N)
		var parts []string
		for i, c := range r.Lateness.Coarse {
			if c > 0 {
				parts = append(parts, fmt.Sprintf("%s %d", coarseLabel(i), c))
			}
		}
		p("  buckets     %s", strings.Join(parts, ", "))
	}
	if r.ReplyDelay != nil {
		q := r.ReplyDelayQ
		p("reply delay   min %s, p50 %s, p99 %s, max %s, mean %.3f ms (command sent to first byte of its reply; not in lateness; %d commands)",
			ms(q["min"]), ms(q["p50"]), ms(q["p99"]), ms(q["max"]), r.ReplyDelay.MeanUS()/1000, r.CommandsSent)
	}
	for _, s := range r.CloseSamples {
		p("close sample  %s", s)
	}
	for _, w := range r.Warnings {
		p("WARNING       %s", w)
	}
	if r.Error != "" {
		p("RESULT        ERROR: the run stopped early: %s", firstLine(r.Error))
	} else if len(r.Failures) == 0 {
		p("RESULT        OK: all %d connections held through the window", r.Conns)
	}
	for _, f := range r.Failures {
		p("RESULT        FAIL: %s", f)
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
