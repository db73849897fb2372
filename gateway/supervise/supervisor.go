package supervise

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// State is the lifecycle state of a Supervisor's child process.
type State string

// Supervisor states, as reported by Supervisor.Status.
const (
	// Starting means a start attempt is under way.
	Starting State = "starting"
	// Running means the child process is running.
	Running State = "running"
	// Backoff means the child exited (or failed to start) and the supervisor
	// waits before the next attempt.
	Backoff State = "backoff"
	// Stopping means Run's context is done and the child's process group is
	// being stopped.
	Stopping State = "stopping"
	// Stopped means Run is not running (not yet, or no longer).
	Stopped State = "stopped"
)

// Supervisor starts one child process, relays its output, restarts it after
// exits with capped jittered exponential backoff, and stops its whole process
// group on shutdown.
//
// The child runs in its own process group. When the child (the group leader)
// exits, whatever is left of its group (background jobs of a shell, workers
// of a server) is killed with SIGKILL before the next attempt, so orphans
// cannot keep holding the port or the output pipes.
//
// Supervisor runs on Linux and macOS (proc_linux.go, proc_darwin.go: on
// macOS a child outlives a gateway killed with SIGKILL). Set the fields,
// then call Run once; Status may be called from any goroutine.
type Supervisor struct {
	// Args is the command line: Args[0] is the program (looked up in the
	// gateway's own PATH when it has no slash), the rest its arguments.
	// Required.
	Args []string

	// Dir is the child's working directory. Empty means the gateway's
	// current directory.
	Dir string

	// Env is the child's full environment, as "KEY=value" strings. Nil means
	// the gateway's own environment. The caller adds PYTHONUNBUFFERED=1 so
	// that a Python child's output is relayed as it is written. Its MEMORY
	// (set by Hugging Face on a Space, e.g. "16Gi") is quoted in the hint
	// for a SIGKILL the gateway did not send; with nil Env there is none.
	Env []string

	// Logger receives the supervisor's events and the child's output, one
	// record per line with message "upstream" and attributes
	// source=upstream, stream=stdout|stderr, line=<text>. Required.
	//
	// Security: the child's text and error strings are passed only as
	// attribute values; the handler is expected to strip control
	// characters and mask secrets.
	Logger *slog.Logger

	// StopTimeout is how long the child's process group gets between
	// SIGTERM and SIGKILL on shutdown. Zero means 5s.
	StopTimeout time.Duration

	// MinBackoff is the wait before the first restart; each further
	// consecutive failure doubles it up to MaxBackoff. Zero means 500ms, or
	// MaxBackoff when that is shorter.
	MinBackoff time.Duration

	// MaxBackoff caps the wait between restarts (before jitter). Zero means
	// 30s.
	MaxBackoff time.Duration

	// StableAfter is the run time after which an exit is not counted as a
	// consecutive failure: the next wait starts again at MinBackoff. A run
	// marked Healthy counts as stable whatever its length. Zero means 30s.
	StableAfter time.Duration

	// MaxLineBytes bounds one relayed line; longer lines are cut, logged with
	// truncated=true, and the rest up to the next newline is discarded.
	// Zero means 16 KiB.
	MaxLineBytes int

	// OnStart, if set, is called with the child's PID after each successful
	// start. It runs on Run's goroutine and must return quickly.
	OnStart func(pid int)

	// OnExit, if set, is called after each exit or failed start, once the
	// child's output has been relayed and before the backoff wait. It runs
	// on Run's goroutine and must return quickly.
	OnExit func(Exit)

	// Jitter, if set, maps the computed backoff to the wait actually used
	// (negative results count as zero). Nil means a uniform random
	// adjustment of up to +-20%.
	Jitter func(d time.Duration) time.Duration

	healthy atomic.Bool // the current run was marked Healthy

	mu     sync.Mutex
	active bool // Run is in progress
	status Status
}

