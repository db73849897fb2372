package gate

import (
	"math/rand/v2"
	"os"
	"testing"
	"testing/synctest"
	"time"
)

func simGate(t *testing.T) *Gate {
	t.Helper()
	g, err := New(Options{Jitter: func(d time.Duration) time.Duration { return d }})
	if err != nil {
		t.Fatal(err)
	}
	return g
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
	t.Logf("%s: limits %v", name, every(r.limits, 10))
}

func every(xs []int, k int) []int {
	var out []int
	for i := 0; i < len(xs); i += k {
		out = append(out, xs[i])
	}
	return out
}

func TestSimCPUBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := simGate(t)
		c := newCPU(t.Context())
		r := load(t, g, c, 25, 30*time.Second, func(time.Duration) kind { return cpuBound })
		report(t, "cpu", r)
	})
}

func TestSimIOBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := simGate(t)
		c := newCPU(t.Context())
		r := load(t, g, c, 25, 30*time.Second, func(time.Duration) kind { return ioBound })
		report(t, "io", r)
	})
}

func TestSimSwitch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := simGate(t)
		c := newCPU(t.Context())
		r := load(t, g, c, 25, 90*time.Second, func(at time.Duration) kind {
			if at >= 30*time.Second && at < 60*time.Second {
				return ioBound
			}
			return cpuBound
		})
		report(t, "switch", r)
	})
}

func draw(rng *rand.Rand, cv, mean float64) time.Duration {
	k := max(int(1/(cv*cv)+0.5), 1)
	s := 0.0
	for range k {
		s += rng.ExpFloat64()
	}
	return time.Duration(s / float64(k) * mean * 1e9)
}

func TestSimNoisy(t *testing.T) {
	type scen struct {
		name string
		dur  time.Duration
		k    func(rng *rand.Rand, at time.Duration) kind
	}
	scens := []scen{
		{"io cv0.5", 60 * time.Second, func(rng *rand.Rand, at time.Duration) kind { return kind{wait: draw(rng, 0.5, 2)} }},
		{"io cv1", 60 * time.Second, func(rng *rand.Rand, at time.Duration) kind { return kind{wait: draw(rng, 1, 2)} }},
		{"cpu cv0.3", 60 * time.Second, func(rng *rand.Rand, at time.Duration) kind { return kind{cpu: draw(rng, 0.3, 0.2)} }},
		{"cpu cv0.6", 60 * time.Second, func(rng *rand.Rand, at time.Duration) kind { return kind{cpu: draw(rng, 0.6, 0.2)} }},
		{"cpu cv1", 60 * time.Second, func(rng *rand.Rand, at time.Duration) kind { return kind{cpu: draw(rng, 1, 0.2)} }},
		{"switch cv0.3", 120 * time.Second, func(rng *rand.Rand, at time.Duration) kind {
			if at >= 40*time.Second && at < 80*time.Second {
				return kind{wait: draw(rng, 0.3, 2)}
			}
			return kind{cpu: draw(rng, 0.3, 0.2)}
		}},
	}
	for _, sc := range scens {
		if f := os.Getenv("GATE_SCEN"); f != "" && f != sc.name {
			continue
		}
		synctest.Test(t, func(t *testing.T) {
			g := simGate(t)
			c := newCPU(t.Context())
			rng := rand.New(rand.NewPCG(3, 4))
			r := load(t, g, c, 25, sc.dur, func(at time.Duration) kind { return sc.k(rng, at) })
			report(t, sc.name, r)
		})
	}
}
