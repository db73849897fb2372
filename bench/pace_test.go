package main

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func TestPacedSchedule(t *testing.T) {
	tests := []struct {
		name   string
		o      pacedOpts
		slots  int
		at3    time.Duration
		atLast time.Duration
	}{
		{"200 req/s for 3 s", pacedOpts{rate: 200, duration: 3 * time.Second}, 600, 15 * time.Millisecond, 2995 * time.Millisecond},
		{"1000 req/s for 5 s", pacedOpts{rate: 1000, duration: 5 * time.Second}, 5000, 3 * time.Millisecond, 4999 * time.Millisecond},
		{"3 req/s for 1 s: a third of a second apart", pacedOpts{rate: 3, duration: time.Second}, 3, time.Second, 666666667 * time.Nanosecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.o.slots(); got != tt.slots {
				t.Errorf("slots: got %d, want %d", got, tt.slots)
			}
			if got := tt.o.at(3); got != tt.at3 {
				t.Errorf("at(3): got %v, want %v", got, tt.at3)
			}
			if got := tt.o.at(tt.slots - 1); got != tt.atLast {
				t.Errorf("at(last): got %v, want %v", got, tt.atLast)
			}
		})
	}
}

// The requests go out at their scheduled times whatever the answers' latency (open loop), and
// latency counts from the scheduled time. Virtual time: no timing assert depends on the machine.
func TestRunPacedOpenLoop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var (
			mu    sync.Mutex
			sends []time.Duration
		)
		start := time.Now()
		o := pacedOpts{rate: 1000, duration: 20 * time.Millisecond, maxInFlight: 64}
		// Each answer takes 2.5 ms, longer than the 1 ms between requests: a closed loop with
		// one connection would send 8 in 20 ms; the open loop sends all 20 on time.
		r := runPaced(t.Context(), o, func(ctx context.Context) error {
			mu.Lock()
			sends = append(sends, time.Since(start))
			mu.Unlock()
			time.Sleep(2500 * time.Microsecond)
			return nil
		})
		if r.sent != 20 || r.ok != 20 || r.missed != 0 || r.failed != 0 {
			t.Fatalf("sent, ok, missed, failed: got %d, %d, %d, %d, want 20, 20, 0, 0", r.sent, r.ok, r.missed, r.failed)
		}
		for i, at := range sends {
			if want := time.Duration(i) * time.Millisecond; at != want {
				t.Errorf("request %d sent at %v, want %v", i, at, want)
			}
		}
		for i, l := range r.latencies {
			if l != 2500*time.Microsecond {
				t.Errorf("latency %d: got %v, want 2.5ms", i, l)
			}
		}
		// The last request is due at 19 ms and answered at 21.5 ms, after the 20 ms schedule.
		if want := 21500 * time.Microsecond; r.elapsed != want {
			t.Errorf("elapsed: got %v, want %v", r.elapsed, want)
		}
		w := r.summary()
		if want := 20 / (21500 * time.Microsecond).Seconds(); w.rps != want {
			t.Errorf("rps: got %v, want %v", w.rps, want)
		}
		if w.p50 != 2500*time.Microsecond || w.p99 != 2500*time.Microsecond || w.requests != 20 || w.errors != 0 {
			t.Errorf("summary: got %+v", w)
		}
	})
}

// A request whose time comes while maxInFlight are outstanding is counted as missed, not
// queued: the schedule of the others does not move.
func TestRunPacedInFlightCap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := pacedOpts{rate: 1000, duration: 9 * time.Millisecond, maxInFlight: 2}
		// 2.5 ms answers, a request every 1 ms, two slots: requests 0 and 1 go out, 2 finds
		// both busy, 3 takes 0's slot (free since 2.5 ms), 4 takes 1's, 5 is missed, and so on.
		r := runPaced(t.Context(), o, func(ctx context.Context) error {
			time.Sleep(2500 * time.Microsecond)
			return nil
		})
		if r.sent != 6 || r.missed != 3 || r.ok != 6 {
			t.Errorf("sent, missed, ok: got %d, %d, %d, want 6, 3, 6", r.sent, r.missed, r.ok)
		}
		if w := r.summary(); w.errors != 3 {
			t.Errorf("summary errors: got %d, want 3 (the missed)", w.errors)
		}
	})
}

func TestRunPacedErrorsAndCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		boom := errors.New("boom")
		var n int
		var mu sync.Mutex
		o := pacedOpts{rate: 100, duration: 100 * time.Millisecond, maxInFlight: 8}
		r := runPaced(t.Context(), o, func(ctx context.Context) error {
			mu.Lock()
			defer mu.Unlock()
			n++
			if n%2 == 0 {
				return boom
			}
			return nil
		})
		if r.ok != 5 || r.failed != 5 || !errors.Is(r.firstErr, boom) || len(r.latencies) != 5 {
			t.Errorf("ok, failed, firstErr, latencies: got %d, %d, %v, %d, want 5, 5, boom, 5", r.ok, r.failed, r.firstErr, len(r.latencies))
		}
		// Immediate answers: the schedule's end, not the last answer, bounds the run.
		if r.elapsed != 100*time.Millisecond {
			t.Errorf("elapsed: got %v, want 100ms", r.elapsed)
		}

		// Cancelled after 25 ms: requests 0, 1 and 2 went out, then the loop stops.
		ctx, cancel := context.WithTimeout(t.Context(), 25*time.Millisecond)
		defer cancel()
		r = runPaced(ctx, o, func(ctx context.Context) error { return nil })
		if r.sent != 3 {
			t.Errorf("cancelled: sent %d, want 3", r.sent)
		}
	})
}