// Exit describes one exit of the child, or one failed start.
type Exit struct {
	// PID is the child's process ID; 0 when the start failed.
	PID int
	// Code is the exit status, or -1 when the child was killed by a signal
	// or failed to start.
	Code int
	// Signal names the signal that killed the child (for example
	// "SIGKILL"); empty otherwise.
	Signal string
	// RunTime is how long the child ran; 0 when the start failed.
	RunTime time.Duration
	// PeakRSS is the child's peak resident set size in bytes (ru_maxrss
	// from the wait that reaped it); 0 when the start failed. It covers the
	// child and the descendants it reaped itself, not grandchildren that
	// outlived it, and is never below the gateway's own peak when the child
	// started (see peakRSS).
	PeakRSS int64
	// Hint says what most likely killed the child when the exit alone does
	// not: set for a SIGKILL the gateway did not send (on a Space, usually
	// the out-of-memory killer); empty otherwise.
	Hint string
	// Err is the start error; nil when the child started.
	Err error
	// Restarts is how many restarts preceded this run (0 for the first).
	Restarts int
	// NextAttempt is when the next start is due; zero when the supervisor
	// is stopping.
	NextAttempt time.Time
}

// Status is a snapshot of a Supervisor, shaped for the /ready JSON.
type Status struct {
	State State `json:"state"`
	// PID is the running child's process ID; 0 (omitted) when none runs.
	PID int `json:"pid,omitempty"`
	// Restarts counts restarts since Run began.
	Restarts int `json:"restarts"`
	// ExitsBeforeReady counts the exits (and failed starts) in a row of
	// runs that were never marked Healthy: 0 (omitted) once a run passes
	// its health check. It is how a crash loop shows: a backend that keeps
	// dying before it can serve, such as one whose import fails.
	ExitsBeforeReady int `json:"exits_before_ready,omitempty"`
	// LastExit describes the latest exit or failed start; nil before any.
	LastExit *ExitSummary `json:"last_exit,omitempty"`
	// NextAttempt is when the next start is due, while in backoff.
	NextAttempt time.Time `json:"next_attempt,omitzero"`
	// StartedAt is when the current (or latest) child started.
	StartedAt time.Time `json:"started_at,omitzero"`
}

// ExitSummary summarises one exit for Status. It never carries error text,
// because the status is shown to clients.
type ExitSummary struct {
	// Code is the exit status, or -1 (killed by a signal, or start failed).
	Code int `json:"code"`
	// Signal names the signal that killed the child, if one did.
	Signal string `json:"signal,omitempty"`
	// StartFailed is true when the child could not be started at all.
	StartFailed bool `json:"start_failed,omitempty"`
	// RunTime is how long the child ran, rounded to milliseconds, as a Go
	// duration string such as "1.5s".
	RunTime string `json:"run_time"`
	// PeakRSSBytes is the child's peak resident set size in bytes (see
	// Exit.PeakRSS); 0 (omitted) when the start failed.
	PeakRSSBytes int64 `json:"peak_rss_bytes,omitempty"`
	// PeakRSS is PeakRSSBytes for people, in binary units ("312MiB",
	// "15.8GiB"), as in the "upstream exited" log line.
	PeakRSS string `json:"peak_rss,omitempty"`
	// Hint is Exit.Hint: a fixed sentence (with the Space's MEMORY value at
	// most), never error text.
	Hint string `json:"hint,omitempty"`
	// At is when the exit was observed.
	At time.Time `json:"at"`
}

// settings are a Supervisor's tunables with defaults applied.
type settings struct {
	stopTimeout  time.Duration
	minBackoff   time.Duration
	maxBackoff   time.Duration
	stableAfter  time.Duration
	maxLineBytes int
	jitter       func(time.Duration) time.Duration
}

