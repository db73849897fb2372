package supervise

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hfgate/hfgate/logging/logtest"
)

// supervised is a Supervisor under test with its events turned into channels.
type supervised struct {
	s      *Supervisor
	logs   *logtest.Sink
	starts chan int
	exits  chan Exit
	cancel context.CancelFunc
	done   chan error
}

// superviseScript builds a Supervisor running `/bin/sh -c script`; adjust
// changes fields before Run. The supervisor is stopped at the end of the
// test at the latest.
func superviseScript(t *testing.T, script string, adjust func(*Supervisor)) *supervised {
	t.Helper()
	return supervise(t, []string{"/bin/sh", "-c", script}, adjust)
}

func supervise(t *testing.T, args []string, adjust func(*Supervisor)) *supervised {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	sv := &supervised{
		logs:   logtest.NewSink(),
		starts: make(chan int, 64),
		exits:  make(chan Exit, 64),
		cancel: cancel,
		done:   make(chan error, 1),
	}
	sv.s = &Supervisor{
		Args:        args,
		Logger:      sv.logs.RawLogger(),
		StopTimeout: 5 * time.Second,
		MinBackoff:  time.Hour, // tests that want restarts lower this
		MaxBackoff:  time.Hour,
		// Channels are buffered; when full, Run waits for the test (or for
		// the end of the test).
		OnStart: func(pid int) { sendOrDone(ctx, sv.starts, pid) },
		OnExit:  func(ev Exit) { sendOrDone(ctx, sv.exits, ev) },
	}
	if adjust != nil {
		adjust(sv.s)
	}
	go func() { sv.done <- sv.s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-sv.done:
		case <-time.After(30 * time.Second):
			t.Errorf("Run did not return 30s after cancel")
		}
	})
	return sv
}

// sendOrDone delivers v unless ctx is done and ch is full.
func sendOrDone[T any](ctx context.Context, ch chan<- T, v T) {
	select {
	case ch <- v: // buffered: also after cancel (the final exit event)
		return
	default:
	}
	select {
	case ch <- v:
	case <-ctx.Done():
	}
}

// Start waits for the next start and returns the PID.
func (sv *supervised) Start(t *testing.T) int {
	t.Helper()
	select {
	case pid := <-sv.starts:
		return pid
	default:
	}
	select {
	case pid := <-sv.starts:
		return pid
	case err := <-sv.done:
		t.Fatalf("Run returned %v before the child started", err)
	case <-time.After(10 * time.Second):
		t.Fatal("child not started after 10s")
	}
	return 0
}

