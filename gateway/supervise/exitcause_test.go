package supervise

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// selfMaxRSS is the test process's own peak RSS in bytes. The kernel carries
// it (at most) into every child the process starts, so a child's figure
// proves the child's own memory only above it.
func selfMaxRSS(t *testing.T) int64 {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatalf("getrusage: %v", err)
	}
	return ru.Maxrss * maxrssUnit
}

// exitRecord waits for the "upstream exited" log record.
func (sv *supervised) exitRecord(t *testing.T) map[string]any {
	t.Helper()
	return sv.logs.Wait(t, "upstream exited", nil)
}

// TestSupervisorExitReportsPeakRSS kills, from outside, a child that holds
// more memory than the test process ever did: its exit carries its peak
// memory and the out-of-memory hint with the Space's MEMORY, in the event,
// the log line and the status.
func TestSupervisorExitReportsPeakRSS(t *testing.T) {
	t.Parallel()
	const python = "/usr/bin/python3"
	if _, err := os.Stat(python); err != nil {
		t.Fatalf("%s is needed (Debian python3): %v", python, err)
	}
	alloc := selfMaxRSS(t) + 64<<20
	// bytes * n fills (touches) every page, so all of it is resident.
	script := "import sys, time\nb = b'x' * " + strconv.FormatInt(alloc, 10) + "\nprint('ready', flush=True)\ntime.sleep(60)\n"
	sv := supervise(t, []string{python, "-c", script}, func(s *Supervisor) {
		s.Env = append(os.Environ(), "MEMORY=7Gi", "MEMORY=16Gi") // the last one wins, as with exec
	})
	pid := sv.Start(t)
	sv.WaitLine(t, "ready")
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	ev := sv.Exit(t)
	if floor := selfMaxRSS(t); floor >= alloc {
		t.Fatalf("test process peak %d B reached the child's allocation %d B: the check below would prove nothing", floor, alloc)
	}
	t.Logf("allocated %s, child peak %s", formatBytes(alloc), formatBytes(ev.PeakRSS))
	if ev.Signal != "SIGKILL" || ev.PeakRSS < alloc || ev.PeakRSS > alloc+256<<20 {
		t.Errorf("got signal %q peak %d B, want SIGKILL and a peak of %d B plus the interpreter (< 256 MiB)", ev.Signal, ev.PeakRSS, alloc)
	}
	wantHint := "killed by a SIGKILL the gateway did not send; on a Space this is usually the out-of-memory killer (the Space has MEMORY=16Gi)"
	if ev.Hint != wantHint {
		t.Errorf("got hint %q, want %q", ev.Hint, wantHint)
	}

	rec := sv.exitRecord(t)
	if rec["peak_rss_bytes"] != float64(ev.PeakRSS) || rec["peak_rss"] != formatBytes(ev.PeakRSS) || rec["hint"] != wantHint {
		t.Errorf("got exit record %v, want peak_rss_bytes=%d peak_rss=%s hint=%q", rec, ev.PeakRSS, formatBytes(ev.PeakRSS), wantHint)
	}

	le := sv.s.Status().LastExit
	if le == nil || le.PeakRSSBytes != ev.PeakRSS || le.PeakRSS != formatBytes(ev.PeakRSS) || le.Hint != wantHint || le.Signal != "SIGKILL" {
		t.Fatalf("got last exit %+v, want the event's peak, its hint and SIGKILL", le)
	}
	b, m := jsonObject(t, le)
	if m["peak_rss_bytes"] != float64(ev.PeakRSS) || m["peak_rss"] != le.PeakRSS || m["hint"] != wantHint {
		t.Errorf("last_exit JSON %s: want peak_rss_bytes, peak_rss and hint", b)
	}
}

