package gate

import (
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// same is a Jitter that announces the estimate itself.
func same(d time.Duration) time.Duration { return d }

// served runs n requests of d each through g, one at a time, so that the gate has measured its
// completion rate.
func served(t *testing.T, g *Gate, n int, d time.Duration) {
	t.Helper()
	for range n {
		s := mustAdmit(t, g, patient(time.Second))
		time.Sleep(d)
		s.FirstByte(false)
		s.Done()
	}
}

func TestEarlyRefusal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGate(t, Options{Limit: 1, Jitter: same})
		// Before any completion there is no estimate: nobody is refused early.
		s := mustAdmit(t, g, patient(time.Second))
		line := queued(t, g, 30, func() Request { return patient(10 * time.Second) })
		if n := g.Snapshot().Waiting; n != 30 {
			t.Fatalf("waiting without an estimate = %d, want all 30", n)
		}
		s.Done()
		g.Fail(nil)
		for _, ch := range line {
			if r := <-ch; r.slot != nil {
				r.slot.Done()
			}
		}

		served(t, g, 3, time.Second) // one a second
		mustAdmit(t, g, patient(time.Second))
		// The p-th in line (from 0) expects to wait p+1 seconds: ten fit in 10 s.
		queued(t, g, 10, func() Request { return patient(10 * time.Second) })
		start := time.Now()
		_, err := g.Acquire(t.Context(), patient(10*time.Second))
		ref, _ := err.(*Refusal)
		if ref == nil || ref.Outcome != Busy || !ref.Overload || time.Since(start) != 0 || ref.Waited != 0 {
			t.Fatalf("eleventh: %+v, want busy (an overload) at once", ref)
		}
		if ref.RetryAfter != 11 {
			t.Errorf("RetryAfter = %d, want 11 (the line of 10 and itself, one a second)", ref.RetryAfter)
		}
		s2 := g.Snapshot()
		if s2.Rate != 1 || s2.Service != time.Second || s2.Wait != 10*time.Second {
			t.Errorf("snapshot %+v, want rate 1/s, service 1s, wait 10s", s2)
		}
		// A request that may wait longer is not refused.
		r := acquire(t.Context(), g, patient(20*time.Second))
		synctest.Wait()
		if len(r) != 0 {
			t.Errorf("a request that may wait 20s: %s, want it in line", (<-r).outcome())
		}
	})
}

func TestRetryAfterSpread(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGate(t, Options{Limit: 1, Jitter: func(d time.Duration) time.Duration { return d + 2500*time.Millisecond }})
		served(t, g, 1, time.Second)
		mustAdmit(t, g, patient(time.Second))
		_, err := g.Acquire(t.Context(), patient(0)) // may not wait: timed out at once
		if ref := err.(*Refusal); ref.Outcome != Timeout || ref.RetryAfter != 4 {
			t.Errorf("got %v with Retry-After %d, want timed_out with ceil(1s + 2.5s) = 4", err, ref.RetryAfter)
		}
	})
	for _, d := range []time.Duration{0, 300 * time.Millisecond, 8 * time.Second, 100 * time.Second} {
		hi := d + max(d/4, time.Second)
		for range 100 {
			if got := spread(d); got < d || got >= hi {
				t.Fatalf("spread(%v) = %v, want in [%v, %v)", d, got, d, hi)
			}
		}
	}
}

func TestEdgeCut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGate(t, Options{Limit: 1, Jitter: same}) // EdgeTimeout 55s
		served(t, g, 1, 10*time.Second)
		mustAdmit(t, g, patient(time.Second))
		// The p-th in line goes in after (p+1)·10 s and is answered 10 s later: p = 3 is
		// answered at 50 s, p = 4 would be at 60 s, after the edge's cut.
		queued(t, g, 4, func() Request { return patient(100 * time.Second) })
		_, err := g.Acquire(t.Context(), patient(100*time.Second))
		if ref, _ := err.(*Refusal); ref == nil || ref.Outcome != Cut || ref.RetryAfter != 50 {
			t.Fatalf("fifth: %v, want edge_cut at once with Retry-After 50", err)
		}
		// A stream is not cut by the edge: it waits.
		stream := patient(100 * time.Second)
		stream.Stream = true
		r := acquire(t.Context(), g, stream)
		synctest.Wait()
		if len(r) != 0 {
			t.Errorf("stream: %s, want it in line", (<-r).outcome())
		}
		if n := g.Snapshot().Waiting; n != 5 {
			t.Errorf("waiting = %d, want 5", n)
		}
	})
}

func TestRefusingEpisode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var episodes []Episode
		var g *Gate
		g = newGate(t, Options{Limit: 1, Jitter: same, OnRefusing: func(e Episode) {
			g.Snapshot() // the hook may read the gate
			mu.Lock()
			episodes = append(episodes, e)
			mu.Unlock()
		}})
		served(t, g, 1, time.Second)
		s := mustAdmit(t, g, patient(time.Second))
		line := queued(t, g, 3, func() Request { return patient(3500 * time.Millisecond) })
		start := time.Now()
		for range 5 {
			g.Acquire(t.Context(), patient(3500*time.Millisecond)) // busy
		}
		for _, ch := range line {
			time.Sleep(time.Second)
			s.Done()
			s = (<-ch).slot
		}
		s.Done()
		mu.Lock()
		defer mu.Unlock()
		if len(episodes) != 2 {
			t.Fatalf("episodes %+v, want one start and one stop", episodes)
		}
		on, off := episodes[0], episodes[1]
		if !on.Refusing || on.Refused[Busy] != 1 || on.Waiting != 3 || !on.Since.Equal(start) {
			t.Errorf("start %+v, want refusing with 1 busy refusal and 3 waiting", on)
		}
		if off.Refusing || off.Refused[Busy] != 5 || off.Admitted != 3 || off.At.Sub(off.Since) != 3*time.Second {
			t.Errorf("stop %+v, want 5 busy refusals and 3 admitted over 3s", off)
		}
	})
}

// TestPruneAtFirstEstimate: waiters that joined a cold line (no estimate, so none was refused)
// are refused at once when the first completion shows they cannot be admitted before their
// deadlines, not each at its deadline; those that can still make it stay in line.
func TestPruneAtFirstEstimate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGate(t, Options{Limit: 1, Jitter: same})
		s := mustAdmit(t, g, patient(time.Second))
		line := queued(t, g, 6, func() Request { return patient(5 * time.Second) })
		time.Sleep(2 * time.Second) // the first answer takes 2 s: one slot turns over every 2 s
		s.FirstByte(false)
		s.Done()
		synctest.Wait()
		// At 2 s the first waiter went in; the next, first in line now, expects 2 s (at 4 s,
		// before its 5 s deadline); the one after it 4 s (at 6 s): refused now, and the rest.
		if n := g.Snapshot().Waiting; n != 1 {
			t.Errorf("waiting = %d, want 1", n)
		}
		refused := 0
		for i, ch := range line[2:] {
			select {
			case r := <-ch:
				if r.outcome() != Busy || r.err.(*Refusal).Waited != 2*time.Second {
					t.Errorf("waiter %d: %s after %v, want busy at the first estimate (2s)", i+2, r.outcome(), r.err.(*Refusal).Waited)
				}
				refused++
			default:
				t.Errorf("waiter %d still waiting, want it refused", i+2)
			}
		}
		if refused != 4 {
			t.Errorf("%d refused, want 4", refused)
		}
		g.Fail(nil)
		for _, ch := range line[:2] {
			if r := <-ch; r.slot != nil {
				r.slot.Done()
			}
		}
	})
}
