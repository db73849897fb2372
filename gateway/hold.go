package gateway

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/hfgate/hfgate/gateway/health"
)

// holdOutcome is how a request's wait in the hold queue ended.
type holdOutcome string

// The outcomes of holdQueue.wait. Only holdForwarded lets the request go on to the upstream.
const (
	// holdNotHeld: the request was not held at all (holding is off, or the upstream is not
	// expected back in time); it gets the not-ready answer at once.
	holdNotHeld holdOutcome = "not_held"
	// holdForwarded: the upstream became ready and the request's turn came.
	holdForwarded holdOutcome = "forwarded"
	// holdTimedOut: the request's hold deadline passed first.
	holdTimedOut holdOutcome = "timed_out"
	// holdOverflow: HOLD_MAX requests were already held.
	holdOverflow holdOutcome = "overflow"
	// holdClientGone: the client went away while held.
	holdClientGone holdOutcome = "client_gone"
	// holdGaveUp: while held, the upstream stopped being expected back before the deadline
	// (a crash-loop backoff past it, draining); answered at once rather than at the deadline.
	holdGaveUp holdOutcome = "gave_up"
)

// Release pace: holdReleaseBatch held requests at once, then the next batch after
// holdReleaseEvery, in arrival order: 1,600 requests a second, well below what one uvicorn
// worker serves of the example's /chat (docs/performance.md, "Figures behind code comments"),
// so the queue stays in hfgate and in order instead of landing in one burst on a backend whose
// first requests (cold caches, lazy imports) are its slowest; HOLD_MAX=256 held requests are
// all sent within 160 ms.
const (
	holdReleaseBatch = 8
	holdReleaseEvery = 5 * time.Millisecond
)

// holdQueue parks requests that arrive while an upstream that has been ready before is coming
// back (a crash and restart, a failed health check), and forwards them, in arrival order, once it
// is ready again. It is bounded by count (max) and by time (each request's deadline), and a
// request is held only while the upstream is expected back before that deadline: see holdable.
//
// Held requests are woken by the readiness change itself (Readiness.Changed); the only timers
// are each request's deadline and, while releasing, the pacing between batches. The releasing
// goroutine exists only while requests are held.
type holdQueue struct {
	readiness *health.Tracker
	timeout   time.Duration                    // HOLD_TIMEOUT; 0 = holding off
	max       int                              // HOLD_MAX
	next      func() time.Time                 // the supervisor's next start attempt; nil = none
	now       func() time.Time                 // the readiness clock
	observe   func(holdOutcome, time.Duration) // metrics; nil = none

	mu        sync.Mutex
	queue     []*holdWaiter // arrival order
	releasing bool          // the release goroutine runs
	kick      chan struct{} // buffered(1): tells the release goroutine the queue changed
}

// holdWaiter is one held request. turn is closed when its turn comes; released says so under mu.
type holdWaiter struct {
	turn     chan struct{}
	released bool
}

func newHoldQueue(r *health.Tracker, timeout time.Duration, max int, next func() time.Time, now func() time.Time) *holdQueue {
	return &holdQueue{readiness: r, timeout: timeout, max: max, next: next, now: now, kick: make(chan struct{}, 1)}
}

// enabled reports whether requests are ever held.
func (h *holdQueue) enabled() bool { return h != nil && h.timeout > 0 && h.max > 0 }

// deadline is the hold deadline of a request that starts waiting now.
func (h *holdQueue) deadline() time.Time { return h.now().Add(h.timeout) }

// held returns how many requests are held now.
func (h *holdQueue) held() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.queue)
}

