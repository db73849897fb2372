package gate

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"
)

// Request is what the gate knows of a request that asks to go in: only times and two flags,
// decided by the caller from the request's headers and the backend's state.
type Request struct {
	// Arrived is when the request arrived: the edge's cut runs from it, and the line is kept
	// in its order, so a request sent again after its first attempt never reached the backend
	// keeps its place ahead of later arrivals. Zero means now.
	Arrived time.Time

	// Deadline is the latest time the request may be admitted (today HOLD_TIMEOUT after its
	// arrival). A request whose expected wait ends after it is refused at once (Busy), one
	// still waiting when it passes is refused then (Timeout), and one whose deadline is not
	// after now may not wait at all.
	Deadline time.Time

	// Hold says the request may wait while the gate is paused: the caller expects the backend
	// back before Deadline. Without it a request that finds the gate paused is refused at once
	// (NotHeld), as a first cold start is. It does not matter while the gate is open.
	Hold bool

	// Stream marks a request for an event stream or a WebSocket (Accept: text/event-stream,
	// Upgrade): the edge's cut, which is for answers that come in one piece, does not apply.
	Stream bool
}

// Gate admits requests to the backend: at most a limit in flight, the rest in one line in
// arrival order, bounded by count and by each request's deadline. It is safe for concurrent
// use. Its only background work is the timer that paces the line after Resume.
type Gate struct {
	opts    Options
	limiter *limiter // nil with a fixed Options.Limit

	mu         sync.Mutex
	inflight   int       // slots taken
	streams    int       // streams past their first byte (their slot given back)
	paused     bool      // no slot is free (the backend is down)
	line       []*waiter // arrival order
	area       float64   // ∫ inflight dt in request-seconds, up to areaAt
	areaAt     time.Time
	service    service
	estimated  bool // the first completion gave the first estimate; dispatch then checks the line (prune)
	pace       pacer
	episode    episode
	outbox     []Episode // OnRefusing calls not made yet, in order
	delivering bool      // a goroutine is making them
}

// waiter is one request in line. ready is closed once it is decided: admitted (slot) or failed
// (refusal), both written before the close.
type waiter struct {
	arrived, deadline, enqueued time.Time
	ready                       chan struct{}
	slot                        *Slot
	refusal                     *Refusal
	paced                       bool // in line at the last Resume: released at the pace
}

// New returns a Gate, open, with no request in flight.
func New(o Options) (*Gate, error) {
	if err := o.validate(); err != nil {
		return nil, fmt.Errorf("gate options: %w", err)
	}
	o = o.withDefaults()
	g := &Gate{opts: o, areaAt: time.Now()}
	if o.Limit == 0 {
		g.limiter = newLimiter(o)
	}
	return g, nil
}

// Acquire admits the request or refuses it. Admitted, it returns a Slot, which the caller must
// finish with Done (and FirstByte when the answer's headers came). Refused, it returns a
// *Refusal: at once when the request may not wait or would wait in vain, otherwise when its
// deadline passes, its context ends or the caller fails it. A request whose context ends while
// it waits leaves the line at once and is never admitted.
func (g *Gate) Acquire(ctx context.Context, r Request) (*Slot, error) {
	if ctx.Err() != nil {
		return nil, g.report(nil, &Refusal{Outcome: Gone, Cause: context.Cause(ctx)})
	}
	now := time.Now()
	if r.Arrived.IsZero() {
		r.Arrived = now
	}
	g.mu.Lock()
	s, w, ref := g.enter(r, now)
	g.unlock()
	if w == nil {
		return s, g.report(s, ref)
	}
	return g.wait(ctx, w)
}

// enter admits the request at once, refuses it at once, or puts it in line.
func (g *Gate) enter(r Request, now time.Time) (*Slot, *waiter, *Refusal) {
	if !g.paused && len(g.line) == 0 && g.inflight < g.limit() {
		s := g.admit(now, 0)
		g.calm(now)
		return s, nil, nil
	}
	switch {
	case g.paused && !r.Hold:
		return nil, nil, g.refuse(NotHeld, now, 0)
	case !now.Before(r.Deadline):
		return nil, nil, g.refuse(Timeout, now, 0)
	case len(g.line) >= g.opts.MaxWaiting:
		return nil, nil, g.refuse(Full, now, 0)
	}
	p, _ := slices.BinarySearchFunc(g.line, r.Arrived, func(w *waiter, t time.Time) int {
		if w.arrived.After(t) {
			return 1
		}
		return -1 // equal arrivals keep their order: the newcomer goes after
	})
	if o, ok := g.foresee(r, p, now); !ok {
		return nil, nil, g.refuse(o, now, 0)
	}
	w := &waiter{arrived: r.Arrived, deadline: r.Deadline, enqueued: now, ready: make(chan struct{})}
	g.line = slices.Insert(g.line, p, w)
	return nil, w, nil
}

