package gate

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Options configure a Gate. Every zero value means the documented default.
type Options struct {
	// Limit fixes the number of requests in flight to the backend. Zero means adaptive: the
	// gate finds the limit from the backend's own latency, between MinLimit and MaxLimit (see
	// limit.go).
	Limit int

	// MinLimit and MaxLimit bound the adaptive limit. Zero means 1 and 1000. One is the least a
	// backend that works at all can be given (a single-threaded model is served best one request
	// at a time; no slot at all is Pause). A thousand is far above what an I/O-bound backend on
	// a Space needs (at 2 s a request it is 500 requests a second, more than one uvicorn parses
	// on 2 vCPUs) while it still bounds the upstream connections (file descriptors) hfgate
	// opens. Ignored with a fixed Limit.
	MinLimit, MaxLimit int

	// InitialLimit is the adaptive limit before any latency was measured. Zero means 32:
	// enough that an I/O-bound backend's first seconds do not queue past their deadlines while
	// the first answers are awaited (2 s at 25 requests a second is 50 in flight), few enough
	// that a CPU-bound one sees at most 32 requests at once before the limit comes down.
	InitialLimit int

	// MaxWaiting bounds the line (today's HOLD_MAX). Zero means 256.
	MaxWaiting int

	// EdgeTimeout is how long after its arrival the client of a non-streaming request stops
	// waiting for the answer: Hugging Face's edge answers 504 at about 60 s. A request whose
	// expected wait plus expected service time ends after it is refused at once (Cut). Zero
	// means 55s (the edge's 60 s less a margin for the way to the Space and the estimate's
	// spread); negative means no cut.
	EdgeTimeout time.Duration

	// ReleaseBatch and ReleaseEvery pace the line after Resume: ReleaseBatch waiters at once,
	// then ReleaseBatch more every ReleaseEvery, until the waiters present at Resume are gone,
	// so that a restarted backend, whose first requests are its slowest, does not get the whole
	// line in one burst. Zero means 8 and 5ms (256 waiters in 160 ms).
	ReleaseBatch int
	ReleaseEvery time.Duration

	// Jitter spreads the Retry-After of refusals so that refused clients do not come back in
	// step: it maps the estimated drain time to the time announced (rounded up to whole
	// seconds). Nil means a uniform random addition of up to a quarter of it, and at least up
	// to one second.
	Jitter func(d time.Duration) time.Duration

	// OnOutcome, if set, is called once per Acquire with its outcome and how long the request
	// waited in line (metrics: queue time, refusals by reason). It runs on the caller's
	// goroutine, without the gate's lock.
	OnOutcome func(o Outcome, waited time.Duration)

	// OnRefusing, if set, is called when the gate starts refusing requests because the backend
	// is busy (the refusals with Overload set) and when it stops (the line is empty and a slot
	// free again), with the counts of the episode, so that the caller logs one line each
	// instead of one per request. Calls are made in order, without the gate's lock.
	OnRefusing func(Episode)
}

func (o Options) withDefaults() Options {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&o.MinLimit, 1)
	def(&o.MaxLimit, 1000)
	def(&o.InitialLimit, 32)
	def(&o.MaxWaiting, 256)
	def(&o.ReleaseBatch, 8)
	if o.ReleaseEvery == 0 {
		o.ReleaseEvery = 5 * time.Millisecond
	}
	if o.EdgeTimeout == 0 {
		o.EdgeTimeout = 55 * time.Second
	}
	if o.Jitter == nil {
		o.Jitter = spread
	}
	o.InitialLimit = min(max(o.InitialLimit, o.MinLimit), o.MaxLimit)
	return o
}

func (o Options) validate() error {
	var errs []error
	if o.Limit < 0 {
		errs = append(errs, errors.New("limit: negative"))
	}
	if o.MinLimit < 0 || o.MaxLimit < 0 || o.InitialLimit < 0 {
		errs = append(errs, errors.New("adaptive limit bounds: negative"))
	}
	if d := o.withDefaults(); d.MinLimit > d.MaxLimit {
		errs = append(errs, fmt.Errorf("adaptive limit bounds: MinLimit %d above MaxLimit %d", d.MinLimit, d.MaxLimit))
	}
	if o.MaxWaiting < 0 {
		errs = append(errs, errors.New("max waiting: negative"))
	}
	if o.ReleaseBatch < 0 || o.ReleaseEvery < 0 {
		errs = append(errs, errors.New("release pace: negative"))
	}
	return errors.Join(errs...)
}

// spread is the default Jitter: up to a quarter more, and at least up to one second more.
func spread(d time.Duration) time.Duration {
	return d + rand.N(max(d/4, time.Second))
}