// withDefaults checks the configuration and returns it with zero values
// replaced by their defaults.
func (s *Supervisor) withDefaults() (settings, error) {
	var errs []error
	if len(s.Args) == 0 || s.Args[0] == "" {
		errs = append(errs, errors.New("no command (Args is empty)"))
	}
	if s.Logger == nil {
		errs = append(errs, errors.New("no Logger"))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"StopTimeout", s.StopTimeout},
		{"MinBackoff", s.MinBackoff},
		{"MaxBackoff", s.MaxBackoff},
		{"StableAfter", s.StableAfter},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s is negative", d.name))
		}
	}
	if s.MaxLineBytes < 0 {
		errs = append(errs, errors.New("MaxLineBytes is negative"))
	}
	c := settings{
		stopTimeout:  cmp.Or(s.StopTimeout, 5*time.Second),
		maxBackoff:   cmp.Or(s.MaxBackoff, 30*time.Second),
		stableAfter:  cmp.Or(s.StableAfter, 30*time.Second),
		maxLineBytes: cmp.Or(s.MaxLineBytes, 16<<10),
		jitter:       s.Jitter,
	}
	if c.jitter == nil {
		c.jitter = jitter
	}
	c.minBackoff = cmp.Or(s.MinBackoff, min(500*time.Millisecond, c.maxBackoff))
	if c.minBackoff > c.maxBackoff && s.MinBackoff >= 0 && s.MaxBackoff >= 0 {
		errs = append(errs, errors.New("MinBackoff is greater than MaxBackoff"))
	}
	if err := errors.Join(errs...); err != nil {
		return settings{}, fmt.Errorf("configure supervisor: %w", err)
	}
	return c, nil
}

// jitter spreads d uniformly over [0.8d, 1.2d] so that restarts of
// many gateways do not synchronise.
func jitter(d time.Duration) time.Duration {
	spread := int64(d) / 5
	if spread <= 0 {
		return d
	}
	return d + time.Duration(rand.Int64N(2*spread+1)-spread)
}

// backoff returns min(maxB, minB*2^n) without overflowing.
func backoff(n int, minB, maxB time.Duration) time.Duration {
	d := minB
	for i := 0; i < n && d < maxB; i++ {
		if d > maxB/2 {
			return maxB
		}
		d *= 2
	}
	return min(d, maxB)
}

// Status returns a snapshot of the supervisor. It is safe for concurrent use.
func (s *Supervisor) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.status
	if st.State == "" {
		st.State = Stopped
	}
	if st.LastExit != nil {
		le := *st.LastExit
		st.LastExit = &le
	}
	return st
}

// update changes the status under the lock.
func (s *Supervisor) update(f func(st *Status)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.status)
}

// Healthy marks the running child as started successfully (the gateway calls it when the
// child passes its health check): when it exits, the next restart waits MinBackoff again. A
// backend killed while serving (the out-of-memory killer, a poison request) so comes back at
// once, while one that cannot get as far as its health check keeps backing off. Safe to call
// from any goroutine; a call while no child runs has no effect on later runs.
func (s *Supervisor) Healthy() {
	s.healthy.Store(true)
	s.update(func(st *Status) {
		if st.State == Running {
			st.ExitsBeforeReady = 0
		}
	})
}

