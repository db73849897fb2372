package gate

import "math"

// limiter is the adaptive limit. It follows the knee of the backend's latency curve, the
// concurrency past which more requests in flight only wait inside the backend (see
// fit.knees), found from the latency of the requests themselves:
//
//   - It moves only while it binds (someone waits, or every slot is taken): a limit nobody
//     reaches throttles nothing, so it neither grows (no drift at low rates) nor shrinks then.
//   - The samples surely put the knee below the limit (latency grows with concurrency: a
//     CPU-bound backend): it comes down, an eighth of the way to the knee per sample.
//   - The samples surely put the knee above the limit (latency does not grow with
//     concurrency: an I/O-bound backend): it lets in what waits, as far as the evidence goes.
//   - The samples do not tell, and the backend has never looked congested: it grows by one per
//     sample, a doubling per round of answers (TCP's slow start).
//   - The samples do not tell, after congestion was seen: it moves by an eighth of itself per
//     round of answers, down while it is more than twice the fitted knee, up otherwise. So
//     noisy samples of a CPU-bound backend bring it down slowly, and a limit that sits at a
//     stale knee still moves away from it, which is what lets the fit find out whether the
//     backend changed.
//
// It never lowers the limit to re-measure (Envoy pins it to a minimum, and sheds meanwhile):
// the variation of concurrency the traffic and these steps produce is what the fit learns
// from.
//
// Two fits read the same latencies against two measures of concurrency, because backends queue
// in two ways. One worker that shares its CPU among the requests in it (threads, sync
// handlers) slows each request by every one in flight during its life: fit is against the
// average number in flight over the request's life. One that serves its requests one at a time
// in arrival order (CPU work inside an async handler blocks the event loop) slows a request
// only by those ahead of it, and the requests behind it, in flight too, make the life average
// fall while latency rises: admitted is against the number in flight when the request was
// admitted. Each reads the other kind of backend as "no knee" at worst, so the limit takes the
// lower knee: it comes down when either fit is sure the knee is below it, and lets more in
// only when both are sure it is above. (An I/O-bound backend shows no knee in either.)
type limiter struct {
	lo, hi    float64
	limit     float64
	fit       fit  // latency against the average concurrency over each request's life
	admitted  fit  // latency against the concurrency at each request's admission
	congested bool // the samples have put the knee below the limit at least once
}

// step is how far one sample moves the limit: an eighth of the way to the knee above it, or an
// eighth of a request while the fit is unsure (an eighth of the limit per round of answers).
const step = 1.0 / 8

func newLimiter(o Options) *limiter {
	return &limiter{lo: float64(o.MinLimit), hi: float64(o.MaxLimit), limit: float64(o.InitialLimit)}
}

// sample records one latency sample: r seconds to the first byte at average concurrency n over
// its life, ahead in flight at its admission (itself included). demand is the number of
// requests in flight or waiting when it came.
func (l *limiter) sample(n, ahead, r float64, demand int) {
	l.fit.add(n, r)
	l.admitted.add(ahead, r)
	lo, hi := l.knees()
	switch want := float64(demand); {
	case want <= l.limit:
		// Not binding.
	case l.limit > hi:
		l.congested = true
		l.limit -= (l.limit - hi) * step
	case lo > l.limit:
		l.limit = max(l.limit+1, min(lo, want))
	case !l.congested:
		l.limit = min(l.limit+1, hi)
	case l.limit > 2*min(l.fit.guess(), l.admitted.guess()):
		l.limit -= step
	default:
		l.limit = min(l.limit+step, hi)
	}
	l.limit = min(max(l.limit, l.lo), l.hi)
}

// knees is the range the knee is in, the lower of the two fits': the upper bound is the lower
// of theirs (either sure it is below is enough), the lower bound too (both must be sure it is
// above).
func (l *limiter) knees() (lo, hi float64) {
	lo1, hi1 := l.fit.knees()
	lo2, hi2 := l.admitted.knees()
	return min(lo1, lo2), min(hi1, hi2)
}

// expect is the latency the fit expects at concurrency n, in seconds (0 without a fit).
func (l *limiter) expect(n float64) float64 {
	if l.fit.w < fitMinWeight {
		return 0
	}
	return l.fit.mr + l.fit.slope()*(n-l.fit.mn)
}

// value is the limit in whole requests.
func (l *limiter) value() int { return int(math.Round(l.limit)) }