// Exit waits for the next exit event.
func (sv *supervised) Exit(t *testing.T) Exit {
	t.Helper()
	select {
	case ev := <-sv.exits: // also after Run returned
		return ev
	default:
	}
	select {
	case ev := <-sv.exits:
		return ev
	case err := <-sv.done:
		t.Fatalf("Run returned %v before the child exited", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no exit event after 10s")
	}
	return Exit{}
}

// Stop cancels Run and waits for it to return.
func (sv *supervised) Stop(t *testing.T) {
	t.Helper()
	sv.cancel()
	select {
	case err := <-sv.done:
		sv.done <- err // for the cleanup
		if err != nil {
			t.Fatalf("Run: got error %v, want nil", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return 20s after cancel")
	}
}

// WaitLine waits until the child has printed a line starting with prefix and
// returns the rest of it.
func (sv *supervised) WaitLine(t *testing.T, prefix string) string {
	t.Helper()
	r := sv.logs.Wait(t, "upstream", func(r map[string]any) bool {
		line, _ := r["line"].(string)
		return strings.HasPrefix(line, prefix)
	})
	return strings.TrimPrefix(r["line"].(string), prefix)
}

// jsonObject marshals v and decodes it again as a JSON object, to check the
// keys a client sees; b is the JSON, for messages.
func jsonObject(t *testing.T, v any) (b []byte, m map[string]any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return b, m
}

func parsePID(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		t.Fatalf("not a number: %q", s)
	}
	return n
}

func TestSupervisorRelaysOutput(t *testing.T) {
	t.Parallel()
	sv := superviseScript(t, `echo out1; echo err1 >&2; printf 'out2\r\n'; printf 'tail'`, nil)
	pid := sv.Start(t)
	ev := sv.Exit(t)
	if ev.PID != pid || ev.Code != 0 {
		t.Errorf("got exit pid=%d code=%d, want pid=%d code=0", ev.PID, ev.Code, pid)
	}
	// Output is relayed before the exit is reported.
	var got []string
	for _, r := range upstreamLines(t, sv.logs, "") {
		got = append(got, r["stream"].(string)+":"+r["line"].(string))
		if r["source"] != "upstream" {
			t.Errorf("got source %v, want upstream", r["source"])
		}
	}
	slices.Sort(got) // the two streams are independent
	want := []string{"stderr:err1", "stdout:out1", "stdout:out2", "stdout:tail"}
	if !slices.Equal(got, want) {
		t.Errorf("got lines %q, want %q", got, want)
	}
	var stdout []string
	for _, r := range upstreamLines(t, sv.logs, "stdout") {
		stdout = append(stdout, r["line"].(string))
	}
	if want := []string{"out1", "out2", "tail"}; !slices.Equal(stdout, want) {
		t.Errorf("got stdout %q in this order, want %q", stdout, want)
	}

	started := sv.logs.Wait(t, "upstream started", nil)
	if started["cmd"] != "sh" || started["pid"] != float64(pid) || started["restarts"] != float64(0) {
		t.Errorf("got start record %v, want cmd=sh pid=%d restarts=0", started, pid)
	}
	for _, r := range sv.logs.Records(t, "") {
		if r["msg"] != "upstream" {
			for k, v := range r {
				if s, ok := v.(string); ok && strings.Contains(s, "echo") {
					t.Errorf("record %q attr %s = %q: the command line must not be logged", r["msg"], k, s)
				}
			}
		}
	}
	exited := sv.logs.Wait(t, "upstream exited", nil)
	if exited["level"] != "WARN" || exited["code"] != float64(0) || exited["next_attempt"] == nil {
		t.Errorf("got exit record %v, want WARN with code=0 and next_attempt", exited)
	}
}

func TestSupervisorLongLineIsCut(t *testing.T) {
	t.Parallel()
	sv := superviseScript(t, `head -c 10485760 /dev/zero | tr '\0' x; echo; echo after`, func(s *Supervisor) {
		s.MaxLineBytes = 1000
	})
	sv.Start(t)
	sv.Exit(t)
	want := []relayedLine{{strings.Repeat("x", 1000), true}, {"after", false}}
	if got := relayed(t, sv.logs); !slices.Equal(got, want) {
		t.Errorf("got %d lines, want a 1000-byte truncated line then %q", len(got), "after")
	}
}

func TestSupervisorExitEvent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		script     string
		wantCode   int
		wantSignal string
	}{
		{name: "success", script: "exit 0", wantCode: 0},
		{name: "exit code", script: "exit 3", wantCode: 3},
		{name: "killed", script: "kill -KILL $$", wantCode: -1, wantSignal: "SIGKILL"},
		{name: "terminated", script: "kill -TERM $$", wantCode: -1, wantSignal: "SIGTERM"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sv := superviseScript(t, tt.script, nil)
			pid := sv.Start(t)
			ev := sv.Exit(t)
			if ev.PID != pid || ev.Code != tt.wantCode || ev.Signal != tt.wantSignal || ev.Err != nil {
				t.Errorf("got pid=%d code=%d signal=%q err=%v, want pid=%d code=%d signal=%q err=nil",
					ev.PID, ev.Code, ev.Signal, ev.Err, pid, tt.wantCode, tt.wantSignal)
			}
			if ev.NextAttempt.IsZero() {
				t.Error("got zero NextAttempt while supervising, want the next start time")
			}
			rec := sv.logs.Wait(t, "upstream exited", nil)
			if tt.wantSignal != "" {
				if rec["signal"] != tt.wantSignal || rec["code"] != nil {
					t.Errorf("got exit record %v, want signal=%s and no code", rec, tt.wantSignal)
				}
			} else if rec["code"] != float64(tt.wantCode) {
				t.Errorf("got exit record %v, want code=%d", rec, tt.wantCode)
			}
			sv.Stop(t)
			// Reaped: no zombie left behind.
			if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
				t.Errorf("kill(%d, 0) after Run: got %v, want ESRCH", pid, err)
			}
		})
	}
}

