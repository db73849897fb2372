package gateway

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hfgate/hfgate/gateway/health"
)

// All hold tests run in a synctest bubble: time is virtual and advances only when every
// goroutine in the bubble is blocked, so deadlines and the release pace are exact.

// holdFixture is an upstream that came up once in 2 s and then crashed, with a hold queue in
// front of it. It must be called inside the bubble.
func holdFixture(t *testing.T, timeout time.Duration, max int) (*health.Tracker, *holdQueue) {
	t.Helper()
	r := health.NewTracker(health.TrackerOptions{Logger: slog.New(slog.DiscardHandler)})
	time.Sleep(2 * time.Second) // the first start-up
	r.MarkReady()
	r.MarkCrashed()
	return r, newHoldQueue(r, timeout, max, nil, time.Now)
}

// heldResult is what one waiter got.
type heldResult struct {
	outcome holdOutcome
	held    time.Duration
	at      time.Time
}

// holdAsync starts a waiter and returns a channel with its result.
func holdAsync(ctx context.Context, h *holdQueue) <-chan heldResult {
	ch := make(chan heldResult, 1)
	deadline := h.deadline()
	go func() {
		o, d := h.wait(ctx, deadline)
		ch <- heldResult{o, d, time.Now()}
	}()
	return ch
}

func TestHoldForwardsWhenReady(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, h := holdFixture(t, 10*time.Second, 256)
		res := holdAsync(t.Context(), h)
		synctest.Wait()
		if got := h.held(); got != 1 {
			t.Fatalf("held = %d, want 1", got)
		}
		time.Sleep(1500 * time.Millisecond)
		r.MarkStarted()
		r.MarkReady()
		got := <-res
		if got.outcome != holdForwarded || got.held != 1500*time.Millisecond {
			t.Errorf("got %s after %v, want forwarded after 1.5s", got.outcome, got.held)
		}
		synctest.Wait()
		if n := h.held(); n != 0 {
			t.Errorf("held after release = %d, want 0", n)
		}
	})
}

func TestHoldNotHeld(t *testing.T) {
	tests := []struct {
		name  string
		setup func(r *health.Tracker) *holdQueue
	}{
		{"first cold start has no estimate", func(r *health.Tracker) *holdQueue {
			return newHoldQueue(health.NewTracker(health.TrackerOptions{Logger: slog.New(slog.DiscardHandler)}), 10*time.Second, 256, nil, time.Now)
		}},
		{"holding off", func(r *health.Tracker) *holdQueue { return newHoldQueue(r, 0, 256, nil, time.Now) }},
		{"start-up longer than HOLD_TIMEOUT", func(r *health.Tracker) *holdQueue {
			return newHoldQueue(r, time.Second, 256, nil, time.Now)
		}},
		{"crash loop: next start after the deadline", func(r *health.Tracker) *holdQueue {
			next := time.Now().Add(9 * time.Second) // + 2 s start-up > 10 s
			return newHoldQueue(r, 10*time.Second, 256, func() time.Time { return next }, time.Now)
		}},
		{"draining", func(r *health.Tracker) *holdQueue {
			r.MarkDraining()
			return newHoldQueue(r, 10*time.Second, 256, nil, time.Now)
		}},
		{"misconfigured", func(r *health.Tracker) *holdQueue {
			r.MarkMisconfigured([]string{"API_KEY"})
			return newHoldQueue(r, 10*time.Second, 256, nil, time.Now)
		}},
		{"overdue by more than HOLD_TIMEOUT", func(r *health.Tracker) *holdQueue {
			time.Sleep(2*time.Second + 3*time.Second + time.Millisecond) // start-up + HOLD_TIMEOUT
			return newHoldQueue(r, 3*time.Second, 256, nil, time.Now)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r, _ := holdFixture(t, 0, 0)
				h := tt.setup(r)
				start := time.Now()
				o, d := h.wait(t.Context(), h.deadline())
				if o != holdNotHeld || d != 0 || time.Since(start) != 0 {
					t.Errorf("got %s after %v, want not_held at once", o, time.Since(start))
				}
			})
		})
	}
}

func TestHoldDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, h := holdFixture(t, 3*time.Second, 256)
		start := time.Now()
		got := <-holdAsync(t.Context(), h)
		if got.outcome != holdTimedOut || got.at.Sub(start) != 3*time.Second {
			t.Errorf("got %s after %v, want timed_out after 3s", got.outcome, got.at.Sub(start))
		}
		if n := h.held(); n != 0 {
			t.Errorf("held = %d, want 0", n)
		}
	})
}

func TestHoldOverflow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, h := holdFixture(t, 10*time.Second, 2)
		a, b := holdAsync(t.Context(), h), holdAsync(t.Context(), h)
		synctest.Wait()
		if o, _ := h.wait(t.Context(), h.deadline()); o != holdOverflow {
			t.Errorf("third request: %s, want overflow", o)
		}
		r.MarkStarted()
		r.MarkReady()
		for _, ch := range []<-chan heldResult{a, b} {
			if got := <-ch; got.outcome != holdForwarded {
				t.Errorf("held request: %s, want forwarded", got.outcome)
			}
		}
	})
}