// Run supervises the child until ctx is done: it starts the child, relays its
// output, waits for it to exit, waits out the backoff and starts it again.
// When ctx is done it sends SIGTERM to the child's process group, SIGKILL to
// the group after StopTimeout, reaps the child, waits for the output relays
// and returns nil. A shutdown during the backoff wait returns at once.
//
// Run returns an error only for an unusable configuration (for example empty
// Args or a nil Logger) or when another Run of the same Supervisor is in
// progress. Start failures are reported through OnExit and the log, and
// retried like exits.
//
// Run must not be called on a goroutine that has locked its OS thread with
// runtime.LockOSThread and may exit while locked: see startChild.
func (s *Supervisor) Run(ctx context.Context) error {
	cfg, err := s.withDefaults()
	if err != nil {
		return err
	}
	s.mu.Lock()
	if s.active {
		s.mu.Unlock()
		return errors.New("run supervisor: already running")
	}
	s.active = true
	s.status = Status{State: Starting}
	s.mu.Unlock()
	defer s.update(func(st *Status) {
		s.active = false
		st.State = Stopped
		st.PID = 0
		st.NextAttempt = time.Time{}
	})

	failures := 0 // consecutive short runs, the backoff exponent
	for restarts := 0; ctx.Err() == nil; restarts++ {
		ev := s.runOnce(ctx, cfg, restarts)
		exitAt := time.Now()

		stopping := ctx.Err() != nil
		healthy := ev.Err == nil && s.healthy.Load()
		var delay time.Duration
		if healthy || (ev.Err == nil && ev.RunTime >= cfg.stableAfter) {
			failures = 0
		}
		if !stopping {
			delay = max(cfg.jitter(backoff(failures, cfg.minBackoff, cfg.maxBackoff)), 0)
			failures++
			ev.NextAttempt = exitAt.Add(delay)
		}
		s.update(func(st *Status) {
			st.PID = 0
			st.LastExit = &ExitSummary{
				Code:         ev.Code,
				Signal:       ev.Signal,
				StartFailed:  ev.Err != nil,
				RunTime:      ev.RunTime.Round(time.Millisecond).String(),
				PeakRSSBytes: ev.PeakRSS,
				Hint:         ev.Hint,
				At:           exitAt,
			}
			if ev.PeakRSS > 0 {
				st.LastExit.PeakRSS = formatBytes(ev.PeakRSS)
			}
			st.NextAttempt = ev.NextAttempt
			switch {
			case healthy:
				st.ExitsBeforeReady = 0
			case !stopping:
				st.ExitsBeforeReady++
			}
			if !stopping {
				st.State = Backoff
			}
		})
		s.logExit(ctx, ev, stopping)
		if s.OnExit != nil {
			s.OnExit(ev)
		}
		if stopping {
			return nil
		}

		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-timer.C:
		}
	}
	return nil
}

// runOnce starts the child, waits for it to exit (stopping it if ctx is done
// first) and for its output to be relayed, and describes the exit.
// NextAttempt is left for the caller.
func (s *Supervisor) runOnce(ctx context.Context, cfg settings, restarts int) Exit {
	s.healthy.Store(false)
	s.update(func(st *Status) {
		st.State = Starting
		st.Restarts = restarts
		st.NextAttempt = time.Time{}
	})
	c, err := startChild(ctx, s, cfg)
	if err != nil {
		return Exit{Code: -1, Err: err, Restarts: restarts}
	}
	started := time.Now()
	s.update(func(st *Status) {
		st.State = Running
		st.PID = c.pid
		st.StartedAt = started
	})
	s.Logger.LogAttrs(ctx, slog.LevelInfo, "upstream started",
		slog.Int("pid", c.pid),
		// Only the program's base name: the arguments may hold secrets.
		slog.String("cmd", filepath.Base(s.Args[0])),
		slog.Int("restarts", restarts),
	)
	if s.OnStart != nil {
		s.OnStart(c.pid)
	}

	select {
	case <-c.exited:
	case <-ctx.Done():
		s.stop(ctx, c, cfg.stopTimeout)
	}
	runTime := time.Since(started)
	if !c.drain(cfg.stopTimeout) {
		s.Logger.LogAttrs(ctx, slog.LevelWarn, "upstream output left open",
			slog.Int("pid", c.pid),
			slog.String("reason", "a process outside the child's group still holds its stdout or stderr"),
		)
	}

	ev := Exit{PID: c.pid, Code: -1, RunTime: runTime, Restarts: restarts}
	if ps := c.cmd.ProcessState; ps != nil {
		ev.Code = ps.ExitCode()
		ev.PeakRSS = peakRSS(ps)
		if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			ev.Code = -1
			ev.Signal = unix.SignalName(ws.Signal())
			if ev.Signal == "" {
				ev.Signal = fmt.Sprintf("signal %d", int(ws.Signal()))
			}
			if ws.Signal() == syscall.SIGKILL && !c.killedByUs() {
				ev.Hint = oomHint(memoryLimit(s.Env))
			}
		}
	}
	return ev
}

