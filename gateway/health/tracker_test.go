package health

import (
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/hfgate/hfgate/logging/logtest"
)

// fakeClock is a manually advanced clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestTrackerTransitions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		steps func(r *Tracker, clock *fakeClock)
		want  State
	}{
		{"initial", func(*Tracker, *fakeClock) {}, Starting},
		{"probe passes", func(r *Tracker, _ *fakeClock) { r.MarkReady() }, Ready},
		{"probe fails while starting stays starting", func(r *Tracker, _ *fakeClock) { r.MarkProbeFailed() }, Starting},
		{"probe fails while ready", func(r *Tracker, _ *fakeClock) { r.MarkReady(); r.MarkProbeFailed() }, Unavailable},
		{"unreachable while ready", func(r *Tracker, _ *fakeClock) { r.MarkReady(); r.MarkUnreachable() }, Unavailable},
		{"unreachable while starting stays", func(r *Tracker, _ *fakeClock) { r.MarkUnreachable() }, Starting},
		{"crash", func(r *Tracker, _ *fakeClock) { r.MarkReady(); r.MarkCrashed() }, Crashed},
		{"restart after crash", func(r *Tracker, _ *fakeClock) { r.MarkCrashed(); r.MarkStarted() }, Starting},
		{"misconfigured is terminal", func(r *Tracker, _ *fakeClock) {
			r.MarkMisconfigured([]string{"A"})
			r.MarkReady()
			r.MarkStarted()
			r.MarkCrashed()
		}, Misconfigured},
		{"draining from ready", func(r *Tracker, _ *fakeClock) { r.MarkReady(); r.MarkDraining() }, Draining},
		{"draining from starting", func(r *Tracker, _ *fakeClock) { r.MarkDraining() }, Draining},
		{"draining is terminal", func(r *Tracker, _ *fakeClock) {
			r.MarkDraining()
			r.MarkReady()
			r.MarkStarted()
			r.MarkCrashed()
			r.MarkUnreachable()
		}, Draining},
		{"misconfigured stays misconfigured when draining", func(r *Tracker, _ *fakeClock) {
			r.MarkMisconfigured([]string{"A"})
			r.MarkDraining()
		}, Misconfigured},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clock := newFakeClock()
			r := NewTracker(TrackerOptions{Logger: logtest.NewSink().Logger(), Now: clock.Now})
			tt.steps(r, clock)
			if got := r.Snapshot().State; got != tt.want {
				t.Errorf("state = %q, want %q", got, tt.want)
			}
			if got, want := r.IsReady(), tt.want == Ready; got != want {
				t.Errorf("IsReady() = %v, want %v", got, want)
			}
		})
	}
}

func TestTrackerLogsEachTransitionOnceWithStartupTime(t *testing.T) {
	t.Parallel()
	logs := logtest.NewSink()
	clock := newFakeClock()
	r := NewTracker(TrackerOptions{Logger: logs.Logger(), Now: clock.Now})
	clock.Advance(1500 * time.Millisecond)
	r.MarkReady()
	r.MarkReady() // no transition, no line
	clock.Advance(time.Minute)
	r.MarkUnreachable()
	r.MarkUnreachable()
	clock.Advance(2 * time.Second)
	r.MarkReady()

	recs := logs.Records(t, "")
	if len(recs) != 3 {
		t.Fatalf("got %d log lines, want 3:\n%s", len(recs), logs.String())
	}
	want := []struct{ from, to, cameUp string }{
		{"starting", "ready", "1.5s"},
		{"ready", "unavailable", ""},
		{"unavailable", "ready", "2s"},
	}
	for i, w := range want {
		rec := recs[i]
		if rec["msg"] != "upstream state" || rec["from"] != w.from || rec["to"] != w.to {
			t.Errorf("line %d = %v, want upstream state from %s to %s", i, rec, w.from, w.to)
		}
		if w.cameUp != "" {
			got := time.Duration(rec["came_up_in"].(float64)).String()
			if got != w.cameUp {
				t.Errorf("line %d came_up_in = %s, want %s", i, got, w.cameUp)
			}
		}
	}
	if got := r.Snapshot().LastStartup; got != 2*time.Second {
		t.Errorf("LastStartup = %v, want 2s", got)
	}
}

