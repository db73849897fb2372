package health

import (
	"context"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// State is the gateway's view of the upstream.
type State string

// States returns every state, in the order of the diagram in docs/states.md.
func States() []State {
	return []State{Starting, Ready, Unavailable, Crashed, Misconfigured, Draining}
}

// The states of the upstream. See docs/states.md for the diagram.
const (
	// Starting: the upstream has not answered a health check yet since it was (re)started.
	Starting State = "starting"
	// Ready: the last health check passed and no request has failed to reach it since.
	Ready State = "ready"
	// Unavailable: the upstream was ready, then a health check or a forwarded request failed.
	Unavailable State = "unavailable"
	// Crashed: the supervised child exited; a restart is pending.
	Crashed State = "crashed"
	// Misconfigured: required settings are missing; nothing is started. Terminal: settings
	// only change when the Space restarts the container.
	Misconfigured State = "misconfigured"
	// Draining: the gateway is shutting down (SIGTERM); requests already forwarded finish,
	// new ones are turned away. Terminal: the process is on its way out.
	Draining State = "draining"
)

// Retry-After bounds and the guess used before any start-up has been observed.
const (
	minRetryAfter     = 1 * time.Second
	maxRetryAfter     = 30 * time.Second
	defaultStartupETA = 5 * time.Second
)

// Tracker is the one state machine of hfgate. Every transition goes through transition, under
// one lock, and is logged once with from and to. The zero value is not usable: call NewTracker.
type Tracker struct {
	logger *slog.Logger
	now    func() time.Time

	ready atomic.Bool   // mirrors state == Ready, read on every request without the lock
	wake  chan struct{} // buffered(1): asks the prober for an immediate check

	mu          sync.Mutex
	state       State
	since       time.Time     // time of the last transition
	downSince   time.Time     // start of the current outage (or of the process)
	lastStartup time.Duration // how long the last outage lasted, from down to ready; 0 = none seen
	startedAt   time.Time     // when the supervised child was last started (MarkStarted)
	lastBoot    time.Duration // the last child start to ready (no backoff wait in it); 0 = none seen
	missing     []string      // names of missing required variables (misconfigured only)
	changed     chan struct{} // closed (and replaced) at every transition; see Changed
	onReady     func()        // called (under the lock) at each transition to ready; nil = none
	onChange    func()        // called (without the lock) after each transition; nil = none
}

// TrackerOptions configures NewTracker. Zero values are documented per field.
type TrackerOptions struct {
	// Logger logs each transition once. Required.
	Logger *slog.Logger
	// Now is the clock. Zero value: time.Now.
	Now func() time.Time
	// OnReady is called at each transition to Ready, under the tracker's lock (so it must not
	// call back into the tracker). Zero value: nothing is called.
	OnReady func()
	// OnChange is called after each transition, without the lock, on the goroutine that made
	// it, before the Mark method returns: what must follow the state (the gate in front of the
	// upstream) is in step with it by then. Transitions on other goroutines may call it
	// concurrently and out of order, so it reads the state afresh. Zero value: nothing is called.
	OnChange func()
}

// NewTracker returns a state machine in Starting.
func NewTracker(opts TrackerOptions) *Tracker {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	t := opts.Now()
	return &Tracker{
		logger:    opts.Logger,
		now:       opts.Now,
		onReady:   opts.OnReady,
		onChange:  opts.OnChange,
		wake:      make(chan struct{}, 1),
		changed:   make(chan struct{}),
		state:     Starting,
		since:     t,
		downSince: t,
	}
}

// Snapshot is a consistent copy of the state machine, for /ready and the not-ready answers.
type Snapshot struct {
	State       State
	Since       time.Time
	LastStartup time.Duration
	Missing     []string
}

// IsReady reports whether requests may be forwarded. It does not lock.
func (r *Tracker) IsReady() bool { return r.ready.Load() }

// State returns the current state.
func (r *Tracker) State() State {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state
}

// Snapshot returns the current state and what goes with it.
func (r *Tracker) Snapshot() Snapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	return Snapshot{State: r.state, Since: r.since, LastStartup: r.lastStartup, Missing: r.missing}
}

// Changed returns a channel that is closed at the next transition. Held requests wait on it:
// one close wakes them all, so no request polls the state.
func (r *Tracker) Changed() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.changed
}

// Wake returns the channel the prober listens on for early checks.
func (r *Tracker) Wake() <-chan struct{} { return r.wake }

// MarkReady records a passed health check.
func (r *Tracker) MarkReady() { r.transition(Ready, "health check passed") }

// MarkProbeFailed records a failed health check. Only a ready upstream changes state: while
// starting or crashed, a failing check is expected.
func (r *Tracker) MarkProbeFailed() {
	r.transitionFrom(Ready, Unavailable, "health check failed")
}

// MarkUnreachable records that a forwarded request could not reach the upstream (connection
// refused or reset). It flips a ready upstream to unavailable at once and wakes the prober, so
// the next requests get the not-ready answer instead of each failing on its own.
func (r *Tracker) MarkUnreachable() {
	if r.transitionFrom(Ready, Unavailable, "request could not reach upstream") {
		r.Poke()
	}
}