// jitterRecorder records the backoff delays it is asked to jitter and
// returns them unchanged.
type jitterRecorder struct {
	mu     sync.Mutex
	delays []time.Duration
}

func (j *jitterRecorder) Jitter(d time.Duration) time.Duration {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.delays = append(j.delays, d)
	return d
}

func (j *jitterRecorder) Delays() []time.Duration {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.delays)
}

func TestSupervisorBackoff(t *testing.T) {
	t.Parallel()
	const ms = time.Millisecond
	tests := []struct {
		name        string
		script      string
		stableAfter time.Duration
		healthy     []int // runs marked Healthy (from OnStart, so before their exit is handled)
		want        []time.Duration
	}{
		{
			name:        "doubles up to the cap",
			script:      "exit 1",
			stableAfter: time.Hour,
			want:        []time.Duration{5 * ms, 10 * ms, 20 * ms, 40 * ms, 40 * ms, 40 * ms},
		},
		{
			name:        "every run stable",
			script:      "exit 1",
			stableAfter: time.Nanosecond,
			want:        []time.Duration{5 * ms, 5 * ms, 5 * ms, 5 * ms, 5 * ms, 5 * ms},
		},
		{
			// The third run lasts long enough to count as stable, so the
			// backoff starts over after it.
			name: "resets after a stable run",
			script: `n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count
				if [ $n -eq 3 ]; then sleep 1; fi; exit 1`,
			stableAfter: 500 * ms,
			want:        []time.Duration{5 * ms, 10 * ms, 5 * ms, 10 * ms, 20 * ms, 40 * ms},
		},
		{
			// Runs 1 and 2 passed their health check: each starts the backoff over.
			name:        "resets after a healthy run",
			script:      "exit 1",
			stableAfter: time.Hour,
			healthy:     []int{1, 2},
			want:        []time.Duration{5 * ms, 5 * ms, 5 * ms, 10 * ms, 20 * ms, 40 * ms},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var j jitterRecorder
			sv := superviseScript(t, tt.script, func(s *Supervisor) {
				s.Dir = t.TempDir()
				s.MinBackoff = 5 * ms
				s.MaxBackoff = 40 * ms
				s.StableAfter = tt.stableAfter
				s.Jitter = j.Jitter
				start, run := s.OnStart, 0
				s.OnStart = func(pid int) {
					if slices.Contains(tt.healthy, run) {
						s.Healthy()
					}
					run++
					start(pid)
				}
			})
			for i := range tt.want {
				sv.Start(t)
				ev := sv.Exit(t)
				if ev.Restarts != i {
					t.Errorf("exit %d: got Restarts %d, want %d", i, ev.Restarts, i)
				}
			}
			sv.Stop(t)
			if got := j.Delays(); !slices.Equal(got[:min(len(got), len(tt.want))], tt.want) {
				t.Errorf("got delays %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSupervisorNegativeJitterMeansNoWait(t *testing.T) {
	t.Parallel()
	sv := superviseScript(t, "exit 1", func(s *Supervisor) {
		s.Jitter = func(time.Duration) time.Duration { return -time.Hour }
	})
	sv.Start(t)
	ev := sv.Exit(t)
	sv.Start(t) // despite MinBackoff of an hour
	if ev.NextAttempt.After(time.Now()) {
		t.Errorf("got NextAttempt %v in the future, want no wait", ev.NextAttempt)
	}
}

func TestSupervisorStopSignalsWholeGroup(t *testing.T) {
	t.Parallel()
	// The child and its own child both trap SIGTERM and say so; the leader
	// waits for the grandchild so that both messages are written.
	script := `
		sh -c 'trap "echo grandchild got TERM; exit 0" TERM; echo grandchild $$; sleep 1000 & wait' &
		gc=$!
		trap 'echo leader got TERM; wait $gc; exit 0' TERM
		sleep 1000 &
		echo sleeper $!
		wait`
	sv := superviseScript(t, script, nil)
	pid := sv.Start(t)
	gc := parsePID(t, sv.WaitLine(t, "grandchild "))
	sleeper := parsePID(t, sv.WaitLine(t, "sleeper "))
	gcw, sleeperw := watchProc(t, gc), watchProc(t, sleeper)

	sv.Stop(t)
	ev := sv.Exit(t)
	if ev.PID != pid || ev.Code != 0 || ev.Signal != "" || !ev.NextAttempt.IsZero() {
		t.Errorf("got exit pid=%d code=%d signal=%q next=%v, want pid=%d code=0, no signal, zero NextAttempt",
			ev.PID, ev.Code, ev.Signal, ev.NextAttempt, pid)
	}
	sv.WaitLine(t, "leader got TERM")
	sv.WaitLine(t, "grandchild got TERM")
	exited := sv.logs.Wait(t, "upstream exited", nil)
	if exited["level"] != "INFO" || exited["next_attempt"] != nil {
		t.Errorf("got exit record %v, want INFO without next_attempt on shutdown", exited)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("kill(%d, 0) after Run: got %v, want ESRCH", pid, err)
	}
	gcw.awaitGone(t)
	sleeperw.awaitGone(t)
	if st := sv.s.Status(); st.State != Stopped || st.PID != 0 {
		t.Errorf("got status %+v after Run, want stopped without pid", st)
	}
}

func TestSupervisorStopKillsAfterTimeout(t *testing.T) {
	t.Parallel()
	// SIGTERM is ignored by the child and, inherited, by its background job.
	script := `trap '' TERM; sleep 1000 & echo sleeper $!; wait`
	sv := superviseScript(t, script, func(s *Supervisor) { s.StopTimeout = 50 * time.Millisecond })
	pid := sv.Start(t)
	sleeper := parsePID(t, sv.WaitLine(t, "sleeper "))
	w := watchProc(t, sleeper)

	sv.Stop(t)
	ev := sv.Exit(t)
	if ev.PID != pid || ev.Code != -1 || ev.Signal != "SIGKILL" {
		t.Errorf("got exit pid=%d code=%d signal=%q, want pid=%d code=-1 signal=SIGKILL", ev.PID, ev.Code, ev.Signal, pid)
	}
	sv.logs.Wait(t, "upstream did not stop in time, killing it", func(r map[string]any) bool { return r["level"] == "WARN" })
	w.awaitGone(t)
}

func TestSupervisorKillsOrphansWhenChildExits(t *testing.T) {
	t.Parallel()
	// The leader exits on its own, leaving a background job in its group.
	sv := superviseScript(t, `sleep 1000 & echo sleeper $!; exit 7`, nil)
	sv.Start(t)
	sleeper := parsePID(t, sv.WaitLine(t, "sleeper "))
	w := watchProc(t, sleeper)
	if ev := sv.Exit(t); ev.Code != 7 {
		t.Errorf("got code %d, want 7", ev.Code)
	}
	// The exit is reported once the orphan has released the output pipes.
	w.awaitGone(t)
}

func TestSupervisorRelaysAllOutputBeforeReportingExit(t *testing.T) {
	t.Parallel()
	// The pipe buffer lets the child exit while thousands of lines are still
	// unread: the exit is reported only after they are all relayed.
	const n = 20000
	sv := superviseScript(t, fmt.Sprintf("seq 1 %d; exit 0", n), nil)
	sv.Start(t)
	sv.Exit(t)
	lines := upstreamLines(t, sv.logs, "stdout")
	if len(lines) != n || lines[n-1]["line"] != strconv.Itoa(n) {
		t.Errorf("got %d lines when the exit was reported, want %d ending with %d", len(lines), n, n)
	}
}

func TestSupervisorStopsWaitingForEscapedPipeHolder(t *testing.T) {
	t.Parallel()
	// The grandchild leaves the child's group with setsid, so the group kill
	// misses it, and it keeps the child's stdout open. It says so once it
	// has left; then the test tells the child to exit.
	script := `trap 'exit 5' USR1
		setsid sh -c 'echo escaped $$; exec sleep 1000' &
		sleep 1000 & wait`
	sv := superviseScript(t, script, func(s *Supervisor) { s.StopTimeout = 50 * time.Millisecond })
	pid := sv.Start(t)
	escaped := parsePID(t, sv.WaitLine(t, "escaped "))
	w := watchProc(t, escaped)
	t.Cleanup(w.kill)
	if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}

	if ev := sv.Exit(t); ev.Code != 5 {
		t.Errorf("got code %d, want 5", ev.Code)
	}
	rec := sv.logs.Wait(t, "upstream output left open", nil)
	if rec["level"] != "WARN" {
		t.Errorf("got level %v, want WARN", rec["level"])
	}
}

func TestSupervisorStartFailure(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		args   []string
		adjust func(*Supervisor)
	}{
		{name: "no such program", args: []string{"/nonexistent/hfgate-test-program"}},
		{name: "not in PATH", args: []string{"hfgate-test-no-such-program", "--secret-flag"}},
		{
			name:   "no such directory",
			args:   []string{"/bin/sh", "-c", "exit 0"},
			adjust: func(s *Supervisor) { s.Dir = "/nonexistent/hfgate-test-dir" },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var j jitterRecorder
			sv := supervise(t, tt.args, func(s *Supervisor) {
				s.MinBackoff = time.Millisecond
				s.MaxBackoff = time.Millisecond
				s.Jitter = j.Jitter
				if tt.adjust != nil {
					tt.adjust(s)
				}
			})
			for i := range 2 { // reported, then retried
				ev := sv.Exit(t)
				if ev.Err == nil || ev.PID != 0 || ev.Code != -1 || ev.RunTime != 0 || ev.Restarts != i {
					t.Errorf("attempt %d: got %+v, want Err set, PID 0, Code -1, RunTime 0, Restarts %d", i, ev, i)
				}
			}
			st := sv.s.Status()
			if st.LastExit == nil || !st.LastExit.StartFailed || st.LastExit.Code != -1 {
				t.Errorf("got last exit %+v, want a start failure with code -1", st.LastExit)
			}
			rec := sv.logs.Wait(t, "upstream start failed", nil)
			if err, _ := rec["err"].(string); rec["level"] != "ERROR" || err == "" {
				t.Errorf("got record %v, want ERROR with an err attr", rec)
			}
			select {
			case pid := <-sv.starts:
				t.Errorf("got start of pid %d, want none", pid)
			default:
			}
		})
	}
}

// TestSupervisorExitsBeforeReady: Status counts the exits in a row of runs that never passed
// their health check (a crash loop), failed starts included; a healthy run starts the count
// over as soon as it is marked, and the exit of the shutdown is not counted.
func TestSupervisorExitsBeforeReady(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		healthy []int // runs marked Healthy (from OnStart, while they run)
		// want is Status().ExitsBeforeReady after each exit.
		want []int
	}{
		{name: "crash loop", args: []string{"/bin/sh", "-c", "exit 1"}, want: []int{1, 2, 3, 4}},
		{name: "failed starts count", args: []string{"/nonexistent/hfgate-test-program"}, want: []int{1, 2, 3}},
		{name: "a healthy run starts over", args: []string{"/bin/sh", "-c", "exit 1"}, healthy: []int{2}, want: []int{1, 2, 0, 1, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var (
				mu      sync.Mutex
				got     []int
				running []int // the count while each healthy run ran, after Healthy
			)
			sv := supervise(t, tt.args, func(s *Supervisor) {
				s.MinBackoff = time.Millisecond
				s.MaxBackoff = time.Millisecond
				start, exit, run := s.OnStart, s.OnExit, 0
				s.OnStart = func(pid int) {
					if slices.Contains(tt.healthy, run) {
						s.Healthy()
						mu.Lock()
						running = append(running, s.Status().ExitsBeforeReady)
						mu.Unlock()
					}
					start(pid)
				}
				s.OnExit = func(ev Exit) {
					run++
					mu.Lock()
					got = append(got, s.Status().ExitsBeforeReady)
					mu.Unlock()
					exit(ev)
				}
			})
			for range tt.want {
				sv.Exit(t)
			}
			mu.Lock()
			gotNow, runningNow := slices.Clone(got[:len(tt.want)]), slices.Clone(running)
			mu.Unlock()
			if !slices.Equal(gotNow, tt.want) {
				t.Errorf("got exits before ready %v, want %v", gotNow, tt.want)
			}
			for _, n := range runningNow {
				if n != 0 {
					t.Errorf("a run marked Healthy shows %d exits before ready, want 0", n)
				}
			}
			if len(runningNow) != len(tt.healthy) {
				t.Errorf("saw %d healthy runs, want %d", len(runningNow), len(tt.healthy))
			}
			b, m := jsonObject(t, sv.s.Status())
			if _, ok := m["exits_before_ready"]; !ok {
				t.Errorf("status JSON %s lacks exits_before_ready", b)
			}
		})
	}
}

