package gateway

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hfgate/hfgate/gateway/clientip"
	"github.com/hfgate/hfgate/gateway/gate"
	"github.com/hfgate/hfgate/gateway/health"
)

// admissionRig is an admission in front of a gate, driven by a tracker that has seen the
// upstream come up once (after 1 s) and is ready; next is the supervisor's next start.
func admissionRig(t *testing.T, timeout time.Duration, next func() time.Time) *admission {
	t.Helper()
	a := &admission{timeout: timeout, now: time.Now, next: next}
	var err error
	if a.gate, err = gate.New(gate.Options{}); err != nil {
		t.Fatal(err)
	}
	a.readiness = health.NewTracker(health.TrackerOptions{Logger: slog.New(slog.DiscardHandler), OnChange: a.sync})
	a.sync()
	time.Sleep(time.Second)
	a.readiness.MarkReady()
	return a
}

// waitInLine starts a request that waits in line (the upstream is down) and returns what its
// acquire returned and when.
func waitInLine(a *admission) (<-chan error, *flight) {
	now := time.Now()
	f := newFlight(context.Background(), clientip.Client{}, now, a.deadline(now))
	done := make(chan error, 1)
	go func() { done <- a.acquire(f, false) }()
	synctest.Wait()
	return done, f
}

func outcomeOf(err error) gate.Outcome {
	var ref *gate.Refusal
	if errors.As(err, &ref) {
		return ref.Outcome
	}
	return gate.Admitted
}

// TestAdmissionFollowsReadiness: the line is paused while the upstream is down and opens when it
// is back; a request held meanwhile goes in then, with its time in line.
func TestAdmissionFollowsReadiness(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := admissionRig(t, 10*time.Second, nil)
		a.readiness.MarkUnreachable()
		done, f := waitInLine(a)
		time.Sleep(2 * time.Second)
		a.readiness.MarkReady()
		if err := <-done; err != nil {
			t.Fatalf("acquire: %v, want admitted once the upstream is back", err)
		}
		if f.queued != 2*time.Second || f.slot == nil {
			t.Errorf("queued %v, slot %v; want 2s and a slot", f.queued, f.slot)
		}
		f.done()
	})
}

// TestAdmissionFailsInVain: waiting is ended at once, not at the deadline, when it is known to be
// vain: the gateway drains, or a supervised restart is scheduled after the waiter's deadline.
func TestAdmissionFailsInVain(t *testing.T) {
	for _, tt := range []struct {
		name string
		down func(a *admission, next *time.Time)
	}{
		{"draining", func(a *admission, _ *time.Time) { a.readiness.MarkDraining() }},
		{"restart after the deadline", func(a *admission, next *time.Time) {
			*next = time.Now().Add(30 * time.Second) // a crash loop's backoff
			a.readiness.MarkCrashed()
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var next time.Time
				a := admissionRig(t, 10*time.Second, func() time.Time { return next })
				a.readiness.MarkUnreachable()
				done, _ := waitInLine(a)
				start := time.Now()
				tt.down(a, &next)
				err := <-done
				if got := outcomeOf(err); got != gate.Failed || time.Since(start) != 0 {
					t.Errorf("got %s after %v, want %s at once", got, time.Since(start), gate.Failed)
				}
			})
		})
	}
}

// TestAdmissionReplayWaitsDespiteEstimate: a first attempt arriving while the upstream is down is
// not held when the last outage (10 s) says it will not be back within the deadline (3 s); a
// replay, which the gateway has decided to hold, waits all the same (issue 18, item 0).
func TestAdmissionReplayWaitsDespiteEstimate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := &admission{timeout: 3 * time.Second, now: time.Now}
		var err error
		if a.gate, err = gate.New(gate.Options{}); err != nil {
			t.Fatal(err)
		}
		a.readiness = health.NewTracker(health.TrackerOptions{Logger: slog.New(slog.DiscardHandler), OnChange: a.sync})
		a.sync()
		time.Sleep(10 * time.Second) // the first start took 10 s
		a.readiness.MarkReady()
		a.readiness.MarkUnreachable()
		now := time.Now()
		first := newFlight(context.Background(), clientip.Client{}, now, a.deadline(now))
		if got := outcomeOf(a.acquire(first, false)); got != gate.NotHeld {
			t.Errorf("first attempt: %s, want %s", got, gate.NotHeld)
		}
		replay := newFlight(context.Background(), clientip.Client{}, now, a.deadline(now))
		if got := outcomeOf(a.acquire(replay, true)); got != gate.Timeout || replay.queued != 3*time.Second {
			t.Errorf("replay: %s after %v, want %s at the 3s deadline", got, replay.queued, gate.Timeout)
		}
	})
}
