package gate

import (
	"time"
)

// The caller drives the gate from the backend's state: Pause when it goes down (no slot is
// free then; holdable requests wait), Resume when it is ready again, Fail or FailBefore when the
// waiters would wait in vain.

// Pause closes the gate: nothing is admitted until Resume. Requests in flight go on; new ones
// wait if they are holdable (Request.Hold) and are refused at once (NotHeld) otherwise.
func (g *Gate) Pause() {
	g.mu.Lock()
	defer g.unlock()
	g.paused = true
}

// Resume opens the gate again. The waiters in line go in at the pace of Options.ReleaseBatch
// and Options.ReleaseEvery, within the limit, in order.
func (g *Gate) Resume() {
	g.mu.Lock()
	defer g.unlock()
	if !g.paused {
		return
	}
	g.paused = false
	g.pace.start(g.line, g.opts.ReleaseBatch)
	g.dispatch(time.Now())
}

// Fail refuses every waiter at once with outcome Failed and cause (draining; a backend that is
// not expected back), and returns how many there were.
func (g *Gate) Fail(cause error) int {
	return g.failIf(func(*waiter) bool { return true }, cause)
}

// FailBefore refuses, with outcome Failed and cause, the waiters whose deadline is before t
// (the time the backend is expected back: after a crash, its next start plus its start-up), and
// returns how many there were. The others go on waiting.
func (g *Gate) FailBefore(t time.Time, cause error) int {
	return g.failIf(func(w *waiter) bool { return w.deadline.Before(t) }, cause)
}

func (g *Gate) failIf(match func(*waiter) bool, cause error) int {
	g.mu.Lock()
	defer g.unlock()
	now := time.Now()
	kept := g.line[:0]
	failed := 0
	for _, w := range g.line {
		if !match(w) {
			kept = append(kept, w)
			continue
		}
		failed++
		g.pace.removed(w)
		w.refusal = &Refusal{Outcome: Failed, Waited: now.Sub(w.enqueued), Cause: cause}
		close(w.ready)
	}
	clear(g.line[len(kept):])
	g.line = kept
	g.calm(now)
	return failed
}
