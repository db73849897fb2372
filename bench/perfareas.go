package main

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// An area rule names where a sample's CPU went by a symbol somewhere in its call chain. The
// rules are tried in order and the first with a matching frame wins, so a more specific rule
// (the Transport's write loop) comes before a broader one (net/http).
type areaRule struct {
	area     string
	prefixes []string // of symbol names
}

// userAreas attribute a sample, kernel time included, to the part of the Go program it was
// spent for (the grouping of the profile in /work/shared/notes/cpu-profile.md).
var userAreas = []areaRule{
	// Safe replay's per-request price, first so that it wins over the Transport that calls
	// some of it: the request's record and its trace context (made at entry, looked through by
	// every context lookup), the GotConn hook and its peek at a reused connection. (The
	// replaying RoundTripper's own frame is left out: the whole Transport runs below it.)
	{"hfgate: safe replay", []string{"github.com/hfgate/hfgate/gateway.newFlight", "github.com/hfgate/hfgate/gateway.(*flight)",
		"net/http/httptrace.", "github.com/hfgate/hfgate/gateway.(*meteredConn).peerClosed"}},
	{"runtime: sysmon", []string{"runtime.sysmon"}},
	{"runtime: GC", []string{"runtime.gcBgMarkWorker", "runtime.bgsweep", "runtime.bgscavenge", "runtime.gcStart", "runtime.gcMarkDone"}},
	{"access log", []string{"github.com/lmittmann/tint.", "log/slog.", "github.com/hfgate/hfgate/middleware.AccessLog", "github.com/hfgate/hfgate/middleware.AccessLogConfig"}},
	{"Transport writeLoop", []string{"net/http.(*persistConn).writeLoop"}},
	{"Transport readLoop", []string{"net/http.(*persistConn).readLoop"}},
	{"Transport RoundTrip (caller side, dial)", []string{"net/http.(*Transport).", "net/http.(*persistConn).roundTrip"}},
	{"ReverseProxy", []string{"net/http/httputil."}},
	{"hfgate: gateway", []string{"github.com/hfgate/hfgate/gateway."}},
	{"hfgate: middleware", []string{"github.com/hfgate/hfgate/middleware."}},
	{"echo", []string{"github.com/labstack/echo/"}},
	{"net/http server: read, parse, write", []string{"net/http.(*conn).serve", "net/http.(*connReader)", "net/http.(*response)", "net/http.(*Server)"}},
	{"runtime: scheduler, netpoll", []string{"runtime.schedule", "runtime.findRunnable", "runtime.park_m", "runtime.goexit0", "runtime.netpoll", "runtime.mstart", "runtime.gopreempt_m", "runtime.mcall"}},
	{"runtime: other", []string{"runtime."}},
}

// kernelAreas name what the kernel was doing when a sample's leaf is in the kernel.
var kernelAreas = []areaRule{
	{"context switch", []string{"__schedule", "schedule", "finish_task_switch"}},
	{"futex", []string{"futex_", "__x64_sys_futex", "do_futex"}},
	{"epoll", []string{"do_epoll_wait", "ep_poll", "__x64_sys_epoll"}},
	{"TCP send (loopback: with the receiver's softirq)", []string{"tcp_sendmsg", "__x64_sys_sendto", "__x64_sys_write", "ksys_write"}},
	{"TCP receive", []string{"tcp_recvmsg", "__x64_sys_recvfrom", "__x64_sys_read", "ksys_read"}},
	{"nanosleep, timers", []string{"__x64_sys_nanosleep", "hrtimer_", "do_nanosleep"}},
	{"page faults, memory", []string{"asm_exc_page_fault", "do_madvise", "__x64_sys_madvise", "__x64_sys_mmap"}},
	{"syscall entry, exit", []string{"entry_SYSCALL", "syscall_exit", "do_syscall_64", "syscall_return"}},
	{"interrupts, softirq", []string{"asm_sysvec", "asm_common_interrupt", "__do_softirq", "irq_exit"}},
}