func TestHoldGivesUpOnCrashLoop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, h := holdFixture(t, 10*time.Second, 256)
		var mu sync.Mutex
		var next time.Time
		h.next = func() time.Time { mu.Lock(); defer mu.Unlock(); return next }
		res := holdAsync(t.Context(), h)
		time.Sleep(time.Second)
		// The restart fails at once, and the next attempt is 8 s away: 1 + 8 + 2 > 10.
		r.MarkStarted()
		mu.Lock()
		next = time.Now().Add(8 * time.Second)
		mu.Unlock()
		r.MarkCrashed()
		got := <-res
		if got.outcome != holdGaveUp || got.held != time.Second {
			t.Errorf("got %s after %v, want gave_up after 1s (at the crash, not the deadline)", got.outcome, got.held)
		}
	})
}

func TestHoldGivesUpWhenDraining(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, h := holdFixture(t, 10*time.Second, 256)
		res := holdAsync(t.Context(), h)
		time.Sleep(500 * time.Millisecond)
		r.MarkDraining()
		if got := <-res; got.outcome != holdGaveUp || got.held != 500*time.Millisecond {
			t.Errorf("got %s after %v, want gave_up at the drain", got.outcome, got.held)
		}
	})
}

func TestHoldClientGone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, h := holdFixture(t, 10*time.Second, 256)
		ctx, cancel := context.WithCancel(t.Context())
		res := holdAsync(ctx, h)
		time.Sleep(time.Second)
		cancel()
		if got := <-res; got.outcome != holdClientGone || got.held != time.Second {
			t.Errorf("got %s after %v, want client_gone after 1s", got.outcome, got.held)
		}
		synctest.Wait()
		if n := h.held(); n != 0 {
			t.Errorf("held = %d, want 0", n)
		}
		// Nothing is left to release: a later ready transition forwards no ghost.
		r.MarkStarted()
		r.MarkReady()
		synctest.Wait()
	})
}

func TestHoldReleaseOrderAndPace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, h := holdFixture(t, 10*time.Second, 256)
		const n = 20
		type turn struct {
			i  int
			at time.Time
		}
		turns := make(chan turn, n)
		for i := range n {
			deadline := h.deadline()
			go func() {
				if o, _ := h.wait(t.Context(), deadline); o == holdForwarded {
					turns <- turn{i, time.Now()}
				}
			}()
			synctest.Wait() // each one parked before the next arrives: arrival order is i
		}
		time.Sleep(time.Second)
		r.MarkStarted()
		r.MarkReady()
		readyAt := time.Now()
		got := make([]turn, 0, n)
		for range n {
			got = append(got, <-turns)
		}
		// Within a batch the wake-ups race; across batches the order and the pace are fixed.
		for _, tr := range got {
			batch := tr.i / holdReleaseBatch
			if want := readyAt.Add(time.Duration(batch) * holdReleaseEvery); !tr.at.Equal(want) {
				t.Errorf("request %d released at +%v, want +%v (batch %d)", tr.i, tr.at.Sub(readyAt), want.Sub(readyAt), batch)
			}
		}
	})
}

func TestHoldStopsReleasingWhenDownAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, h := holdFixture(t, 10*time.Second, 256)
		results := make([]<-chan heldResult, holdReleaseBatch+1)
		for i := range results {
			results[i] = holdAsync(t.Context(), h)
			synctest.Wait()
		}
		time.Sleep(time.Second) // the restart's start-up, the estimate for the next outage
		r.MarkStarted()
		r.MarkReady()
		synctest.Wait() // the first batch went
		r.MarkProbeFailed()
		time.Sleep(time.Second)
		if n := h.held(); n != 1 {
			t.Fatalf("held while down again = %d, want 1 (the second batch waits)", n)
		}
		r.MarkReady()
		for i, ch := range results {
			if got := <-ch; got.outcome != holdForwarded {
				t.Errorf("request %d: %s, want forwarded", i, got.outcome)
			}
		}
	})
}

func TestHoldObserve(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, h := holdFixture(t, 10*time.Second, 1)
		var mu sync.Mutex
		seen := map[holdOutcome]time.Duration{}
		h.observe = func(o holdOutcome, d time.Duration) { mu.Lock(); seen[o] += d; mu.Unlock() }
		res := holdAsync(t.Context(), h)
		synctest.Wait()
		h.wait(t.Context(), h.deadline()) // overflow
		time.Sleep(250 * time.Millisecond)
		r.MarkStarted()
		r.MarkReady()
		<-res
		mu.Lock()
		defer mu.Unlock()
		if d, ok := seen[holdForwarded]; !ok || d != 250*time.Millisecond {
			t.Errorf("forwarded observed %v (%v), want 250ms", d, ok)
		}
		if _, ok := seen[holdOverflow]; !ok {
			t.Errorf("overflow not observed: %v", seen)
		}
	})
}
