package gate

import (
	"fmt"
	"time"
)

// Outcome is how one Acquire ended. Only Admitted lets the request go on to the backend; every
// other outcome is a *Refusal.
type Outcome string

// The outcomes of Acquire. The first six are today's hold outcomes under new names (see the
// gateway's holdOutcome); Busy and Cut are the early, honest refusals.
const (
	// Admitted: a slot was free (at once, or at the request's turn in line).
	Admitted Outcome = "admitted"
	// NotHeld: the gate was paused (the backend is down) and the request was not holdable
	// (Request.Hold false: a first cold start, holding off); answered at once.
	NotHeld Outcome = "not_held"
	// Timeout: the request's deadline passed while it waited, or had passed already when it
	// would have had to wait.
	Timeout Outcome = "timed_out"
	// Full: Options.MaxWaiting requests were already waiting.
	Full Outcome = "overflow"
	// Gone: the request's context ended while it waited; it is never admitted after that.
	Gone Outcome = "client_gone"
	// Failed: the caller failed the waiters (Fail, FailBefore): draining, or a backend not
	// expected back before their deadlines. Refusal.Cause says why.
	Failed Outcome = "gave_up"
	// Busy: the request's expected wait (its place in line over the measured completion rate)
	// ends after its deadline; refused at once instead of at the deadline.
	Busy Outcome = "busy"
	// Cut: a non-streaming request whose expected wait plus expected service time ends after
	// the edge's cut (Options.EdgeTimeout from its arrival); refused at once.
	Cut Outcome = "edge_cut"
)

// Refusal is the error Acquire returns when it does not admit a request.
type Refusal struct {
	// Outcome is why (never Admitted).
	Outcome Outcome
	// Overload says the backend is up but busy: Busy and Cut, and Full and Timeout while the
	// gate was open. The caller answers these with its busy answer and RetryAfter, the others
	// (NotHeld, Failed, and Full or Timeout while paused) with its not-ready one.
	Overload bool
	// RetryAfter is, for an overload, when to come back in whole seconds: the estimated time
	// for the line to drain, spread by Options.Jitter, at least 1 and at most 120 (the OpenAI
	// SDK ignores a longer one). Zero when there is no estimate yet (no completion measured),
	// and for the other refusals, whose Retry-After is the caller's (the backend's start-up).
	RetryAfter int
	// Waited is how long the request waited in line (zero for an early refusal).
	Waited time.Duration
	// Cause is the error given to Fail or FailBefore, or the context's cause for Gone.
	Cause error
}

func (r *Refusal) Error() string {
	if r.Cause != nil {
		return fmt.Sprintf("gate: %s after %v: %v", r.Outcome, r.Waited, r.Cause)
	}
	return fmt.Sprintf("gate: %s after %v", r.Outcome, r.Waited)
}

// Unwrap returns the cause, so errors.Is(err, context.Canceled) holds for a client that left.
func (r *Refusal) Unwrap() error { return r.Cause }
