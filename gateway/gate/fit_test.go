package gate

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestKnees(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	tests := []struct {
		name   string
		sample func(n float64) float64
		lo, hi float64 // the range must lie within these
	}{
		// One worker shared by n: 200 ms alone, n·200 ms with n. The knee (latency twice
		// the unloaded) is at 2.
		{"cpu-bound", func(n float64) float64 { return 0.2 * n }, 1.9, 2.1},
		// 2 s whatever the concurrency: no knee.
		{"io-bound", func(float64) float64 { return 2 }, math.Inf(1), math.Inf(1)},
		// 2 s of waiting plus 50 ms of CPU each: the knee is at 2 + 2/0.05 = 42.
		{"mixed", func(n float64) float64 { return 2 + 0.05*n }, 41, 43},
		// Noisy waiting: the slope is not surely positive, so hi stays open.
		{"io-bound, noisy", func(float64) float64 { return 1 + 2*rng.Float64() }, 0, math.Inf(1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f fit
			for i := range 64 {
				f.add(float64(1+i%40), tt.sample(float64(1+i%40)))
			}
			lo, hi := f.knees()
			if lo < tt.lo || hi > tt.hi || lo > hi {
				t.Errorf("knees = [%.2f, %.2f], want within [%.2f, %.2f]", lo, hi, tt.lo, tt.hi)
			}
			if tt.name == "io-bound, noisy" && !math.IsInf(hi, 1) {
				t.Errorf("noise brought hi down to %.2f", hi)
			}
		})
	}
}

func TestFitTooLittleSaysNothing(t *testing.T) {
	var f fit
	for range 100 {
		f.add(8, 1.6) // all at one concurrency
	}
	if lo, hi := f.knees(); lo != 0 || !math.IsInf(hi, 1) {
		t.Errorf("knees of samples at one concurrency = [%v, %v], want [0, +Inf]", lo, hi)
	}
	f = fit{}
	f.add(1, 0.2)
	f.add(2, 0.4)
	if lo, hi := f.knees(); lo != 0 || !math.IsInf(hi, 1) {
		t.Errorf("knees of two samples = [%v, %v], want [0, +Inf]", lo, hi)
	}
}

func TestFitFallingLatencySaysNothing(t *testing.T) {
	var f fit
	for i := range 64 {
		n := float64(1 + i%10)
		f.add(n, 3-0.2*n) // slower at low concurrency: the samples' doing, not the backend's
	}
	if lo, hi := f.knees(); lo != 0 || !math.IsInf(hi, 1) {
		t.Errorf("knees = [%v, %v], want [0, +Inf]", lo, hi)
	}
}

func TestFitStartsAfreshWhenTheBackendChanges(t *testing.T) {
	var f fit
	for i := range 64 {
		n := float64(1 + i%4)
		f.add(n, 0.2*n) // CPU-bound at 1 to 4
	}
	// Now 2 s at the same concurrency: an I/O-bound backend. One such sample is held back
	// as a possible outlier; the third in a row starts the fit afresh.
	for i := range surpriseRun {
		if fresh := f.add(3, 2); fresh != (i == surpriseRun-1) {
			t.Fatalf("sample %d: fresh = %v", i, fresh)
		}
	}
	if f.w > surpriseRun || f.mr != 2 {
		t.Errorf("after the change: weight %v, mean %v; want only the %d new samples", f.w, f.mr, surpriseRun)
	}
	// A lone outlier does not: it is added as the tail it was once the next sample is normal.
	f = fit{}
	for i := range 64 {
		f.add(float64(1+i%4), 2)
	}
	w := f.w
	if f.add(2, 20) || f.w != w {
		t.Fatalf("an outlier was added at once or started the fit afresh")
	}
	if f.add(2, 2) || f.w <= w*fitKeep*fitKeep+1.5 {
		t.Errorf("the outlier was dropped: weight %v", f.w)
	}
}

func TestLimiterMovesOnlyWhileBinding(t *testing.T) {
	l := newLimiter(Options{}.withDefaults())
	for i := range 100 {
		n := float64(1 + i%20)
		l.sample(n, n, 0.2*n, 10) // CPU-bound samples, but only 10 want in with a limit of 32
	}
	if l.value() != 32 {
		t.Errorf("limit %d after samples while it did not bind, want 32", l.value())
	}
	for i := range 100 {
		n := float64(1 + i%20)
		l.sample(n, n, 0.2*n, 100)
	}
	if l.value() > 3 {
		t.Errorf("limit %d once binding, want it down at the knee (2)", l.value())
	}
}
