package gate

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// Unless a test says otherwise, tests run in a synctest bubble: time is virtual and advances
// only when every goroutine in the bubble is blocked, so waits and deadlines are exact.

func newGate(t *testing.T, o Options) *Gate {
	t.Helper()
	g, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return g
}

// patient is a request that may wait d (and while the gate is paused).
func patient(d time.Duration) Request {
	return Request{Deadline: time.Now().Add(d), Hold: true}
}

// result is what one Acquire came to.
type result struct {
	slot *Slot
	err  error
	at   time.Time
}

// outcome returns Admitted or the refusal's outcome.
func (r result) outcome() Outcome {
	if r.err == nil {
		return Admitted
	}
	var ref *Refusal
	if !errors.As(r.err, &ref) {
		return Outcome("error: " + r.err.Error())
	}
	return ref.Outcome
}

// acquire starts Acquire in a goroutine and returns its result's channel.
func acquire(ctx context.Context, g *Gate, r Request) <-chan result {
	ch := make(chan result, 1)
	go func() {
		s, err := g.Acquire(ctx, r)
		ch <- result{s, err, time.Now()}
	}()
	return ch
}

// mustAdmit acquires a slot at once or fails the test.
func mustAdmit(t *testing.T, g *Gate, r Request) *Slot {
	t.Helper()
	s, err := g.Acquire(t.Context(), r)
	if err != nil {
		t.Fatalf("Acquire: %v, want admitted at once", err)
	}
	return s
}

// queued starts n waiters one after the other (each in line before the next arrives) and
// returns their results in arrival order.
func queued(t *testing.T, g *Gate, n int, r func() Request) []<-chan result {
	t.Helper()
	out := make([]<-chan result, n)
	for i := range out {
		out[i] = acquire(t.Context(), g, r())
		synctest.Wait()
	}
	return out
}

func TestAdmitsUpToLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGate(t, Options{Limit: 2})
		a := mustAdmit(t, g, patient(time.Second))
		mustAdmit(t, g, patient(time.Second))
		third := acquire(t.Context(), g, patient(10*time.Second))
		synctest.Wait()
		if s := g.Snapshot(); s.InFlight != 2 || s.Waiting != 1 || s.Limit != 2 || s.Adaptive {
			t.Fatalf("snapshot %+v, want 2 in flight, 1 waiting, fixed limit 2", s)
		}
		time.Sleep(time.Second)
		a.Done()
		got := <-third
		if got.outcome() != Admitted || got.slot.Waited() != time.Second {
			t.Errorf("third: %s after %v, want admitted after 1s", got.outcome(), got.slot.Waited())
		}
	})
}

func TestFIFONoBarging(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGate(t, Options{Limit: 1})
		first := mustAdmit(t, g, patient(time.Second))
		line := queued(t, g, 5, func() Request { return patient(time.Minute) })
		var order []int
		held := first
		for range line {
			// The slot is given back, and a newcomer arrives at the same instant: the slot
			// goes to the head of the line, the newcomer queues behind the rest.
			held.Done()
			late := acquire(t.Context(), g, patient(time.Minute))
			synctest.Wait()
			for i, ch := range line {
				select {
				case r := <-ch:
					order = append(order, i)
					held = r.slot
				default:
				}
			}
			select {
			case r := <-late:
				t.Fatalf("newcomer %s while %d waited before it", r.outcome(), g.Snapshot().Waiting)
			default:
			}
			line = append(line, late)
		}
		for i, got := range order {
			if got != i {
				t.Fatalf("admission order %v, want arrival order", order)
			}
		}
	})
}

func TestLineKeepsArrivalOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGate(t, Options{Limit: 1})
		s := mustAdmit(t, g, patient(time.Second))
		start := time.Now()
		time.Sleep(time.Second)
		later := queued(t, g, 2, func() Request { return patient(time.Minute) })
		// A request sent again after its first attempt never reached the backend arrived
		// before those two: it goes ahead of them.
		replay := acquire(t.Context(), g, Request{Arrived: start, Deadline: start.Add(time.Minute), Hold: true})
		synctest.Wait()
		s.Done()
		r := <-replay
		if r.outcome() != Admitted {
			t.Fatalf("replay: %s, want admitted first", r.outcome())
		}
		r.slot.Done()
		for i, ch := range later {
			r := <-ch
			if r.outcome() != Admitted {
				t.Fatalf("later %d: %s", i, r.outcome())
			}
			r.slot.Done()
		}
	})
}

