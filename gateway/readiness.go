package gateway

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

// The states of the upstream. See docs/states.md for the diagram.
const (
	// StateStarting: the upstream has not answered a health check yet since it was (re)started.
	StateStarting State = "starting"
	// StateReady: the last health check passed and no request has failed to reach it since.
	StateReady State = "ready"
	// StateUnavailable: the upstream was ready, then a health check or a forwarded request failed.
	StateUnavailable State = "unavailable"
	// StateCrashed: the supervised child exited; a restart is pending.
	StateCrashed State = "crashed"
	// StateMisconfigured: required settings are missing; nothing is started. Terminal: settings
	// only change when the Space restarts the container.
	StateMisconfigured State = "misconfigured"
	// StateDraining: the gateway is shutting down (SIGTERM); requests already forwarded finish,
	// new ones are turned away. Terminal: the process is on its way out.
	StateDraining State = "draining"
)

// Retry-After bounds and the guess used before any start-up has been observed.
const (
	minRetryAfter     = 1 * time.Second
	maxRetryAfter     = 30 * time.Second
	defaultStartupETA = 5 * time.Second
)

// Readiness is the one state machine of hfgate. Every transition goes through transition, under
// one lock, and is logged once with from and to. The zero value is not usable: call NewReadiness.
type Readiness struct {
	logger *slog.Logger
	now    func() time.Time

	ready atomic.Bool   // mirrors state == StateReady, read on every request without the lock
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
}

// NewReadiness returns a state machine in StateStarting. now defaults to time.Now.
func NewReadiness(logger *slog.Logger, now func() time.Time) *Readiness {
	if now == nil {
		now = time.Now
	}
	t := now()
	return &Readiness{
		logger:    logger,
		now:       now,
		wake:      make(chan struct{}, 1),
		changed:   make(chan struct{}),
		state:     StateStarting,
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
func (r *Readiness) IsReady() bool { return r.ready.Load() }

// State returns the current state.
func (r *Readiness) State() State {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state
}

// Snapshot returns the current state and what goes with it.
func (r *Readiness) Snapshot() Snapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	return Snapshot{State: r.state, Since: r.since, LastStartup: r.lastStartup, Missing: r.missing}
}

// Changed returns a channel that is closed at the next transition. Held requests wait on it:
// one close wakes them all, so no request polls the state.
func (r *Readiness) Changed() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.changed
}

// Wake returns the channel the prober listens on for early checks.
func (r *Readiness) Wake() <-chan struct{} { return r.wake }

// MarkReady records a passed health check.
func (r *Readiness) MarkReady() { r.transition(StateReady, "health check passed") }

// MarkProbeFailed records a failed health check. Only a ready upstream changes state: while
// starting or crashed, a failing check is expected.
func (r *Readiness) MarkProbeFailed() {
	r.transitionFrom(StateReady, StateUnavailable, "health check failed")
}

// MarkUnreachable records that a forwarded request could not reach the upstream (connection
// refused or reset). It flips a ready upstream to unavailable at once and wakes the prober, so
// the next requests get the not-ready answer instead of each failing on its own.
func (r *Readiness) MarkUnreachable() {
	if r.transitionFrom(StateReady, StateUnavailable, "request could not reach upstream") {
		r.poke()
	}
}

// MarkStarted records that the supervised child was (re)started.
func (r *Readiness) MarkStarted() {
	r.mu.Lock()
	if r.state != StateReady && r.transitionLocked(StateStarting, "upstream process started") {
		r.startedAt = r.since
	}
	r.mu.Unlock()
	r.poke()
}

// MarkCrashed records that the supervised child exited.
func (r *Readiness) MarkCrashed() { r.transition(StateCrashed, "upstream process exited") }

// MarkDraining records that shutdown has begun. A misconfigured gateway stays misconfigured:
// that says more about what to fix than "draining".
func (r *Readiness) MarkDraining() { r.transition(StateDraining, "shutting down") }

// MarkMisconfigured records missing required variables. The state is terminal.
func (r *Readiness) MarkMisconfigured(missing []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.missing = append([]string(nil), missing...)
	r.transitionLocked(StateMisconfigured, "required variables missing")
}

func (r *Readiness) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *Readiness) transition(to State, reason string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.transitionLocked(to, reason)
}

func (r *Readiness) transitionFrom(from, to State, reason string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state != from {
		return false
	}
	return r.transitionLocked(to, reason)
}

// transitionLocked is the only place the state changes.
func (r *Readiness) transitionLocked(to State, reason string) bool {
	from := r.state
	if from == to || from == StateMisconfigured || from == StateDraining {
		return false
	}
	now := r.now()
	attrs := []any{"from", string(from), "to", string(to), "reason", reason, "in_state", now.Sub(r.since).Round(time.Millisecond)}
	switch {
	case to == StateReady:
		if r.onReady != nil {
			r.onReady()
		}
		r.lastStartup = now.Sub(r.downSince)
		if !r.startedAt.Before(r.downSince) {
			r.lastBoot = now.Sub(r.startedAt)
		}
		attrs = append(attrs, "came_up_in", r.lastStartup.Round(time.Millisecond))
	case from == StateReady:
		r.downSince = now
	}
	r.state, r.since = to, now
	r.ready.Store(to == StateReady)
	close(r.changed)
	r.changed = make(chan struct{})
	level := slog.LevelInfo
	if (from == StateReady && to != StateDraining) || to == StateCrashed || to == StateMisconfigured {
		level = slog.LevelWarn
	}
	r.logger.Log(context.Background(), level, "upstream state", attrs...)
	return true
}

// RetryAfter estimates, in whole seconds within [1, 30], when a client should try again: the
// same estimate as Remaining, with a default guess before any start-up was seen. Misconfiguration
// is not fixed by waiting, so it answers the maximum.
func (r *Readiness) RetryAfter(nextAttempt time.Time) int {
	state, wait, _ := r.estimate(nextAttempt, defaultStartupETA)
	if state == StateMisconfigured {
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
func (r *Readiness) Remaining(nextAttempt time.Time) (wait time.Duration, known bool) {
	state, wait, seen := r.estimate(nextAttempt, 0)
	if !seen || state == StateMisconfigured || state == StateDraining {
		return 0, false
	}
	return wait, true
}

// estimate is Remaining with guess standing in for a start-up not yet seen (seen is false then).
func (r *Readiness) estimate(nextAttempt time.Time, guess time.Duration) (state State, wait time.Duration, seen bool) {
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
	case state == StateStarting && !startedAt.Before(downSince):
		return state, boot - now.Sub(startedAt), seen
	}
	return state, outage - now.Sub(downSince), seen
}
