// Package gate is the one way in to the backend: at most a limit of requests in flight, the
// rest in one line in arrival order, bounded by count and by each request's deadline, with
// refusals that come at once and say honestly when to come back.
//
// Why: a backend that is working flat out and one that is down look alike to a proxy that
// only forwards (requests pile up inside it, its health check times out behind them, clients
// wait until the edge cuts them at 60 s). In front of one uvicorn worker whose requests cost
// 200 ms of CPU, 25 requests a second all wait, far past the edge's cut (issue 19 has the
// figures: hfgate without a gate answered 293 of 500, with 55 504s and 152 late 503s). The gate
// keeps the line in hfgate, where it can be ordered, bounded, shown and refused from:
//
//   - One FIFO line, no barging: a newcomer never overtakes a waiter, even at an instant when
//     a slot is free while someone waits (the pace after a Resume). A waiter whose context ends
//     leaves the line at once and is never admitted.
//   - A backend that is down is a gate with no free slot (Pause); Resume lets the line in at
//     a pace (8 at once, then 8 every 5 ms), so a restarted backend does not get one burst.
//     The caller decides per request whether it may wait while paused (Request.Hold), and
//     fails waiters that would wait in vain (Fail, FailBefore): today's hold, in the same line.
//   - Early, honest refusal: a request whose expected wait (its place in line over the rate
//     at which slots turn over, measured) ends after its deadline is refused at once, with a
//     Retry-After from the time the line needs to drain, spread by a jitter; so is one that
//     could not be answered before the edge's cut. Without a measured completion there is no
//     estimate and no early refusal.
//   - The limit is fixed when the user sets one. By default it is found from the backend's own
//     latency (limit.go, fit.go): it comes down to the knee of a CPU-bound backend (Little's
//     law: throughput times unloaded latency, plus one) and never throttles one that is only
//     waiting (latency that does not grow with concurrency), without ever being lowered to
//     re-measure.
//   - Only the time to the first byte is a latency sample, and an event stream or a WebSocket
//     gives its slot back at its first byte: a stream may last minutes, and holding a slot for
//     it would starve short requests and make its length look like a slow backend.
//
// Files: the gate and Acquire (gate.go), the line's bookkeeping (line.go), the caller's
// controls (control.go: Pause, Resume, Fail), a slot's life (slot.go), the pace after a Resume
// (pace.go), the adaptive limit (limit.go) and its fit of latency against concurrency
// (fit.go), the completion rate (service.go), refusal outcomes (outcome.go), refusing episodes
// (episode.go) and the Snapshot (snapshot.go). docs/overload-design.md says how the limit was
// chosen and what was measured.
//
// The package knows no HTTP: the caller maps requests to a Request (deadline, holdable,
// stream), answers refusals (503 with Retry-After), and reports the answer's first byte. It
// imports nothing of hfgate, and its only goroutines are the callers' and the pace timer.
package gate
