package gate

import (
	"math/rand/v2"
	"slices"
	"testing"
	"testing/synctest"
	"time"
)

// The simulated loads: one worker shared among the requests in it (CPU-bound: 200 ms of CPU a
// request, 5 a second) or a wait that does not depend on them (I/O-bound: 2 s), offered 25
// requests a second, open loop, each client giving up after 60 s like HF's edge. Each request
// may wait 10 s in line (HOLD_TIMEOUT). Run with -v to see the figures.

func simGate(t *testing.T, o Options) *Gate {
	t.Helper()
	o.Jitter = same
	return newGate(t, o)
}

func report(t *testing.T, name string, r *run) {
	t.Helper()
	n, fast := r.refusals(time.Second)
	counts := map[Outcome]int{}
	for o, ds := range r.refused {
		counts[o] = len(ds)
	}
	t.Logf("%s: ok %d (p50 %v p99 %v), refused %d (%d within 1s) %v, cut off %d, max in flight %d",
		name, len(r.ok), quantile(r.ok, 0.5), quantile(r.ok, 0.99), n, fast, counts, r.cutOff, r.inflight)
	t.Logf("%s: limit each second %v", name, every(r.limits, 10))
}

func every(xs []int, k int) []int {
	var out []int
	for i := 0; i < len(xs); i += k {
		out = append(out, xs[i])
	}
	return out
}

// limitsBetween returns the limits sampled from a to b after the start of the load.
func (r *run) limitsBetween(a, b time.Duration) []int {
	return r.limits[min(int(a/limitEvery), len(r.limits)):min(int(b/limitEvery), len(r.limits))]
}

// checkLimits fails the test unless every limit sampled from a to b is in [lo, hi].
func checkLimits(t *testing.T, r *run, a, b time.Duration, lo, hi int) {
	t.Helper()
	for i, l := range r.limitsBetween(a, b) {
		if l < lo || l > hi {
			t.Errorf("limit %d at %v, want %d to %d from %v to %v", l, a+time.Duration(i)*limitEvery, lo, hi, a, b)
			return
		}
	}
}

func TestSimCPUBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		checkCPUBound(t, "cpu-bound", load(t, simGate(t, Options{}), newCPU(t.Context()), 25, 30*time.Second, func(time.Duration) kind { return cpuBound }))
	})
}

// TestSimCPUBoundFIFO is TestSimCPUBound with a worker that serves one request at a time in
// arrival order (CPU work inside an async handler blocks uvicorn's event loop). Read against
// the average concurrency over each request's life alone, its latencies showed no knee and the
// limit grew (15-19 here; in make bench-overload requests waited 55 s inside uvicorn): the
// fit against the concurrency at admission sees it.
func TestSimCPUBoundFIFO(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		checkCPUBound(t, "fifo cpu-bound", load(t, simGate(t, Options{}), newFIFO(t.Context()), 25, 30*time.Second, func(time.Duration) kind { return cpuBound }))
	})
}

// checkCPUBound checks a CPU-bound load of 25 a second for 30 s against one worker of 5 a
// second: the limit converged within seconds, goodput is the capacity, refusals come early.
func checkCPUBound(t *testing.T, name string, r *run) {
	t.Helper()
	report(t, name, r)
	checkLimits(t, r, 0, 60*time.Second, 1, 1000)
	checkLimits(t, r, 10*time.Second, 60*time.Second, 1, 4) // converged within seconds
	// Goodput is the backend's capacity: 5 a second over the 30 s, and the line it had.
	if len(r.ok) < 150 || r.cutOff != 0 {
		t.Errorf("%d answered, %d cut off at 60 s; want at least 150 (capacity) and none cut", len(r.ok), r.cutOff)
	}
	// Refused early: at once when the estimate says so; only those that came before the
	// first completion (no estimate yet) waited.
	if n, fast := r.refusals(time.Second); fast < n*85/100 {
		t.Errorf("%d of %d refusals within 1 s, want at least 85%%", fast, n)
	}
	if p99 := quantile(r.ok, 0.99); p99 > 12*time.Second {
		t.Errorf("p99 of the answered %v, want at most the 10 s wait plus service", p99)
	}
}

func TestSimIOBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := simGate(t, Options{})
		r := load(t, g, newCPU(t.Context()), 25, 30*time.Second, func(time.Duration) kind { return ioBound })
		report(t, "io-bound", r)
		if n, _ := r.refusals(time.Second); n != 0 || r.cutOff != 0 {
			t.Errorf("%d refused, %d cut off; want every request answered", n, r.cutOff)
		}
		if got := slices.Max(r.limits); got <= 50 {
			t.Errorf("the limit reached %d, want above the 50 needed (25/s x 2 s)", got)
		}
		checkLimits(t, r, 5*time.Second, 60*time.Second, 51, 1000)
		if p99 := quantile(r.ok, 0.99); p99 > 3*time.Second {
			t.Errorf("p99 %v, want at most 3 s", p99)
		}
	})
}

func TestSimSwitch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := simGate(t, Options{})
		// CPU-bound for 30 s, I/O-bound for 40 s, CPU-bound again for 40 s.
		r := load(t, g, newCPU(t.Context()), 25, 110*time.Second, func(at time.Duration) kind {
			if at >= 30*time.Second && at < 70*time.Second {
				return ioBound
			}
			return cpuBound
		})
		report(t, "switch", r)
		checkLimits(t, r, 15*time.Second, 30*time.Second, 1, 4)
		// The line holds 10 s of CPU-bound requests when the load changes; then the limit
		// opens up within seconds.
		checkLimits(t, r, 55*time.Second, 70*time.Second, 51, 1000)
		checkLimits(t, r, 95*time.Second, 110*time.Second, 1, 4)
		if r.cutOff != 0 {
			t.Errorf("%d cut off at 60 s, want none", r.cutOff)
		}
	})
}

func TestSimBounds(t *testing.T) {
	tests := []struct {
		name     string
		o        Options
		k        kind
		lo, hi   int // from 15 s on
		min, max int // throughout
	}{
		{"cpu-bound above MinLimit", Options{MinLimit: 3}, cpuBound, 3, 4, 3, 1000},
		{"io-bound below MaxLimit", Options{MaxLimit: 20}, ioBound, 20, 20, 1, 20},
		{"fixed", Options{Limit: 7}, cpuBound, 7, 7, 7, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				g := simGate(t, tt.o)
				r := load(t, g, newCPU(t.Context()), 25, 30*time.Second, func(time.Duration) kind { return tt.k })
				report(t, tt.name, r)
				checkLimits(t, r, 15*time.Second, 30*time.Second, tt.lo, tt.hi)
				checkLimits(t, r, 0, 60*time.Second, tt.min, tt.max)
			})
		})
	}
}

// draw returns a service time with mean mean seconds and coefficient of variation cv (a
// gamma distribution with a whole shape).
func draw(rng *rand.Rand, cv, mean float64) time.Duration {
	k := max(int(1/(cv*cv)+0.5), 1)
	s := 0.0
	for range k {
		s += rng.ExpFloat64()
	}
	return time.Duration(s / float64(k) * mean * 1e9)
}

// TestSimNoisy is the same with service times that vary from request to request, as a model's
// with prompts of different lengths and a remote call's do: the limit still comes down for a
// CPU-bound backend (more slowly: the noise hides the slope) and never throttles an I/O-bound
// one.
func TestSimNoisy(t *testing.T) {
	tests := []struct {
		name   string
		k      func(*rand.Rand) kind
		lo, hi int
	}{
		{"io-bound cv 0.5", func(rng *rand.Rand) kind { return kind{wait: draw(rng, 0.5, 2)} }, 51, 1000},
		{"io-bound cv 1", func(rng *rand.Rand) kind { return kind{wait: draw(rng, 1, 2)} }, 51, 1000},
		{"cpu-bound cv 0.3", func(rng *rand.Rand) kind { return kind{cpu: draw(rng, 0.3, 0.2)} }, 1, 8},
		{"cpu-bound cv 1", func(rng *rand.Rand) kind { return kind{cpu: draw(rng, 1, 0.2)} }, 1, 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				g := simGate(t, Options{})
				rng := rand.New(rand.NewPCG(3, 4))
				r := load(t, g, newCPU(t.Context()), 25, 90*time.Second, func(time.Duration) kind { return tt.k(rng) })
				report(t, tt.name, r)
				checkLimits(t, r, 60*time.Second, 90*time.Second, tt.lo, tt.hi)
				if r.cutOff != 0 {
					t.Errorf("%d cut off at 60 s, want none", r.cutOff)
				}
				if n, _ := r.refusals(time.Second); tt.lo > 50 && n != 0 {
					t.Errorf("%d refused, want none", n)
				}
			})
		})
	}
}
