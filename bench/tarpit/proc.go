package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
)

// ProcSample is one look at a process through /proc.
type ProcSample struct {
	RSSKiB   int64 `json:"rss_kib"`   // VmRSS
	HWMKiB   int64 `json:"hwm_kib"`   // VmHWM, peak RSS so far
	AnonKiB  int64 `json:"anon_kib"`  // RssAnon: heap, stacks
	FileKiB  int64 `json:"file_kib"`  // RssFile: mapped files (binary, bbolt database)
	Threads  int   `json:"threads"`   // Threads
	FDs      int   `json:"fds"`       // entries in /proc/PID/fd
	CPUTicks int64 `json:"cpu_ticks"` // utime + stime, all threads, in clock ticks
}

func sampleProc(pid int) (ProcSample, error) {
	var s ProcSample
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		switch k {
		case "VmRSS":
			s.RSSKiB = n
		case "VmHWM":
			s.HWMKiB = n
		case "RssAnon":
			s.AnonKiB = n
		case "RssFile":
			s.FileKiB = n
		case "Threads":
			s.Threads = int(n)
		}
	}
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return s, err
	}
	s.FDs = len(ents)
	s.CPUTicks, err = cpuTicks(pid)
	return s, err
}

// cpuTicks is utime+stime of the whole process from /proc/PID/stat
// (fields 14 and 15), in clock ticks.
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields are counted
	// after its closing parenthesis, which starts at field 3 (state).
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no ')'", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: short", pid)
	}
	ut, err1 := strconv.ParseInt(f[14-3], 10, 64)
	st, err2 := strconv.ParseInt(f[15-3], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad utime/stime", pid)
	}
	return ut + st, nil
}

// clockTicks is sysconf(_SC_CLK_TCK), read with getconf; Linux reports
// USER_HZ = 100 on every common architecture, the fallback.
func clockTicks() int64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64); err == nil && n > 0 {
			return n
		}
	}
	return 100
}

// listening reports whether some socket is in LISTEN state on TCP port
// port (IPv4 or IPv6), from /proc/net/tcp{,6}. It opens no connection: a
// probe connection would itself be tarpitted.
func listening(port int) bool {
	want := fmt.Sprintf(":%04X", port)
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			fl := strings.Fields(sc.Text())
			// sl local_address rem_address st ...
			if len(fl) > 3 && strings.HasSuffix(fl[1], want) && fl[3] == "0A" {
				fh.Close()
				return true
			}
		}
		fh.Close()
	}
	return false
}

// raiseNofile sets the soft open-files limit to the hard one. Calling
// syscall.Setrlimit also stops os/exec from giving children the original
// soft limit back, so endlessh inherits the raised one.
func raiseNofile() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	return lim.Cur, nil
}

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func memTotalKiB() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

// stealTicks is the CPU time the hypervisor gave to others since boot
// (/proc/stat "cpu" line, 8th value), in clock ticks.
func stealTicks() int64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	n, _ := strconv.ParseInt(f[8], 10, 64)
	return n
}

// procStat reads utime+stime and the parent pid of a process.
func procStat(pid int) (ticks int64, ppid int, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: no ')'", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: short", pid)
	}
	pp, _ := strconv.Atoi(f[4-3])
	ut, err1 := strconv.ParseInt(f[14-3], 10, 64)
	st, err2 := strconv.ParseInt(f[15-3], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("/proc/%d/stat: bad utime/stime", pid)
	}
	return ut + st, pp, nil
}

// otherWatch adds up the CPU time used during the measurement window by
// every process but the benchmark's own, sampling /proc each second, so a
// run disturbed by other work on the machine says so. A process that both
// starts and ends between two samples is missed.
type otherWatch struct {
	exclude map[int]bool
	last    map[int]int64
	kthread map[int]bool
	user    int64 // ticks, user-space processes
	kernel  int64 // ticks, kernel threads (ksoftirqd, kworker: partly our own network load)
	started int   // processes that appeared during the window
	sampled bool
}

func newOtherWatch(exclude ...int) *otherWatch {
	w := &otherWatch{exclude: map[int]bool{}, last: map[int]int64{}, kthread: map[int]bool{}}
	for _, p := range exclude {
		w.exclude[p] = true
	}
	return w
}

func (w *otherWatch) sample() {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || w.exclude[pid] {
			continue
		}
		t, ppid, err := procStat(pid)
		if err != nil {
			continue
		}
		prev, seen := w.last[pid]
		if !seen {
			w.kthread[pid] = pid == 2 || ppid == 2
			if w.sampled {
				w.started++ // new in the window: all its time counts
			} else {
				prev = t
			}
		}
		if w.kthread[pid] {
			w.kernel += t - prev
		} else {
			w.user += t - prev
		}
		w.last[pid] = t
	}
	w.sampled = true
}