// MarkStarted records that the supervised child was (re)started.
func (r *Tracker) MarkStarted() {
	r.mu.Lock()
	changed := r.state != Ready && r.transitionLocked(Starting, "upstream process started")
	if changed {
		r.startedAt = r.since
	}
	r.mu.Unlock()
	r.changedTo(changed)
	r.Poke()
}

// MarkCrashed records that the supervised child exited.
func (r *Tracker) MarkCrashed() { r.transition(Crashed, "upstream process exited") }

// MarkDraining records that shutdown has begun. A misconfigured gateway stays misconfigured:
// that says more about what to fix than "draining".
func (r *Tracker) MarkDraining() { r.transition(Draining, "shutting down") }

// MarkMisconfigured records missing required variables. The state is terminal.
func (r *Tracker) MarkMisconfigured(missing []string) {
	r.mu.Lock()
	r.missing = append([]string(nil), missing...)
	changed := r.transitionLocked(Misconfigured, "required variables missing")
	r.mu.Unlock()
	r.changedTo(changed)
}

// Poke asks the prober for a check now (a request saw the upstream fail).
func (r *Tracker) Poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *Tracker) transition(to State, reason string) bool {
	r.mu.Lock()
	changed := r.transitionLocked(to, reason)
	r.mu.Unlock()
	return r.changedTo(changed)
}

func (r *Tracker) transitionFrom(from, to State, reason string) bool {
	r.mu.Lock()
	changed := r.state == from && r.transitionLocked(to, reason)
	r.mu.Unlock()
	return r.changedTo(changed)
}

// changedTo calls OnChange after a transition (changed) and returns changed.
func (r *Tracker) changedTo(changed bool) bool {
	if changed && r.onChange != nil {
		r.onChange()
	}
	return changed
}

// transitionLocked is the only place the state changes.
func (r *Tracker) transitionLocked(to State, reason string) bool {
	from := r.state
	if from == to || from == Misconfigured || from == Draining {
		return false
	}
	now := r.now()
	attrs := []any{"from", string(from), "to", string(to), "reason", reason, "in_state", now.Sub(r.since).Round(time.Millisecond)}
	switch {
	case to == Ready:
		if r.onReady != nil {
			r.onReady()
		}
		r.lastStartup = now.Sub(r.downSince)
		if !r.startedAt.Before(r.downSince) {
			r.lastBoot = now.Sub(r.startedAt)
		}
		attrs = append(attrs, "came_up_in", r.lastStartup.Round(time.Millisecond))
	case from == Ready:
		r.downSince = now
	}
	r.state, r.since = to, now
	r.ready.Store(to == Ready)
	close(r.changed)
	r.changed = make(chan struct{})
	level := slog.LevelInfo
	if (from == Ready && to != Draining) || to == Crashed || to == Misconfigured {
		level = slog.LevelWarn
	}
	r.logger.Log(context.Background(), level, "upstream state", attrs...)
	return true
}

// RetryAfter estimates, in whole seconds within [1, 30], when a client should try again: the
// same estimate as Remaining, with a default guess before any start-up was seen. Misconfiguration
// is not fixed by waiting, so it answers the maximum.
func (r *Tracker) RetryAfter(nextAttempt time.Time) int {
	state, wait, _ := r.estimate(nextAttempt, defaultStartupETA)
	if state == Misconfigured {
		return int(maxRetryAfter / time.Second)
	}
	wait = min(max(wait, minRetryAfter), maxRetryAfter)
	return int(math.Ceil(wait.Seconds()))
}

// Remaining estimates how long until the upstream is ready again. A supervised child that is
// starting needs what its last start took (child start to ready) minus the time it has run;
// one waiting out a restart backoff (nextAttempt non-zero) needs the wait plus a whole start.
// Otherwise (an upstream that is simply unreachable) the estimate is the last outage's length
// minus the time already spent down. The estimate is negative when the upstream is overdue.
// known is false when there is nothing to estimate from (no start-up seen yet) or nothing to
// wait for (misconfigured, draining).
func (r *Tracker) Remaining(nextAttempt time.Time) (wait time.Duration, known bool) {
	state, wait, seen := r.estimate(nextAttempt, 0)
	if !seen || state == Misconfigured || state == Draining {
		return 0, false
	}
	return wait, true
}

// estimate is Remaining with guess standing in for a start-up not yet seen (seen is false then).
func (r *Tracker) estimate(nextAttempt time.Time, guess time.Duration) (state State, wait time.Duration, seen bool) {
	r.mu.Lock()
	state, downSince, startedAt, outage, boot := r.state, r.downSince, r.startedAt, r.lastStartup, r.lastBoot
	r.mu.Unlock()
	seen = outage > 0
	if !seen {
		outage = guess
	}
	if boot <= 0 {
		boot = outage // no supervised start seen: an outage is the best guess of one
	}
	now := r.now()
	switch {
	case !nextAttempt.IsZero() && nextAttempt.After(now):
		return state, nextAttempt.Sub(now) + boot, seen
	case state == Starting && !startedAt.Before(downSince):
		return state, boot - now.Sub(startedAt), seen
	}
	return state, outage - now.Sub(downSince), seen
}