// foresee reports whether a request that would be p-th in line can be admitted in time: its
// expected wait ends before its deadline and, unless it is a stream, its expected answer before
// the edge's cut. Without a measured completion there is no estimate,
// and no early refusal.
func (g *Gate) foresee(r Request, p int, now time.Time) (Outcome, bool) {
	if !g.service.known() {
		return Admitted, true
	}
	wait := g.service.wait(p+1, g.limit())
	if now.Add(wait).After(r.Deadline) {
		return Busy, false
	}
	if !r.Stream && g.opts.EdgeTimeout > 0 {
		done := now.Add(wait).Add(time.Duration(g.service.mean * float64(time.Second)))
		if done.After(r.Arrived.Add(g.opts.EdgeTimeout)) {
			return Cut, false
		}
	}
	return Admitted, true
}

// prune refuses, at once, the waiters that the first estimate says will not be admitted before
// their deadlines (their expected wait from their place in line ends after it), instead of
// letting each wait out its deadline in vain. Until the first completion there is no estimate,
// so a line that formed before it (a cold gate in front of a busy backend, whose first answers
// come only after the first requests it let in) was never checked. Later lines were, on entry;
// checking them again at every completion would refuse late, with noise, what it let in, and
// so empty the line for newcomers it would then also refuse late (seen in the noisy
// simulations: more refusals after a wait, none fewer).
func (g *Gate) prune(now time.Time) {
	if !g.service.known() || g.paused || len(g.line) == 0 {
		return
	}
	limit := g.limit()
	kept := g.line[:0]
	for _, w := range g.line {
		if now.Add(g.service.wait(len(kept)+1, limit)).After(w.deadline) {
			g.pace.removed(w)
			w.refusal = g.refuse(Busy, now, now.Sub(w.enqueued))
			close(w.ready)
			continue
		}
		kept = append(kept, w)
	}
	clear(g.line[len(kept):])
	g.line = kept
}

// wait parks the caller until its waiter is decided, its deadline passes or ctx ends.
func (g *Gate) wait(ctx context.Context, w *waiter) (*Slot, error) {
	timer := time.NewTimer(time.Until(w.deadline))
	defer timer.Stop()
	o, cause := Gone, error(nil)
	select {
	case <-w.ready:
		if ctx.Err() == nil {
			return w.slot, g.report(w.slot, w.refusal)
		}
		cause = context.Cause(ctx)
	case <-ctx.Done():
		cause = context.Cause(ctx)
	case <-timer.C:
		o = Timeout
	}
	g.mu.Lock()
	s, ref := g.leave(w, o, cause, time.Now())
	g.unlock()
	return s, g.report(s, ref)
}

// leave takes w out of the line with outcome o. A waiter already decided keeps its decision,
// except that one whose client left gives its slot back: it is never admitted.
func (g *Gate) leave(w *waiter, o Outcome, cause error, now time.Time) (*Slot, *Refusal) {
	waited := now.Sub(w.enqueued)
	select {
	case <-w.ready:
		if w.slot == nil || o != Gone {
			return w.slot, w.refusal
		}
		w.slot.done = true
		g.free(w.slot, now, false)
		g.dispatch(now)
	default:
		if i := slices.Index(g.line, w); i >= 0 {
			g.line = slices.Delete(g.line, i, i+1)
		}
		g.pace.removed(w)
		g.calm(now)
	}
	ref := g.refuse(o, now, waited)
	ref.Cause = cause
	return nil, ref
}

// limit is the limit in force.
func (g *Gate) limit() int {
	if g.limiter == nil {
		return g.opts.Limit
	}
	return g.limiter.value()
}

// refuse builds a refusal; one for overload gets a Retry-After and counts in the refusing
// episode.
func (g *Gate) refuse(o Outcome, now time.Time, waited time.Duration) *Refusal {
	ref := &Refusal{Outcome: o, Waited: waited}
	ref.Overload = o == Busy || o == Cut || (o == Full || o == Timeout) && !g.paused
	if ref.Overload {
		ref.RetryAfter = g.retryAfter()
		g.refused(o, now)
	}
	return ref
}

// retryAfter is the estimated time for the line to drain, spread, in whole seconds (1 to 120);
// 0 without an estimate.
func (g *Gate) retryAfter() int {
	if !g.service.known() {
		return 0
	}
	d := g.opts.Jitter(g.service.wait(len(g.line)+1, g.limit()))
	return min(max(int(math.Ceil(d.Seconds())), 1), 120)
}

// report calls OnOutcome and returns ref as an error (nil when admitted).
func (g *Gate) report(s *Slot, ref *Refusal) error {
	if ref == nil {
		if g.opts.OnOutcome != nil {
			g.opts.OnOutcome(Admitted, s.waited)
		}
		return nil
	}
	if g.opts.OnOutcome != nil {
		g.opts.OnOutcome(ref.Outcome, ref.Waited)
	}
	return ref
}