func TestWaiterLeaves(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGate(t, Options{Limit: 1})
		s := mustAdmit(t, g, patient(time.Second))
		ctx, cancel := context.WithCancel(t.Context())
		leaver := acquire(ctx, g, patient(time.Minute))
		synctest.Wait()
		next := acquire(t.Context(), g, patient(time.Minute))
		synctest.Wait()
		time.Sleep(time.Second)
		cancel()
		r := <-leaver
		if r.outcome() != Gone || !errors.Is(r.err, context.Canceled) || r.err.(*Refusal).Waited != time.Second {
			t.Fatalf("leaver: %v, want client_gone after 1s wrapping context.Canceled", r.err)
		}
		if n := g.Snapshot().Waiting; n != 1 {
			t.Fatalf("waiting after it left = %d, want 1", n)
		}
		s.Done()
		if r := <-next; r.outcome() != Admitted {
			t.Fatalf("next: %s, want admitted (the slot is not kept for the one who left)", r.outcome())
		}
	})
}

func TestLeaverAdmittedAtTheSameInstantGivesTheSlotBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGate(t, Options{Limit: 1})
		s := mustAdmit(t, g, patient(time.Second))
		ctx, cancel := context.WithCancel(t.Context())
		leaver := acquire(ctx, g, patient(time.Minute))
		synctest.Wait()
		// Both before the waiter runs again: its turn comes and its client leaves.
		cancel()
		s.Done()
		if r := <-leaver; r.outcome() != Gone {
			t.Fatalf("leaver: %s, want client_gone: a waiter whose context ended is never admitted", r.outcome())
		}
		if got := g.Snapshot().InFlight; got != 0 {
			t.Errorf("in flight = %d, want 0 (the slot given back)", got)
		}
		mustAdmit(t, g, patient(time.Second)).Done()
	})
}

func TestGoneBeforeAsking(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGate(t, Options{Limit: 1})
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := g.Acquire(ctx, patient(time.Second)); !errors.Is(err, context.Canceled) {
			t.Fatalf("Acquire with a done context: %v, want client_gone", err)
		}
		if got := g.Snapshot().InFlight; got != 0 {
			t.Errorf("in flight = %d, want 0", got)
		}
	})
}

func TestDeadline(t *testing.T) {
	tests := []struct {
		name string
		wait time.Duration
	}{
		{"passes while waiting", 3 * time.Second},
		{"may not wait at all", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				g := newGate(t, Options{Limit: 1})
				mustAdmit(t, g, patient(time.Second))
				start := time.Now()
				r := <-acquire(t.Context(), g, patient(tt.wait))
				ref, _ := r.err.(*Refusal)
				if ref == nil || ref.Outcome != Timeout || r.at.Sub(start) != tt.wait || ref.Waited != tt.wait {
					t.Fatalf("got %v at +%v, want timed_out at +%v", r.err, r.at.Sub(start), tt.wait)
				}
				if ref.RetryAfter != 0 {
					t.Errorf("RetryAfter = %d, want 0 without an estimate", ref.RetryAfter)
				}
				if n := g.Snapshot().Waiting; n != 0 {
					t.Errorf("waiting = %d, want 0", n)
				}
			})
		})
	}
}

func TestFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGate(t, Options{Limit: 1, MaxWaiting: 2})
		mustAdmit(t, g, patient(time.Second))
		queued(t, g, 2, func() Request { return patient(time.Minute) })
		start := time.Now()
		_, err := g.Acquire(t.Context(), patient(time.Minute))
		if ref, _ := err.(*Refusal); ref == nil || ref.Outcome != Full || time.Since(start) != 0 {
			t.Fatalf("third waiter: %v, want overflow at once", err)
		}
	})
}

