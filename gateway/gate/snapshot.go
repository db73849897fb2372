package gate

import "time"

// Snapshot is the gate's state at one moment, for /ready, the status page and metrics.
type Snapshot struct {
	// InFlight is the number of slots taken; Limit how many there are (adaptive or fixed).
	InFlight, Limit int
	// Streams counts event streams and WebSockets past their first byte: they no longer hold
	// a slot but are still open.
	Streams int
	// Waiting is the length of the line.
	Waiting int
	// Adaptive says the limit is found by the gate (Options.Limit zero).
	Adaptive bool
	// Paused says the gate is paused (the backend is down).
	Paused bool
	// Service is the mean time a request that reached the backend held its slot; zero before
	// the first completion.
	Service time.Duration
	// Rate is the rate at which the backend finishes requests while every slot is taken
	// (Limit / Service, a second); zero before the first completion.
	Rate float64
	// Wait is the estimated time for the line to drain once the gate is open (Waiting / Rate;
	// while it is paused, the backend's start-up comes first); zero without a line or an
	// estimate.
	Wait time.Duration
}

// Snapshot returns the gate's state now.
func (g *Gate) Snapshot() Snapshot {
	g.mu.Lock()
	defer g.mu.Unlock()
	limit := g.limit()
	s := Snapshot{
		InFlight: g.inflight, Limit: limit, Streams: g.streams, Waiting: len(g.line),
		Adaptive: g.limiter != nil, Paused: g.paused,
		Service: time.Duration(g.service.mean * float64(time.Second)),
		Rate:    g.service.rate(limit),
	}
	if g.service.known() {
		s.Wait = g.service.wait(len(g.line), limit)
	}
	return s
}