// stop sends SIGTERM to the child's group and, if the child has not exited
// within timeout, SIGKILL; it returns once the child is reaped.
func (s *Supervisor) stop(ctx context.Context, c *childProcess, timeout time.Duration) {
	s.update(func(st *Status) { st.State = Stopping })
	s.Logger.LogAttrs(ctx, slog.LevelInfo, "stopping upstream",
		slog.Int("pid", c.pid), slog.Duration("stop_timeout", timeout))
	c.signal(syscall.SIGTERM)
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-c.exited:
		return
	case <-timer.C:
	}
	s.Logger.LogAttrs(ctx, slog.LevelWarn, "upstream did not stop in time, killing it",
		slog.Int("pid", c.pid), slog.Duration("stop_timeout", timeout))
	c.signal(syscall.SIGKILL)
	// SIGKILL cannot be caught; only a process stuck in the kernel
	// (uninterruptible sleep) could delay this, and then there is nothing
	// better to do than wait for it.
	<-c.exited
}

// logExit logs one exit or failed start: at Warn (Error for a failed start)
// while supervising, at Info when the exit is part of a shutdown.
func (s *Supervisor) logExit(ctx context.Context, ev Exit, stopping bool) {
	attrs := make([]slog.Attr, 0, 9)
	if ev.Err != nil {
		attrs = append(attrs, slog.Any("err", ev.Err), slog.Int("restarts", ev.Restarts))
		if !ev.NextAttempt.IsZero() {
			attrs = append(attrs, slog.Time("next_attempt", ev.NextAttempt))
		}
		s.Logger.LogAttrs(ctx, slog.LevelError, "upstream start failed", attrs...)
		return
	}
	attrs = append(attrs, slog.Int("pid", ev.PID))
	if ev.Signal != "" {
		attrs = append(attrs, slog.String("signal", ev.Signal))
	} else {
		attrs = append(attrs, slog.Int("code", ev.Code))
	}
	attrs = append(attrs, slog.Duration("run_time", ev.RunTime))
	if ev.PeakRSS > 0 {
		attrs = append(attrs, slog.String("peak_rss", formatBytes(ev.PeakRSS)), slog.Int64("peak_rss_bytes", ev.PeakRSS))
	}
	attrs = append(attrs, slog.Int("restarts", ev.Restarts))
	level := slog.LevelInfo
	if !stopping {
		level = slog.LevelWarn
		attrs = append(attrs, slog.Time("next_attempt", ev.NextAttempt))
	}
	if ev.Hint != "" {
		attrs = append(attrs, slog.String("hint", ev.Hint))
	}
	s.Logger.LogAttrs(ctx, level, "upstream exited", attrs...)
}

// childProcess is one running child process.
type childProcess struct {
	cmd     *exec.Cmd
	pid     int // also the process group ID (Setpgid)
	exited  chan struct{}
	readers []*os.File // read ends of the stdout and stderr pipes
	relays  sync.WaitGroup

	mu     sync.Mutex
	reaped bool // the leader is (about to be) reaped: its PID may be reused
	killed bool // signal sent SIGKILL to the group (stop's escalation)
}

