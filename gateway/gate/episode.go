package gate

import (
	"maps"
	"time"
)

// Episode is a refusing episode, reported through Options.OnRefusing when it starts and when
// it stops: a period in which the gate refused requests because the backend was busy
// (Refusal.Overload). It stops when the line is empty and a slot is free again.
type Episode struct {
	// Refusing is true when refusing started, false when it stopped.
	Refusing bool
	// Since is when it started; At is when this report was made.
	Since, At time.Time
	// Refused counts the refusals of the episode so far, by outcome.
	Refused map[Outcome]int
	// Admitted counts the requests admitted during the episode.
	Admitted int
	// The gate's state at the report.
	InFlight, Waiting, Limit int
}

// episode is the gate's record of the current episode.
type episode struct {
	active   bool
	since    time.Time
	refused  map[Outcome]int
	admitted int
}

// refused counts a busy refusal, starting an episode if none runs.
func (g *Gate) refused(o Outcome, now time.Time) {
	e := &g.episode
	if !e.active {
		*e = episode{active: true, since: now, refused: map[Outcome]int{}}
		e.refused[o]++
		g.report1(true, now)
		return
	}
	e.refused[o]++
}

// calm ends the episode when the line is empty and a slot is free.
func (g *Gate) calm(now time.Time) {
	if g.episode.active && len(g.line) == 0 && !g.paused && g.inflight < g.limit() {
		g.report1(false, now)
		g.episode.active = false
	}
}

// report1 queues one OnRefusing call; unlock makes it.
func (g *Gate) report1(refusing bool, now time.Time) {
	if g.opts.OnRefusing == nil {
		return
	}
	e := &g.episode
	g.outbox = append(g.outbox, Episode{
		Refusing: refusing, Since: e.since, At: now, Refused: maps.Clone(e.refused),
		Admitted: e.admitted, InFlight: g.inflight, Waiting: len(g.line), Limit: g.limit(),
	})
}

// unlock releases the gate's lock and then makes the queued OnRefusing calls, in order and
// without the lock (the hook may read a Snapshot), one goroutine at a time.
func (g *Gate) unlock() {
	deliver := len(g.outbox) > 0 && !g.delivering
	if deliver {
		g.delivering = true
	}
	g.mu.Unlock()
	if !deliver {
		return
	}
	g.mu.Lock()
	for len(g.outbox) > 0 {
		e := g.outbox[0]
		g.outbox = g.outbox[1:]
		g.mu.Unlock()
		g.opts.OnRefusing(e)
		g.mu.Lock()
	}
	g.outbox = nil
	g.delivering = false
	g.mu.Unlock()
}