// TestSupervisorShutdownExitNotCounted: the exit that a shutdown causes is no failure.
func TestSupervisorShutdownExitNotCounted(t *testing.T) {
	t.Parallel()
	sv := superviseScript(t, `exec sleep 1000`, nil)
	sv.Start(t)
	sv.Stop(t)
	if st := sv.s.Status(); st.LastExit == nil || st.ExitsBeforeReady != 0 {
		t.Errorf("after the shutdown: got last exit %+v and %d exits before ready, want an exit and 0", st.LastExit, st.ExitsBeforeReady)
	}
}

func TestSupervisorStatus(t *testing.T) {
	t.Parallel()
	var j jitterRecorder
	sv := superviseScript(t, `echo ready; exec sleep 1000`, func(s *Supervisor) {
		s.Jitter = j.Jitter // MinBackoff is an hour: the test ends in backoff
		if st := s.Status(); st.State != Stopped {
			t.Errorf("before Run: got state %q, want %q", st.State, Stopped)
		}
	})
	pid := sv.Start(t)
	st := sv.s.Status()
	if st.State != Running || st.PID != pid || st.Restarts != 0 || st.LastExit != nil ||
		st.StartedAt.IsZero() || !st.NextAttempt.IsZero() {
		t.Errorf("running: got %+v, want state running, pid %d, no restarts, no last exit, started_at set", st, pid)
	}
	sv.WaitLine(t, "ready")

	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	ev := sv.Exit(t)
	st = sv.s.Status()
	if st.State != Backoff || st.PID != 0 || st.NextAttempt.IsZero() || !st.NextAttempt.Equal(ev.NextAttempt) {
		t.Errorf("backoff: got %+v, want state backoff, no pid, next attempt %v", st, ev.NextAttempt)
	}
	if got := st.NextAttempt.Sub(st.LastExit.At); got != time.Hour {
		t.Errorf("got next attempt %v after the exit, want 1h", got)
	}
	if le := st.LastExit; le == nil || le.Code != -1 || le.Signal != "SIGTERM" || le.StartFailed || le.RunTime == "" {
		t.Errorf("got last exit %+v, want code -1, signal SIGTERM, run time set", le)
	}

	b, m := jsonObject(t, st)
	for _, key := range []string{"state", "restarts", "last_exit", "next_attempt", "started_at"} {
		if _, ok := m[key]; !ok {
			t.Errorf("status JSON %s: missing key %q", b, key)
		}
	}
	if _, ok := m["pid"]; ok {
		t.Errorf("status JSON %s: got pid without a running child", b)
	}
	le, _ := m["last_exit"].(map[string]any)
	for _, key := range []string{"code", "signal", "run_time", "peak_rss_bytes", "peak_rss", "at"} {
		if _, ok := le[key]; !ok {
			t.Errorf("status JSON %s: last_exit misses key %q", b, key)
		}
	}

	// A shutdown during the hour-long backoff returns at once (well within
	// Stop's 20s bound).
	sv.Stop(t)
	st = sv.s.Status()
	if st.State != Stopped || !st.NextAttempt.IsZero() || st.LastExit == nil {
		t.Errorf("stopped: got %+v, want state stopped, no next attempt, last exit kept", st)
	}
}

