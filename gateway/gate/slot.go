package gate

import "time"

// Slot is an admitted request's place among those in flight. The caller calls FirstByte when
// the backend's answer headers arrive (or the WebSocket upgrade), then Done when the request is
// over, whatever happened; both may be called from any goroutine, and again to no effect.
//
// Only the time to the first byte is a latency sample: it is the backend's own work. A request
// that never got an answer (the connection was refused or broke) is no sample: it says nothing
// about how fast the backend answers. One the backend had but whose answer is not waited for
// any more says something only when it has already taken longer than expected (Abandon).
type Slot struct {
	g        *Gate
	admitted time.Time
	area0    float64       // the gate's area at admission
	ahead    int           // requests in flight at admission, itself included
	waited   time.Duration // time in line

	// Under g.mu.
	sampled   bool // FirstByte or Abandon was called
	abandoned bool // Abandon was called: no answer
	stream    bool // the slot was given back at the first byte
	freed     bool // the slot was given back
	done      bool // Done was called
}

// Waited returns how long the request waited in line before it was admitted.
func (s *Slot) Waited() time.Duration { return s.waited }

// FirstByte records the time from admission to the answer's first byte as a latency sample.
// With free set (an event stream, a WebSocket after its upgrade) the slot is given back at
// once: such an answer may last minutes, and holding a slot for it would starve short
// requests, while its length says nothing about how fast the backend is. Otherwise the slot is
// held until Done.
func (s *Slot) FirstByte(free bool) {
	g := s.g
	g.mu.Lock()
	defer g.unlock()
	if s.sampled || s.freed {
		return
	}
	s.sampled = true
	now := time.Now()
	g.sample(s, now, false)
	if free {
		s.stream = true
		g.streams++
		g.free(s, now, true)
	}
	g.dispatch(now) // the limit may have grown
}

// Abandon records that the backend had the request but its answer will not be waited for (the
// client left, a timeout ran out). The time since admission is a lower bound of its latency and
// counts as a sample when it is already longer than the latency expected: otherwise a backend
// too slow to answer before clients give up would be judged only by the answers that made it,
// its fastest. Done must still be called.
func (s *Slot) Abandon() {
	g := s.g
	g.mu.Lock()
	defer g.unlock()
	if s.sampled || s.freed {
		return
	}
	s.sampled, s.abandoned = true, true
	now := time.Now()
	g.sample(s, now, true)
	g.dispatch(now) // the limit may have changed
}

// sample gives the limiter the latency of s, from admission to now, with the average
// concurrency it saw; censored says the latency is only a lower bound.
func (g *Gate) sample(s *Slot, now time.Time, censored bool) {
	g.tickArea(now)
	if g.limiter == nil {
		return
	}
	dt := now.Sub(s.admitted).Seconds()
	n := float64(g.inflight)
	if dt > 0 {
		n = (g.area - s.area0) / dt
	}
	if censored && dt <= g.limiter.expect(n) {
		return
	}
	g.limiter.sample(n, float64(s.ahead), dt, g.inflight+len(g.line))
}

// Done ends the request: its slot, if it still holds one, is given back, and the next in line
// may go in.
func (s *Slot) Done() {
	g := s.g
	g.mu.Lock()
	defer g.unlock()
	if s.done {
		return
	}
	s.done = true
	now := time.Now()
	if s.stream {
		g.streams--
	} else {
		g.free(s, now, s.sampled && !s.abandoned)
	}
	g.dispatch(now)
}
