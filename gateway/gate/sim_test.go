package gate

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"
)

// A simulated backend and an open-loop load, on virtual time (run inside a synctest bubble).

// cpu is one worker shared equally among the requests in it (processor sharing, as one uvicorn
// worker runs sync handlers or CPU-heavy coroutines): a request needing w of CPU alone takes
// n·w with n in it.
type cpu struct {
	arrive chan *job
	fifo   bool // one request at a time in arrival order (CPU work inside an async handler)
}

type job struct {
	left float64 // seconds of CPU still needed
	done chan struct{}
}

func newCPU(ctx context.Context) *cpu {
	c := &cpu{arrive: make(chan *job)}
	go c.run(ctx)
	return c
}

// newFIFO is a worker that serves one request at a time, in arrival order: a handler that
// burns its CPU inside an async function blocks uvicorn's event loop, and the requests behind
// it wait their turn.
func newFIFO(ctx context.Context) *cpu {
	c := &cpu{arrive: make(chan *job), fifo: true}
	go c.run(ctx)
	return c
}

// serve blocks until work of CPU was given to the request.
func (c *cpu) serve(work time.Duration) {
	j := &job{left: work.Seconds(), done: make(chan struct{})}
	c.arrive <- j
	<-j.done
}

func (c *cpu) run(ctx context.Context) {
	var jobs []*job
	last := time.Now()
	for {
		now := time.Now()
		if n := len(jobs); n > 0 && c.fifo {
			if jobs[0].left -= now.Sub(last).Seconds(); jobs[0].left <= 1e-6 {
				close(jobs[0].done)
				jobs = jobs[1:]
			}
		} else if n > 0 {
			share := now.Sub(last).Seconds() / float64(n)
			jobs = slices.DeleteFunc(jobs, func(j *job) bool {
				j.left -= share
				if j.left > 1e-6 {
					return false
				}
				close(j.done)
				return true
			})
		}
		last = now
		var next <-chan time.Time
		if n := len(jobs); n > 0 && c.fifo {
			next = time.After(time.Duration(math.Ceil(jobs[0].left * 1e9)))
		} else if n > 0 {
			least := slices.MinFunc(jobs, func(a, b *job) int { return cmpf(a.left, b.left) }).left
			next = time.After(time.Duration(math.Ceil(least * float64(n) * 1e9)))
		}
		select {
		case j := <-c.arrive:
			jobs = append(jobs, j)
		case <-next:
		case <-ctx.Done():
			return
		}
	}
}

func cmpf(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// kind is what one request costs the backend: CPU work shared with the others, or a wait
// (I/O) that does not depend on them.
type kind struct {
	cpu  time.Duration
	wait time.Duration
}

var (
	cpuBound = kind{cpu: 200 * time.Millisecond} // 5 requests a second on one worker
	ioBound  = kind{wait: 2 * time.Second}       // a remote call
)

// limitEvery is how often load samples the limit.
const limitEvery = 100 * time.Millisecond

// run is the outcome of one simulated load.
type run struct {
	mu       sync.Mutex
	ok       []time.Duration // latencies of answered requests
	refused  map[Outcome][]time.Duration
	cutOff   int // clients that gave up at 60 s (a 504 at the edge)
	limits   []int
	inflight int // most seen in flight
}

func (r *run) okRecord(d time.Duration) { r.mu.Lock(); r.ok = append(r.ok, d); r.mu.Unlock() }

// load offers rate requests a second (Poisson arrivals, fixed seed) for dur; kindAt says what a
// request arriving at t (from the start) costs. It samples the limit every limitEvery.
func load(t *testing.T, g *Gate, c *cpu, rate float64, dur time.Duration, kindAt func(time.Duration) kind) *run {
	t.Helper()
	r := &run{refused: map[Outcome][]time.Duration{}}
	rng := rand.New(rand.NewPCG(1, 2))
	start := time.Now()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	go sampleLimit(g, r, stop)
	for time.Since(start) < dur {
		k := kindAt(time.Since(start))
		wg.Go(func() { client(g, c, k, r) })
		time.Sleep(time.Duration(rng.ExpFloat64() / rate * float64(time.Second)))
	}
	wg.Wait()
	close(stop)
	return r
}

func sampleLimit(g *Gate, r *run, stop <-chan struct{}) {
	for {
		s := g.Snapshot()
		r.mu.Lock()
		r.limits = append(r.limits, s.Limit)
		r.inflight = max(r.inflight, s.InFlight)
		r.mu.Unlock()
		select {
		case <-stop:
			return
		case <-time.After(limitEvery):
		}
	}
}

// client is one request with HF's edge in front: it gives up after 60 s.
func client(g *Gate, c *cpu, k kind, r *run) {
	arrived := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := g.Acquire(ctx, Request{Arrived: arrived, Deadline: arrived.Add(10 * time.Second), Hold: true})
	if err != nil {
		o := err.(*Refusal).Outcome
		r.mu.Lock()
		r.refused[o] = append(r.refused[o], time.Since(arrived))
		r.mu.Unlock()
		return
	}
	answered := make(chan struct{})
	go func() {
		time.Sleep(k.wait)
		if k.cpu > 0 {
			c.serve(k.cpu)
		}
		close(answered)
	}()
	select {
	case <-answered:
		s.FirstByte(false)
		s.Done()
		r.okRecord(time.Since(arrived))
	case <-ctx.Done():
		s.Abandon()
		s.Done() // the proxy gives up; the backend goes on with the work
		r.mu.Lock()
		r.cutOff++
		r.mu.Unlock()
		<-answered
	}
}

// refusals returns the number of refusals and how many of them came within early of arrival.
func (r *run) refusals(early time.Duration) (n, fast int) {
	for _, ds := range r.refused {
		for _, d := range ds {
			n++
			if d <= early {
				fast++
			}
		}
	}
	return n, fast
}

func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[min(int(q*float64(len(s))), len(s)-1)]
}
