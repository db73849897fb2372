package gateway

import "strings"

// SysmonSchedtrace is the GODEBUG setting hfgate runs with unless GODEBUG already names
// schedtrace: a scheduler trace line every 2^31-1 ms (24.8 days).
//
// Why: Go's sysmon thread goes into a deep sleep whenever every P is idle, and the next
// system call wakes it again (a futex wake, a context switch, then 20 µs polls until it sees the
// idle P and sleeps again). hfgate has one P and, on a Space, idles between requests, so it pays
// that cycle about once per request: 0.86 sysmon wake-ups per request in front of uvicorn, 20-30
// % of hfgate's CPU at 200-1,000 requests a second (docs/performance.md). sysmon skips the deep
// sleep while schedtrace is set (runtime/proc.go: `if debug.schedtrace <= 0 && (...npidle ==
// gomaxprocs)`), and backs off to a 10 ms poll instead: about 100 wake-ups a second when idle.
// The tick is hard-coded upstream: golang/go#18236 ("runtime: sysmon tick is hardcoded").
// This relies on the runtime's implementation, not on documented behaviour, so
// e2e/sysmon_test.go measures it on every test run: a Go release that changes it fails there.
//
// The cost: when the host has been up longer than 24.8 days (Go's clock counts from boot), the
// runtime prints one plain "SCHED ..." line to stderr at start and then one every 24.8 days.
// GODEBUG=schedtrace=0 turns it off.
const SysmonSchedtrace = "schedtrace=2147483647"

// SysmonEnv returns environ with SysmonSchedtrace added to GODEBUG, and true, when the process
// should be started again with it (GODEBUG is read only at start); false when GODEBUG already
// names schedtrace (set, or turned off with schedtrace=0).
func SysmonEnv(environ []string) ([]string, bool) {
	out := make([]string, 0, len(environ)+1)
	found := false
	for _, kv := range environ {
		v, ok := strings.CutPrefix(kv, "GODEBUG=")
		if !ok {
			out = append(out, kv)
			continue
		}
		for setting := range strings.SplitSeq(v, ",") {
			if strings.HasPrefix(strings.TrimSpace(setting), "schedtrace=") {
				return nil, false
			}
		}
		if !found && v != "" {
			kv = "GODEBUG=" + v + "," + SysmonSchedtrace
		} else {
			kv = "GODEBUG=" + SysmonSchedtrace
		}
		found = true
		out = append(out, kv)
	}
	if !found {
		out = append(out, "GODEBUG="+SysmonSchedtrace)
	}
	return out, true
}