func TestTrackerUnreachableWakesProber(t *testing.T) {
	t.Parallel()
	r := NewTracker(TrackerOptions{Logger: slog.New(slog.DiscardHandler)})
	r.MarkReady()
	r.MarkUnreachable()
	select {
	case <-r.Wake():
	default:
		t.Fatal("MarkUnreachable did not wake the prober")
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		steps       func(r *Tracker, clock *fakeClock)
		nextAttempt time.Duration // from now; 0 = none
		want        int
	}{
		{"no start-up seen: default guess", func(*Tracker, *fakeClock) {}, 0, 5},
		{"default guess minus time spent", func(_ *Tracker, c *fakeClock) { c.Advance(3 * time.Second) }, 0, 2},
		{"never below 1", func(_ *Tracker, c *fakeClock) { c.Advance(time.Hour) }, 0, 1},
		{"observed start-up time", func(r *Tracker, c *fakeClock) {
			c.Advance(12 * time.Second)
			r.MarkReady()
			r.MarkUnreachable()
			c.Advance(2 * time.Second)
		}, 0, 10},
		{"capped at 30", func(r *Tracker, c *fakeClock) {
			c.Advance(5 * time.Minute)
			r.MarkReady()
			r.MarkCrashed()
		}, 0, 30},
		{"scheduled restart adds its wait", func(r *Tracker, c *fakeClock) {
			c.Advance(4 * time.Second)
			r.MarkReady()
			r.MarkCrashed()
		}, 3 * time.Second, 7},
		{"misconfigured: maximum", func(r *Tracker, _ *fakeClock) { r.MarkMisconfigured([]string{"X"}) }, 0, 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clock := newFakeClock()
			r := NewTracker(TrackerOptions{Logger: slog.New(slog.DiscardHandler), Now: clock.Now})
			tt.steps(r, clock)
			var next time.Time
			if tt.nextAttempt > 0 {
				next = clock.Now().Add(tt.nextAttempt)
			}
			if got := r.RetryAfter(next); got != tt.want {
				t.Errorf("RetryAfter = %d, want %d", got, tt.want)
			}
		})
	}
}

// TestRemainingCountsBackoffOnce: the estimate for a restart is the backoff wait plus what the
// last start took from child start to ready, not the last whole outage (which held the previous
// backoff wait too).
func TestRemainingCountsBackoffOnce(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	r := NewTracker(TrackerOptions{Logger: logtest.NewSink().Logger(), Now: clock.Now})
	if _, known := r.Remaining(time.Time{}); known {
		t.Fatal("Remaining known before any start-up")
	}
	clock.Advance(2 * time.Second)
	r.MarkReady() // the first cold start: 2 s
	r.MarkCrashed()
	clock.Advance(4 * time.Second) // a 4 s backoff
	r.MarkStarted()
	clock.Advance(1500 * time.Millisecond)
	r.MarkReady() // outage 5.5 s, of which the start took 1.5 s

	r.MarkCrashed()
	next := clock.Now().Add(8 * time.Second)
	if got, _ := r.Remaining(next); got != 9500*time.Millisecond {
		t.Errorf("in backoff: Remaining = %v, want 8s + 1.5s", got)
	}
	clock.Advance(8 * time.Second)
	r.MarkStarted()
	clock.Advance(time.Second)
	if got, _ := r.Remaining(time.Time{}); got != 500*time.Millisecond {
		t.Errorf("starting for 1s: Remaining = %v, want 0.5s", got)
	}
	clock.Advance(2 * time.Second)
	if got, _ := r.Remaining(time.Time{}); got != -1500*time.Millisecond {
		t.Errorf("overdue: Remaining = %v, want -1.5s", got)
	}
	r.MarkDraining()
	if _, known := r.Remaining(time.Time{}); known {
		t.Error("Remaining known while draining")
	}
}