func TestPaused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGate(t, Options{Limit: 4})
		inflight := mustAdmit(t, g, patient(time.Second))
		g.Pause()
		// Not holdable (a first cold start): answered at once.
		if _, err := g.Acquire(t.Context(), Request{Deadline: time.Now().Add(time.Minute)}); err.(*Refusal).Outcome != NotHeld {
			t.Fatalf("not holdable while paused: %v, want not_held", err)
		}
		// A holdable one that may not wait: timed out, and not an overload (the backend is
		// down, not busy).
		if _, err := g.Acquire(t.Context(), patient(0)); err.(*Refusal).Outcome != Timeout || err.(*Refusal).Overload {
			t.Fatalf("may not wait while paused: %+v, want timed_out without overload", err)
		}
		held := acquire(t.Context(), g, patient(time.Minute))
		synctest.Wait()
		inflight.Done() // a free slot does not open a paused gate
		synctest.Wait()
		if s := g.Snapshot(); !s.Paused || s.Waiting != 1 || s.InFlight != 0 {
			t.Fatalf("snapshot %+v, want paused with 1 waiting", s)
		}
		time.Sleep(2 * time.Second)
		g.Resume()
		if r := <-held; r.outcome() != Admitted || r.slot.Waited() != 2*time.Second {
			t.Fatalf("held: %s, want admitted at the resume", r.outcome())
		}
	})
}

func TestFail(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGate(t, Options{Limit: 1})
		g.Pause()
		short := acquire(t.Context(), g, patient(5*time.Second))
		synctest.Wait()
		long := acquire(t.Context(), g, patient(20*time.Second))
		synctest.Wait()
		time.Sleep(time.Second)
		crash := errors.New("backend crashed; next start in 8s")
		// Expected back in 8 s + 2 s start-up: the first one's deadline is before.
		if n := g.FailBefore(time.Now().Add(10*time.Second), crash); n != 1 {
			t.Fatalf("FailBefore failed %d, want 1", n)
		}
		r := <-short
		if r.outcome() != Failed || !errors.Is(r.err, crash) || r.err.(*Refusal).Waited != time.Second {
			t.Fatalf("short: %v, want gave_up after 1s with the cause", r.err)
		}
		draining := errors.New("draining")
		if n := g.Fail(draining); n != 1 {
			t.Fatalf("Fail failed %d, want 1", n)
		}
		if r := <-long; r.outcome() != Failed || !errors.Is(r.err, draining) {
			t.Fatalf("long: %v, want gave_up with the cause", r.err)
		}
		if n := g.Snapshot().Waiting; n != 0 {
			t.Errorf("waiting = %d, want 0", n)
		}
	})
}

func TestOnOutcome(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		seen := map[Outcome][]time.Duration{}
		g := newGate(t, Options{Limit: 1, MaxWaiting: 1, OnOutcome: func(o Outcome, d time.Duration) {
			mu.Lock()
			seen[o] = append(seen[o], d)
			mu.Unlock()
		}})
		s := mustAdmit(t, g, patient(time.Second))
		w := acquire(t.Context(), g, patient(time.Minute))
		synctest.Wait()
		g.Acquire(t.Context(), patient(time.Minute)) // overflow
		time.Sleep(250 * time.Millisecond)
		s.Done()
		(<-w).slot.Done()
		mu.Lock()
		defer mu.Unlock()
		if got := seen[Admitted]; len(got) != 2 || got[0] != 0 || got[1] != 250*time.Millisecond {
			t.Errorf("admitted observed %v, want [0 250ms]", got)
		}
		if got := seen[Full]; len(got) != 1 {
			t.Errorf("overflow observed %v, want once", got)
		}
	})
}

func TestOptionsRejected(t *testing.T) {
	tests := []struct {
		name string
		o    Options
	}{
		{"negative limit", Options{Limit: -1}},
		{"min above max", Options{MinLimit: 10, MaxLimit: 5}},
		{"min above the default max", Options{MinLimit: 2000}},
		{"negative max waiting", Options{MaxWaiting: -1}},
		{"negative pace", Options{ReleaseEvery: -time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.o); err == nil {
				t.Errorf("New(%+v) = nil error, want one", tt.o)
			}
		})
	}
}