// TestSupervisorExitHint checks which exits get the out-of-memory hint:
// only a SIGKILL the gateway did not send.
func TestSupervisorExitHint(t *testing.T) {
	t.Parallel()
	const oom = "out-of-memory killer"
	tests := []struct {
		name     string
		script   string
		memory   string // MEMORY in the child's environment; "" for none
		kill     bool   // the test sends SIGKILL once the child printed "ready"
		wantHint string // a part of the hint; "" for no hint
		noHint   string // must not be in the hint
	}{
		{name: "normal exit", script: "exit 0", memory: "16Gi"},
		{name: "exit code", script: "exit 3", memory: "16Gi"},
		{name: "SIGTERM", script: "kill -TERM $$", memory: "16Gi"},
		{name: "SIGKILL from outside", script: "echo ready; exec sleep 1000", kill: true, memory: "16Gi", wantHint: oom + " (the Space has MEMORY=16Gi)"},
		{name: "SIGKILL without MEMORY", script: "echo ready; exec sleep 1000", kill: true, wantHint: oom, noHint: "MEMORY"},
		{name: "MEMORY not a size", script: "kill -KILL $$", memory: "hunter2", wantHint: oom, noHint: "hunter2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sv := superviseScript(t, tt.script, func(s *Supervisor) {
				s.Env = os.Environ()
				if tt.memory != "" {
					s.Env = append(s.Env, "MEMORY="+tt.memory)
				}
			})
			pid := sv.Start(t)
			if tt.kill {
				sv.WaitLine(t, "ready")
				if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
			}
			ev := sv.Exit(t)
			if ev.PeakRSS <= 0 {
				t.Errorf("got peak RSS %d, want > 0 for a child that ran", ev.PeakRSS)
			}
			rec := sv.exitRecord(t)
			hint, _ := rec["hint"].(string)
			if hint != ev.Hint {
				t.Errorf("got log hint %q, want the event's %q", hint, ev.Hint)
			}
			if _, ok := rec["peak_rss"].(string); !ok {
				t.Errorf("got exit record %v, want peak_rss", rec)
			}
			switch {
			case tt.wantHint == "" && ev.Hint != "":
				t.Errorf("got hint %q, want none", ev.Hint)
			case tt.wantHint != "" && !strings.Contains(ev.Hint, tt.wantHint):
				t.Errorf("got hint %q, want one containing %q", ev.Hint, tt.wantHint)
			case tt.noHint != "" && strings.Contains(ev.Hint, tt.noHint):
				t.Errorf("got hint %q, want it without %q", ev.Hint, tt.noHint)
			}
			if le := sv.s.Status().LastExit; le == nil || le.Hint != ev.Hint || le.PeakRSSBytes != ev.PeakRSS {
				t.Errorf("got last exit %+v, want hint %q and peak %d", le, ev.Hint, ev.PeakRSS)
			}
		})
	}
}

// TestSupervisorStopKillGetsNoHint: the SIGKILL of stop's escalation is the
// gateway's own, so it is not blamed on the out-of-memory killer.
func TestSupervisorStopKillGetsNoHint(t *testing.T) {
	t.Parallel()
	sv := superviseScript(t, `trap '' TERM; echo ready; exec sleep 1000`, func(s *Supervisor) {
		s.Env = append(os.Environ(), "MEMORY=16Gi")
		s.StopTimeout = 50 * time.Millisecond
	})
	sv.Start(t)
	sv.WaitLine(t, "ready")
	sv.Stop(t)
	ev := sv.Exit(t)
	if ev.Signal != "SIGKILL" || ev.Hint != "" || ev.PeakRSS <= 0 {
		t.Errorf("got signal %q hint %q peak %d, want SIGKILL, no hint, a peak", ev.Signal, ev.Hint, ev.PeakRSS)
	}
	if rec := sv.exitRecord(t); rec["hint"] != nil || rec["peak_rss"] == nil {
		t.Errorf("got exit record %v, want peak_rss and no hint", rec)
	}
	if le := sv.s.Status().LastExit; le == nil || le.Hint != "" || le.PeakRSS == "" {
		t.Errorf("got last exit %+v, want a peak and no hint", le)
	}
}

func TestFormatBytes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		n    int64
		want string
	}{
		{name: "KiB", n: 812 << 10, want: "812KiB"},
		{name: "one MiB", n: 1 << 20, want: "1MiB"},
		{name: "MiB rounded", n: 312<<20 + 600<<10, want: "313MiB"},
		{name: "GiB", n: 1<<30 + 512<<20, want: "1.5GiB"},
		{name: "large", n: 15<<30 + 820<<20, want: "15.8GiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := formatBytes(tt.n); got != tt.want {
				t.Errorf("formatBytes(%d): got %q, want %q", tt.n, got, tt.want)
			}
		})
	}
}

func TestMemoryLimit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  []string
		want string
	}{
		{name: "unset", env: []string{"PATH=/bin"}, want: ""},
		{name: "nil env", env: nil, want: ""},
		{name: "Space value", env: []string{"MEMORY=16Gi"}, want: "16Gi"},
		{name: "last wins", env: []string{"MEMORY=8Gi", "MEMORY=32Gi"}, want: "32Gi"},
		{name: "decimal", env: []string{"MEMORY=1.5GB"}, want: "1.5GB"},
		{name: "prefix only", env: []string{"MEMORY_LIMIT=4Gi", "XMEMORY=1Gi"}, want: ""},
		{name: "not a size", env: []string{"MEMORY=sk-secret"}, want: ""},
		{name: "empty", env: []string{"MEMORY="}, want: ""},
		{name: "trailing text", env: []string{"MEMORY=16Gi; rm -rf"}, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := memoryLimit(tt.env); got != tt.want {
				t.Errorf("memoryLimit(%q): got %q, want %q", tt.env, got, tt.want)
			}
		})
	}
}