func matchArea(rules []areaRule, frames []string, otherwise string) string {
	for _, r := range rules {
		for _, f := range frames {
			for _, p := range r.prefixes {
				if strings.HasPrefix(f, p) {
					return r.area
				}
			}
		}
	}
	return otherwise
}

// sample is one perf sample: its CPU time (the cpu-clock period, ns) and its call chain, leaf
// first, split into the kernel part and the user part.
type sample struct {
	period       int64
	kernel, user []string
}

// classify returns a sample's area and, when it was in the kernel, the kernel's activity.
func (s sample) classify() (area, kernel string) {
	area = matchArea(userAreas, s.user, "other (no Go symbol)")
	if len(s.kernel) > 0 {
		kernel = matchArea(kernelAreas, s.kernel, "other kernel")
	}
	return area, kernel
}

// parsePerfScript reads `perf script -F tid,period,ip,sym` output: a header line per sample
// (" TID PERIOD"), then one tab-indented line per frame ("ADDRESS SYMBOL"), then a blank line.
// Kernel frames are those at kernel addresses (the upper half of the address space).
func parsePerfScript(r io.Reader, each func(sample)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var cur *sample
	flush := func() {
		if cur != nil {
			each(*cur)
			cur = nil
		}
	}
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			flush()
			continue
		}
		f := strings.Fields(line)
		if line[0] != '\t' || cur == nil {
			flush()
			if len(f) < 2 {
				return fmt.Errorf("perf script: unexpected sample header %q", line)
			}
			period, err := strconv.ParseInt(f[len(f)-1], 10, 64)
			if err != nil {
				return fmt.Errorf("perf script: period in %q: %w", line, err)
			}
			cur = &sample{period: period}
			continue
		}
		addr, err := strconv.ParseUint(f[0], 16, 64)
		if err != nil {
			return fmt.Errorf("perf script: frame %q: %w", line, err)
		}
		sym := "[unknown]"
		if len(f) > 1 {
			sym = strings.Join(f[1:], " ")
		}
		if addr >= 1<<63 {
			cur.kernel = append(cur.kernel, sym)
		} else {
			cur.user = append(cur.user, sym)
		}
	}
	flush()
	return sc.Err()
}

// areaTable sums samples' CPU per area and renders it as µs per request (requests > 0).
type areaTable map[string]int64

func (t areaTable) render(title string, requests int64) string {
	var total int64
	keys := make([]string, 0, len(t))
	for k, v := range t {
		keys = append(keys, k)
		total += v
	}
	slices.SortFunc(keys, func(a, b string) int {
		if t[a] != t[b] {
			return int(t[b] - t[a])
		}
		return strings.Compare(a, b)
	})
	var b strings.Builder
	fmt.Fprintf(&b, "| %s | µs/req | share |\n|---|---:|---:|\n", title)
	for _, k := range keys {
		fmt.Fprintf(&b, "| %s | %.1f | %.1f %% |\n", k, float64(t[k])/1e3/float64(requests), 100*float64(t[k])/float64(total))
	}
	fmt.Fprintf(&b, "| **all sampled** | **%.1f** | 100 %% |\n", float64(total)/1e3/float64(requests))
	return b.String()
}

// perfAreas reads perf script output and returns the two tables: by area of the program, and
// by kernel activity (kernel samples only).
func perfAreas(r io.Reader, requests int64) (string, error) {
	areas, kernel := areaTable{}, areaTable{}
	err := parsePerfScript(r, func(s sample) {
		a, k := s.classify()
		areas[a] += s.period
		if k != "" {
			kernel[k] += s.period
		}
	})
	if err != nil {
		return "", err
	}
	if requests <= 0 || len(areas) == 0 {
		return "", fmt.Errorf("no samples or no requests (%d)", requests)
	}
	return areas.render("area (kernel time beneath it included)", requests) + "\n" + kernel.render("kernel activity", requests), nil
}
