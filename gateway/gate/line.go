package gate

import (
	"slices"
	"time"
)

// The gate's bookkeeping under its lock: slots taken and given back, the line let in.

// admit takes a slot for a request that waited for waited.
func (g *Gate) admit(now time.Time, waited time.Duration) *Slot {
	g.tickArea(now)
	g.inflight++
	g.episode.admitted++
	return &Slot{g: g, admitted: now, area0: g.area, ahead: g.inflight, waited: waited}
}

// free gives s's slot back; completed says the backend answered, so the time the slot was held
// is a service sample.
func (g *Gate) free(s *Slot, now time.Time, completed bool) {
	if s.freed {
		return
	}
	s.freed = true
	g.tickArea(now)
	g.inflight--
	if completed {
		// The first estimate: the line formed without one is checked against it by dispatch.
		g.estimated = !g.service.known()
		g.service.add(now.Sub(s.admitted))
	}
}

// dispatch lets the line in, first come first, while slots are free, the gate is open and the
// pace after a Resume allows.
func (g *Gate) dispatch(now time.Time) {
	for len(g.line) > 0 && !g.paused && g.inflight < g.limit() {
		if !g.pace.allow() {
			g.pace.arm(g.opts.ReleaseEvery, g.tick)
			break
		}
		w := g.line[0]
		g.line = slices.Delete(g.line, 0, 1)
		g.pace.took(w)
		w.slot = g.admit(now, now.Sub(w.enqueued))
		close(w.ready)
	}
	if g.estimated {
		g.estimated = false
		g.prune(now)
	}
	g.calm(now)
}

// tick is the pace timer: the next batch may go in.
func (g *Gate) tick(gen int) {
	g.mu.Lock()
	defer g.unlock()
	if g.pace.refill(gen, g.opts.ReleaseBatch) {
		g.dispatch(time.Now())
	}
}

// tickArea brings the integral of the concurrency up to now: a latency sample divides its
// growth over the sample's life by that life, the average concurrency the request saw.
func (g *Gate) tickArea(now time.Time) {
	g.area += float64(g.inflight) * now.Sub(g.areaAt).Seconds()
	g.areaAt = now
}