// holdable reports whether the upstream is expected back before deadline, so that holding a
// request until then is worth it. It needs an estimate: the upstream must have become ready at
// least once (a first cold start is answered at once, so the client's countdown starts at once).
// An upstream overdue by more than HOLD_TIMEOUT is not expected back any more: its clients get
// the 503 at once instead of each waiting out its deadline. A ready upstream is holdable: a
// request that found a dead connection to it is replayed at its turn.
func (h *holdQueue) holdable(deadline time.Time) bool {
	if h.readiness.IsReady() {
		return true // back already: a replay after a stale connection goes at once
	}
	var next time.Time
	if h.next != nil {
		next = h.next()
	}
	wait, known := h.readiness.Remaining(next)
	if !known {
		return false
	}
	return wait > -h.timeout && !h.now().Add(wait).After(deadline)
}

// wait holds the calling request until the upstream is ready and its turn comes, its deadline
// passes, ctx is done or the upstream stops being expected back in time. It returns at once,
// with holdNotHeld or holdOverflow, when the request may not be held.
func (h *holdQueue) wait(ctx context.Context, deadline time.Time) (holdOutcome, time.Duration) {
	if !h.enabled() || !h.holdable(deadline) {
		return holdNotHeld, 0
	}
	start := h.now()
	w, ok := h.enqueue()
	if !ok {
		h.record(holdOverflow, 0)
		return holdOverflow, 0
	}
	outcome := h.park(ctx, w, deadline)
	d := h.now().Sub(start)
	h.record(outcome, d)
	return outcome, d
}

func (h *holdQueue) park(ctx context.Context, w *holdWaiter, deadline time.Time) holdOutcome {
	timer := time.NewTimer(deadline.Sub(h.now()))
	defer timer.Stop()
	for {
		// Taken before the check, so that a transition between the two is not missed.
		changed := h.readiness.Changed()
		if !h.holdable(deadline) {
			return h.leave(w, holdGaveUp)
		}
		select {
		case <-w.turn:
			return holdForwarded
		case <-changed:
		case <-timer.C:
			return h.leave(w, holdTimedOut)
		case <-ctx.Done():
			return h.leave(w, holdClientGone)
		}
	}
}

func (h *holdQueue) enqueue() (*holdWaiter, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.queue) >= h.max {
		return nil, false
	}
	w := &holdWaiter{turn: make(chan struct{})}
	h.queue = append(h.queue, w)
	if !h.releasing {
		h.releasing = true
		go h.release()
	}
	return w, true
}

// leave takes w out of the queue with outcome, unless its turn came in the meantime: then it
// goes on (holdForwarded), and the proxy sees a client that is already gone for itself.
func (h *holdQueue) leave(w *holdWaiter, outcome holdOutcome) holdOutcome {
	h.mu.Lock()
	defer h.mu.Unlock()
	if w.released {
		return holdForwarded
	}
	if i := slices.Index(h.queue, w); i >= 0 {
		h.queue = slices.Delete(h.queue, i, i+1)
	}
	h.poke() // an empty queue lets the release goroutine end
	return outcome
}

func (h *holdQueue) poke() {
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// release runs while requests are held: whenever the upstream is ready it lets them go in
// arrival order, a batch at a time; otherwise it waits for the next transition. It ends when the
// queue is empty.
func (h *holdQueue) release() {
	for {
		changed := h.readiness.Changed()
		h.mu.Lock()
		if len(h.queue) == 0 {
			h.releasing = false
			h.mu.Unlock()
			return
		}
		if !h.readiness.IsReady() {
			h.mu.Unlock()
			select {
			case <-changed:
			case <-h.kick:
			}
			continue
		}
		n := min(holdReleaseBatch, len(h.queue))
		for _, w := range h.queue[:n] {
			w.released = true
			close(w.turn)
		}
		h.queue = slices.Delete(h.queue, 0, n)
		more := len(h.queue) > 0
		h.mu.Unlock()
		if more {
			// The pace between batches (not a poll: the batch is already known).
			time.Sleep(holdReleaseEvery)
		}
	}
}

func (h *holdQueue) record(outcome holdOutcome, d time.Duration) {
	if h.observe != nil {
		h.observe(outcome, d)
	}
}