// startChild starts the child in a new process group with its stdout and
// stderr relayed to the logger, and a goroutine that reaps it.
func startChild(ctx context.Context, s *Supervisor, cfg settings) (*childProcess, error) {
	cmd := exec.Command(s.Args[0], s.Args[1:]...)
	cmd.Dir = s.Dir
	cmd.Env = s.Env
	// Own process group (signals reach the child's own children too, and the
	// group can be killed as a whole), and on Linux a parent-death signal:
	// see childAttr in proc_linux.go and proc_darwin.go.
	cmd.SysProcAttr = childAttr()

	// Our own pipes, not cmd.StdoutPipe: Wait must reap the child as soon
	// as it exits, while a grandchild may still hold the pipes open. The
	// relays read until EOF independently, bounded by drain.
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("start upstream: stdout pipe: %w", err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, fmt.Errorf("start upstream: stderr pipe: %w", err)
	}
	cmd.Stdout = outW // *os.File: handed to the child as is, no copying goroutine
	cmd.Stderr = errW
	err = cmd.Start()
	// The child holds its own copies of the write ends; ours would keep the
	// relays from ever seeing EOF.
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return nil, fmt.Errorf("start upstream: %w", err)
	}

	c := &childProcess{
		cmd:     cmd,
		pid:     cmd.Process.Pid,
		exited:  make(chan struct{}),
		readers: []*os.File{outR, errR},
	}
	for _, p := range []struct {
		r      *os.File
		stream string
	}{{outR, "stdout"}, {errR, "stderr"}} {
		c.relays.Add(1)
		go func() {
			defer c.relays.Done()
			relayPipe(ctx, s.Logger, p.r, p.stream, cfg.maxLineBytes)
		}()
	}
	go c.wait()
	return c, nil
}

// relayPipe runs relayLines and keeps draining the pipe if the logger panics, so
// that the child never blocks on a full pipe.
func relayPipe(ctx context.Context, logger *slog.Logger, r io.Reader, stream string, maxLine int) {
	defer func() {
		if v := recover(); v != nil {
			logger.LogAttrs(ctx, slog.LevelError, "upstream relay panicked",
				slog.String("stream", stream), slog.Any("panic", v))
			_, _ = io.Copy(io.Discard, r)
		}
	}()
	_ = relayLines(ctx, r, logger, stream, maxLine)
}

// wait reaps the child. Before reaping it kills what is left of the child's
// process group: those processes have lost their parent and would otherwise
// keep the port and the output pipes.
func (c *childProcess) wait() {
	// Wait for the exit but leave the child a zombie: while it is unreaped
	// its PID, which is also the group ID, cannot be reused, so signalling
	// the group cannot hit an unrelated process.
	err := awaitExit(c.pid)
	c.mu.Lock()
	if err == nil {
		_ = unix.Kill(-c.pid, unix.SIGKILL)
	}
	c.reaped = true
	c.mu.Unlock()
	// Always Wait, so no zombie is left; its error is the exit status,
	// read from cmd.ProcessState.
	_ = c.cmd.Wait()
	close(c.exited)
}

// signal sends sig to the child's process group, unless the child has been
// reaped (its PID could then belong to someone else).
func (c *childProcess) signal(sig syscall.Signal) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reaped {
		return
	}
	if unix.Kill(-c.pid, sig) == nil && sig == syscall.SIGKILL {
		c.killed = true
	}
}

// killedByUs reports whether signal sent SIGKILL to the child's group, so
// that a SIGKILL exit is the gateway's own doing. The group kill in wait
// does not count: it comes after the leader's exit.
func (c *childProcess) killedByUs() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.killed
}

// drain waits for both relays to reach EOF and closes the pipes. It reports
// false if it had to give up after timeout, which only happens when a process
// that left the child's group (setsid) still holds a pipe.
func (c *childProcess) drain(timeout time.Duration) bool {
	done := make(chan struct{})
	go func() {
		c.relays.Wait()
		close(done)
	}()
	clean := true
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		clean = false
		for _, r := range c.readers {
			// Pipes from os.Pipe are pollable, so this wakes a blocked Read.
			_ = r.SetReadDeadline(time.Now())
		}
		<-done
	}
	for _, r := range c.readers {
		r.Close()
	}
	return clean
}
