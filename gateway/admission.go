package gateway

import (
	"errors"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hfgate/hfgate/gateway/gate"
	"github.com/hfgate/hfgate/gateway/health"
)

// admission is the one line in front of the upstream as the gateway drives it: package gate
// admits at most a limit of forwarded requests and keeps the rest waiting in arrival order; this
// file decides, from the upstream's state, whether a request may wait at all and keeps the gate
// in step with that state (paused unless ready; waiters failed when the upstream is known not
// to be back in time). A backend that is down is a gate with no free slot: the same line holds
// requests while a restarted backend comes back and while a busy one works through its queue.
type admission struct {
	gate      *gate.Gate
	readiness *health.Tracker
	timeout   time.Duration    // HOLD_TIMEOUT; 0 = no request ever waits
	next      func() time.Time // the supervisor's next start attempt; nil = none
	now       func() time.Time // the readiness clock

	mu sync.Mutex // orders syncs: each applies the state it reads, the last one wins
}

// Reasons the line is failed before the deadlines of its waiters.
var (
	errDraining      = errors.New("the gateway is shutting down")
	errMisconfigured = errors.New("required variables are missing")
	errRestartLate   = errors.New("the backend's next start is after the deadline")
)

// waits reports whether requests ever wait in line (HOLD_TIMEOUT > 0).
func (a *admission) waits() bool { return a.timeout > 0 }

// deadline is the latest a request that arrives at t may be admitted.
func (a *admission) deadline(t time.Time) time.Time { return t.Add(a.timeout) }

// sync puts the gate in step with the upstream's state: open when ready; otherwise paused, and
// the waiters failed at once when waiting is vain for all (draining, misconfigured) or for
// those whose deadline comes before the supervisor's next start and its start-up. It runs after
// every transition (health.TrackerOptions.OnChange), on the goroutine that made it.
func (a *admission) sync() {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch a.readiness.State() {
	case health.Ready:
		a.gate.Resume()
		return
	case health.Draining:
		a.gate.Pause()
		a.gate.Fail(errDraining)
		return
	case health.Misconfigured:
		a.gate.Pause()
		a.gate.Fail(errMisconfigured)
		return
	}
	a.gate.Pause()
	if a.next == nil {
		return
	}
	if next := a.next(); !next.IsZero() {
		// A restart is scheduled: nobody is served before it and the start-up after it.
		if wait, known := a.readiness.Remaining(next); known {
			a.gate.FailBefore(a.now().Add(wait), errRestartLate)
		} else {
			a.gate.FailBefore(next, errRestartLate)
		}
	}
}

// holdable reports whether a request arriving now with deadline may wait while the upstream is
// down, which is worth it only when it is expected back before then. That needs an estimate: the
// upstream must have become ready at least once (a first cold start is answered at once, so the
// client's countdown starts at once). An upstream overdue by more than HOLD_TIMEOUT is not
// expected back any more: its clients get the 503 at once instead of each waiting out its
// deadline. (While the gate is open this is not consulted.)
func (a *admission) holdable(deadline time.Time) bool {
	if a.readiness.IsReady() {
		return true
	}
	var next time.Time
	if a.next != nil {
		next = a.next()
	}
	wait, known := a.readiness.Remaining(next)
	if !known {
		return false
	}
	return wait > -a.timeout && !a.now().Add(wait).After(deadline)
}

// expectedBack is holdable for a request the gateway has already decided to send again (it
// never reached an upstream that was ready a moment ago): it waits until the upstream is back or
// its deadline passes, however long the last outage was, unless the upstream is known not to be
// back in time: draining, misconfigured, or a supervised restart scheduled past its deadline.
func (a *admission) expectedBack(deadline time.Time) bool {
	switch a.readiness.State() {
	case health.Draining, health.Misconfigured:
		return false
	}
	if a.next != nil {
		if next := a.next(); !next.IsZero() && next.After(deadline) {
			return false
		}
	}
	return true
}

// acquire asks the gate to admit the request of f, as a first attempt (holdable) or as a
// replay (expectedBack). Admitted, the slot is kept on f; the time in line counts either way.
func (a *admission) acquire(f *flight, replay bool) error {
	hold := a.holdable
	if replay {
		hold = a.expectedBack
	}
	req := gate.Request{Arrived: f.arrived, Deadline: f.deadline, Stream: f.wantsStream, Hold: hold(f.deadline)}
	slot, err := a.gate.Acquire(f, req)
	if slot != nil {
		f.slot = slot
		f.queued += slot.Waited()
		return nil
	}
	var ref *gate.Refusal
	if errors.As(err, &ref) {
		f.queued += ref.Waited
	}
	return err
}

// wantsStream reports whether a request asks for an answer that may last: an event stream
// (Accept: text/event-stream, as EventSource sends it) or a WebSocket. Such a request is not
// refused for the edge's cut, which is for answers that come in one piece.
func wantsStream(r *http.Request) bool {
	return isWebSocket(r) || acceptsEventStream(r)
}

// acceptsEventStream reports whether the request's Accept names text/event-stream.
func acceptsEventStream(r *http.Request) bool {
	for _, v := range r.Header["Accept"] {
		if strings.Contains(strings.ToLower(v), "text/event-stream") {
			return true
		}
	}
	return false
}

// logRefusing logs one line when the line starts refusing requests because the upstream is busy
// and one when it stops, with the counts, instead of one per request (gate.Options.OnRefusing).
func (g *Gateway) logRefusing(e gate.Episode) {
	if e.Refusing {
		g.logger.Warn("upstream busy: refusing requests that would wait too long",
			"in_flight", e.InFlight, "waiting", e.Waiting, "limit", e.Limit)
		return
	}
	refused := 0
	attrs := make([]any, 0, 2*len(e.Refused)+10)
	for _, o := range slices.Sorted(maps.Keys(e.Refused)) {
		refused += e.Refused[o]
		attrs = append(attrs, string(o), e.Refused[o])
	}
	attrs = append(attrs, "refused", refused, "admitted", e.Admitted, "took", e.At.Sub(e.Since).Round(time.Millisecond), "limit", e.Limit)
	g.logger.Info("upstream caught up: refusing stopped", attrs...)
}
