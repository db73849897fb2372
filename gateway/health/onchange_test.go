package health

import (
	"log/slog"
	"testing"
)

// TestTrackerOnChange: OnChange is called once after each transition, without the tracker's
// lock (it may read the state, as the gateway's gate does), before the Mark method returns, and
// not at all for a Mark that changes nothing.
func TestTrackerOnChange(t *testing.T) {
	t.Parallel()
	var (
		r     *Tracker
		calls int
		seen  []State
	)
	r = NewTracker(TrackerOptions{
		Logger: slog.New(slog.DiscardHandler),
		OnChange: func() {
			calls++
			// Under the lock, TryLock would fail (and State would deadlock).
			if !r.mu.TryLock() {
				t.Errorf("OnChange called with the tracker's lock held (call %d)", calls)
				return
			}
			r.mu.Unlock()
			seen = append(seen, r.State())
		},
	})
	steps := []struct {
		name   string
		mark   func()
		change bool
		want   State
	}{
		{"probe fails while starting", r.MarkProbeFailed, false, Starting},
		{"ready", r.MarkReady, true, Ready},
		{"ready again", r.MarkReady, false, Ready},
		{"unreachable", r.MarkUnreachable, true, Unavailable},
		{"unreachable again", r.MarkUnreachable, false, Unavailable},
		{"crashed", r.MarkCrashed, true, Crashed},
		{"started", r.MarkStarted, true, Starting},
		{"started again", r.MarkStarted, false, Starting},
		{"ready after the restart", r.MarkReady, true, Ready},
		{"started while ready", r.MarkStarted, false, Ready},
		{"draining", r.MarkDraining, true, Draining},
		{"crashed while draining", r.MarkCrashed, false, Draining},
	}
	for _, s := range steps {
		before := calls
		s.mark()
		// Synchronous: the call has happened by the time the Mark method returns.
		want := before
		if s.change {
			want++
		}
		if calls != want {
			t.Fatalf("%s: OnChange called %d times, want %d", s.name, calls-before, want-before)
		}
		if s.change && seen[len(seen)-1] != s.want {
			t.Errorf("%s: OnChange saw state %q, want %q (the new state)", s.name, seen[len(seen)-1], s.want)
		}
	}

	// MarkMisconfigured goes through the same path.
	m := 0
	r2 := NewTracker(TrackerOptions{Logger: slog.New(slog.DiscardHandler), OnChange: func() { m++ }})
	r2.MarkMisconfigured([]string{"A"})
	r2.MarkMisconfigured([]string{"A"})
	if m != 1 {
		t.Errorf("MarkMisconfigured twice: OnChange called %d times, want 1", m)
	}
}
