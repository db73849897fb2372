package gate

import "time"

// service is the mean time a slot is held by requests that reached the backend (admission to
// release: the first byte for a stream, the end of the answer otherwise), an exponentially
// weighted mean over the last few dozen. With the limit it gives the rate at which slots turn
// over while every one is taken, Little's law: rate = limit / service. That is the completion
// rate the line advances at, and it follows a change of the limit at once, where a count of
// completions per second would lag it.
//
// A sample counts for at most serviceCap times the mean so far: one slow request (a model
// loading lazily after a restart) does not read as overload, while a real slowdown still shows
// within a dozen answers. The very first answer has nothing to compare with and counts as it
// is.
type service struct {
	mean  float64 // seconds
	count int
}

const (
	serviceWeight = 1.0 / 8
	serviceCap    = 4
)

func (s *service) add(d time.Duration) {
	v := d.Seconds()
	if s.count > 0 && s.mean > 0 {
		v = min(v, serviceCap*s.mean)
	}
	if s.count == 0 {
		s.mean = v
	} else {
		s.mean += (v - s.mean) * serviceWeight
	}
	s.count++
}

// known reports whether any completion was measured.
func (s *service) known() bool { return s.count > 0 }

// wait is the expected time until p more slots have turned over with limit slots: p·service/limit.
func (s *service) wait(p, limit int) time.Duration {
	return time.Duration(float64(p) * s.mean / float64(max(limit, 1)) * float64(time.Second))
}

// rate is the completions a second while every slot is taken, 0 when not known.
func (s *service) rate(limit int) float64 {
	if !s.known() || s.mean <= 0 {
		return 0
	}
	return float64(limit) / s.mean
}
