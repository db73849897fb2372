package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// proc is a process the harness started, in a process group of its own, so that it and its
// children (nginx's workers) are measured and stopped together, and nothing else is.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
}

// procs is every process the harness started and has not yet stopped.
type procs struct {
	mu  sync.Mutex
	all map[*proc]struct{}
}

func newProcs() *procs { return &procs{all: make(map[*proc]struct{})} }

// start runs cmd in a new process group with output to logPath. The child is killed if the
// harness dies (Pdeathsig).
func (ps *procs) start(name string, cmd *exec.Cmd, logPath string) (*proc, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	ps.mu.Lock()
	ps.all[p] = struct{}{}
	ps.mu.Unlock()
	return p, nil
}

// logTail returns the last lines of p's output, for error messages.
func (p *proc) logTail() string {
	raw, _ := os.ReadFile(p.logPath)
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	return strings.Join(lines[max(0, len(lines)-3):], " | ")
}

// pid is the process's PID, which is also its process group's ID.
func (p *proc) pid() int { return p.cmd.Process.Pid }

// stop sends SIGTERM to p's process group, waits up to 5 s, then SIGKILLs the group.
func (ps *procs) stop(p *proc) {
	ps.mu.Lock()
	delete(ps.all, p)
	ps.mu.Unlock()
	_ = syscall.Kill(-p.pid(), syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
		<-p.done
	}
	// nginx's workers may outlive the master by a moment: make sure the group is gone.
	_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
}

// stopAll stops every process still running.
func (ps *procs) stopAll() {
	ps.mu.Lock()
	list := make([]*proc, 0, len(ps.all))
	for p := range ps.all {
		list = append(list, p)
	}
	ps.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range list {
		wg.Go(func() { ps.stop(p) })
	}
	wg.Wait()
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitHTTP polls url until it answers want, or fails after timeout (or when p exits).
func waitHTTP(ctx context.Context, p *proc, url string, want int, timeout time.Duration) error {
	c := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if p != nil {
			select {
			case <-p.done:
				return fmt.Errorf("%s exited before %s answered: %s", p.name, url, p.logTail())
			default:
			}
		}
		res, err := c.Get(url)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == want {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s did not answer %d within %v", url, want, timeout)
}

// groupStats sums, over every process in process group pgid, the CPU time used (user+system)
// and the resident set size.
type groupStats struct {
	cpu     time.Duration
	rss     int64 // bytes
	rssAnon int64 // bytes: heap, stacks; the rest of rss is file-backed (the binary's pages)
}

// clockTick is USER_HZ, the unit of utime and stime in /proc/<pid>/stat: 100 on every Linux
// this runs on. Used only when the process's CPU clock cannot be read (processCPU).
const clockTick = 10 * time.Millisecond

func readGroup(pgid int) groupStats {
	var st groupStats
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return st
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		g, ticks, ok := parseStat(raw)
		if !ok || g != pgid {
			continue
		}
		st.cpu += processCPU(pid, ticks)
		rss, anon := vmRSS(pid)
		st.rss += rss
		st.rssAnon += anon
	}
	return st
}

// parseStat reads the process group and utime+stime (in clock ticks) from the contents of
// /proc/<pid>/stat.
func parseStat(raw []byte) (pgrp int, ticks int64, ok bool) {
	// Fields after the command name, which is in parentheses and may hold spaces and ')'.
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(string(raw[i+1:]))
	// f[0] state, f[1] ppid, f[2] pgrp, ..., f[11] utime, f[12] stime, f[21] rss (pages)
	if len(f) < 22 {
		return 0, 0, false
	}
	g, err1 := strconv.Atoi(f[2])
	ut, err2 := strconv.ParseInt(f[11], 10, 64)
	stt, err3 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return 0, 0, false
	}
	return g, ut + stt, true
}

// processCPU is the process's user+system CPU time, all its threads (live and exited)
// together. It reads the process's CPU-time clock (clock_gettime on the clock ID of
// clock_getcpuclockid(3)): the same total as utime+stime in /proc/<pid>/stat, which the kernel
// derives from it, but in nanoseconds instead of 10 ms ticks. At 200 req/s for 3 s, ticks
// would resolve only about 8 µs per request; the clock resolves well under 0.01 µs. If the
// clock cannot be read, it falls back to ticks.
func processCPU(pid int, ticks int64) time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(processCPUClock(pid), &ts); err == nil {
		return time.Duration(ts.Nano())
	}
	return time.Duration(ticks) * clockTick
}

// processCPUClock is the clock ID of pid's CPU-time clock (the kernel's
// MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED)), as glibc's clock_getcpuclockid builds it.
func processCPUClock(pid int) int32 {
	const cpuclockSched = 2
	return int32(^uint32(pid)<<3 | cpuclockSched)
}

// perRequest divides the CPU time used between two readings by the requests served in
// between; zero when none were served (no figure rather than a division by zero).
func perRequest(before, after time.Duration, requests int64) time.Duration {
	if requests <= 0 {
		return 0
	}
	return (after - before) / time.Duration(requests)
}

// vmRSS reads VmRSS and RssAnon from /proc/<pid>/status, in bytes.
func vmRSS(pid int) (rss, anon int64) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	kb := func(v string) int64 {
		n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		return n << 10
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			rss = kb(v)
		} else if v, ok := strings.CutPrefix(sc.Text(), "RssAnon:"); ok {
			anon = kb(v)
		}
	}
	return rss, anon
}

// loadAvg returns the 1-minute load average.
func loadAvg() float64 {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(raw))
	if len(f) == 0 {
		return -1
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// waitQuiet waits, polling every 20 s, until the 1-minute load average is below limit or
// maxWait has passed. It returns the last load average read and whether it got below limit.
func waitQuiet(ctx context.Context, limit float64, maxWait time.Duration, logf func(string, ...any)) (float64, bool) {
	deadline := time.Now().Add(maxWait)
	for {
		la := loadAvg()
		if la < limit {
			return la, true
		}
		if !time.Now().Before(deadline) {
			return la, false
		}
		logf("load average %.2f >= %.2f: waiting (until %s at most)", la, limit, deadline.Format("15:04:05"))
		select {
		case <-ctx.Done():
			return la, false
		case <-time.After(min(20*time.Second, time.Until(deadline)+time.Millisecond)):
		}
	}
}