func TestSupervisorRestartsCountInStatus(t *testing.T) {
	t.Parallel()
	sv := superviseScript(t, `exit 2`, func(s *Supervisor) {
		s.MinBackoff = time.Millisecond
		s.MaxBackoff = time.Millisecond
	})
	for i := range 3 {
		sv.Start(t)
		if ev := sv.Exit(t); ev.Restarts != i {
			t.Errorf("exit %d: got Restarts %d, want %d", i, ev.Restarts, i)
		}
	}
	sv.Start(t) // the fourth run, the third restart
	if st := sv.s.Status(); st.Restarts != 3 {
		t.Errorf("got restarts %d, want 3", st.Restarts)
	}
	rec := sv.logs.Wait(t, "upstream started", func(r map[string]any) bool { return r["restarts"] == float64(3) })
	if rec["level"] != "INFO" {
		t.Errorf("got level %v, want INFO", rec["level"])
	}
}

func TestSupervisorConfigErrors(t *testing.T) {
	t.Parallel()
	logger := slog.New(slog.DiscardHandler)
	tests := []struct {
		name string
		s    *Supervisor
		want string
	}{
		{name: "no args", s: &Supervisor{Logger: logger}, want: "Args is empty"},
		{name: "empty program", s: &Supervisor{Args: []string{""}, Logger: logger}, want: "Args is empty"},
		{name: "no logger", s: &Supervisor{Args: []string{"true"}}, want: "no Logger"},
		{name: "negative", s: &Supervisor{Args: []string{"true"}, Logger: logger, StopTimeout: -1}, want: "StopTimeout is negative"},
		{
			name: "min above max",
			s:    &Supervisor{Args: []string{"true"}, Logger: logger, MinBackoff: time.Minute, MaxBackoff: time.Second},
			want: "MinBackoff is greater than MaxBackoff",
		},
		{
			name: "min above default max",
			s:    &Supervisor{Args: []string{"true"}, Logger: logger, MinBackoff: time.Hour},
			want: "MinBackoff is greater than MaxBackoff",
		},
		{name: "negative line size", s: &Supervisor{Args: []string{"true"}, Logger: logger, MaxLineBytes: -1}, want: "MaxLineBytes is negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.s.Run(t.Context())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestSupervisorRunTwice(t *testing.T) {
	t.Parallel()
	sv := superviseScript(t, `exec sleep 1000`, nil)
	sv.Start(t)
	err := sv.s.Run(t.Context())
	if err == nil || !strings.Contains(err.Error(), "already running") {
		t.Errorf("second Run: got %v, want an already-running error", err)
	}
}

func TestSupervisorBackoffDelay(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		n          int
		minB, maxB time.Duration
		want       time.Duration
	}{
		{name: "first", n: 0, minB: time.Second, maxB: time.Minute, want: time.Second},
		{name: "doubling", n: 3, minB: time.Second, maxB: time.Minute, want: 8 * time.Second},
		{name: "capped", n: 6, minB: time.Second, maxB: time.Minute, want: time.Minute},
		{name: "huge n", n: 1 << 30, minB: time.Second, maxB: time.Minute, want: time.Minute},
		{name: "no overflow", n: 100, minB: 3, maxB: math.MaxInt64, want: math.MaxInt64},
		{name: "equal bounds", n: 5, minB: time.Second, maxB: time.Second, want: time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := backoff(tt.n, tt.minB, tt.maxB); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSupervisorJitter(t *testing.T) {
	t.Parallel()
	const d = 10 * time.Second
	for range 1000 {
		if got := jitter(d); got < 8*time.Second || got > 12*time.Second {
			t.Fatalf("got %v, want within 20%% of %v", got, d)
		}
	}
	if got := jitter(3); got != 3 {
		t.Errorf("got %v, want tiny durations unchanged", got)
	}
}
