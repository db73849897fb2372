package gate

import "math"

// fit is a least-squares line through recent latency samples against the concurrency each one
// saw, latency ≈ a + b·n, with older samples weighing less (each new sample multiplies the
// weight of the others by fitKeep). b is the latency one more request in flight adds: the
// work the backend cannot overlap (1/b is its capacity, in requests a second); a is the part
// it can overlap (waiting on I/O). It is kept as weighted means and co-moments (West's
// incremental algorithm), so each sample costs a few multiplications and no memory.
//
// Forgetting is per sample, not per second: at a low request rate the fit keeps what it knew
// (no drift while nothing is measured). When the backend changes (a CPU-bound endpoint becomes
// the busy one), the old samples would mislead for dozens of samples: a run of samples far off
// the line on the same side starts the fit afresh.
type fit struct {
	w      float64 // the sum of the weights
	mn, mr float64 // weighted means of n and r
	nn, nr float64 // weighted co-moments: Σw(n-mn)², Σw(n-mn)(r-mr)
	rr     float64 // Σw(r-mr)²

	// Samples far off the line on one side (+1 above, -1 below), held back: a run of
	// surpriseRun of them starts the fit afresh with them; a sample near the line again adds
	// them as the tail they were.
	held  [surpriseRun - 1][2]float64
	nheld int
	side  int
}

const (
	// fitKeep: each sample multiplies the others' weight by it, so a sample's weight halves
	// after 22 newer ones.
	fitKeep = 1 - 1.0/32
	// fitMinWeight: fewer samples than this say nothing.
	fitMinWeight = 4
	// fitZ: the width of the slope's confidence interval, in standard errors each way.
	fitZ = 2
	// A sample is far off the line when it is off by more than surpriseSigmas residual
	// standard deviations plus surpriseShare of the prediction; surpriseRun such samples on
	// the same side in a row mean the backend changed.
	surpriseSigmas = 4
	surpriseShare  = 0.5
	surpriseRun    = 3
)

// add records one sample, latency r (seconds) at average concurrency n, and reports whether
// it started the fit afresh.
func (f *fit) add(n, r float64) (fresh bool) {
	side := f.off(n, r)
	if side == 0 || side != f.side {
		for _, s := range f.held[:f.nheld] {
			f.put(s[0], s[1])
		}
		f.nheld = 0
	}
	f.side = side
	if side == 0 {
		f.put(n, r)
		return false
	}
	if f.nheld < len(f.held) {
		f.held[f.nheld] = [2]float64{n, r}
		f.nheld++
		return false
	}
	held := f.held
	*f = fit{}
	for _, s := range held {
		f.put(s[0], s[1])
	}
	f.put(n, r)
	return true
}

// put adds a sample to the weighted sums.
func (f *fit) put(n, r float64) {
	f.w = f.w*fitKeep + 1
	f.nn *= fitKeep
	f.nr *= fitKeep
	f.rr *= fitKeep
	dn, dr := n-f.mn, r-f.mr
	f.mn += dn / f.w
	f.mr += dr / f.w
	f.nn += dn * (n - f.mn)
	f.nr += dn * (r - f.mr)
	f.rr += dr * (r - f.mr)
}

// spread reports whether the samples are spread over more than one concurrency.
func (f *fit) spread() bool { return f.w >= fitMinWeight && f.nn > 1e-9*f.w }

// slope is b, 0 for samples all at one concurrency.
func (f *fit) slope() float64 {
	if !f.spread() {
		return 0
	}
	return f.nr / f.nn
}

// sigma is the residual standard deviation.
func (f *fit) sigma() float64 {
	if f.w <= 2 {
		return 0
	}
	return math.Sqrt(max(f.rr-f.slope()*f.nr, 0) / (f.w - 2))
}

// off says on which side of the line (n, r) is when it is far off it (+1 above, -1 below), 0
// when it is not (or the fit has too few samples to say).
func (f *fit) off(n, r float64) int {
	if f.w < fitMinWeight {
		return 0
	}
	want := f.mr + f.slope()*(n-f.mn)
	switch d := r - want; {
	case d > surpriseSigmas*f.sigma()+surpriseShare*math.Abs(want):
		return 1
	case d < -surpriseSigmas*f.sigma()-surpriseShare*math.Abs(want):
		return -1
	}
	return 0
}

// knees returns the range the knee is in: the concurrency at which the backend's latency is
// twice what one request alone sees, n = 1 + (a+b)/b, which is one more than Little's law's
// throughput (1/b) times unloaded latency (a+b). Past it more concurrency adds only waiting
// inside the backend. The range comes from the slope's confidence interval (fitZ standard
// errors each way), so noise neither brings the limit down (hi is +Inf unless latency surely
// grows with concurrency) nor lets it jump up (lo is 0 unless the samples surely put the knee
// further). Too few or too alike samples say nothing: 0 and +Inf.
func (f *fit) knees() (lo, hi float64) {
	if !f.spread() {
		return 0, math.Inf(1)
	}
	b, se := f.slope(), f.sigma()/math.Sqrt(f.nn)
	if b+fitZ*se < -1e-9*f.mr {
		// Latency surely falling as concurrency grows is no backend's behaviour but the
		// samples' (the slow ones finishing now started when more were in flight): no answer.
		return 0, math.Inf(1)
	}
	return f.knee(b + fitZ*se), f.knee(b - fitZ*se)
}

// guess returns the knee of the fitted line itself, the best guess when the range knees
// returns is too wide to act on; +Inf when the samples cannot say.
func (f *fit) guess() float64 {
	if !f.spread() {
		return math.Inf(1)
	}
	return f.knee(f.slope())
}

// knee is the knee of the line through the means with slope b: +Inf for a slope not above 0.
func (f *fit) knee(b float64) float64 {
	if b <= 0 {
		return math.Inf(1)
	}
	unloaded := f.mr - b*(f.mn-1) // the latency at n = 1
	return 1 + max(unloaded, 0)/b
}
