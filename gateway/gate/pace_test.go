package gate

import (
	"testing"
	"testing/synctest"
	"time"
)

func TestResumePace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGate(t, Options{Limit: 100})
		g.Pause()
		const n = 20
		line := queued(t, g, n, func() Request { return patient(time.Minute) })
		time.Sleep(time.Second)
		g.Resume()
		resumed := time.Now()
		for i, ch := range line {
			r := <-ch
			// 8 at once, then 8 more every 5 ms, in arrival order.
			want := time.Duration(i/8) * 5 * time.Millisecond
			if r.outcome() != Admitted || r.at.Sub(resumed) != want {
				t.Errorf("waiter %d: %s at +%v, want admitted at +%v", i, r.outcome(), r.at.Sub(resumed), want)
			}
		}
	})
}

func TestNoBargingWhilePaced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGate(t, Options{Limit: 10, ReleaseBatch: 1, ReleaseEvery: time.Second})
		g.Pause()
		line := queued(t, g, 3, func() Request { return patient(time.Minute) })
		g.Resume()
		if r := <-line[0]; r.outcome() != Admitted {
			t.Fatalf("first: %s", r.outcome())
		}
		// Nine slots are free, but two wait for their turn: a newcomer queues behind them.
		late := acquire(t.Context(), g, patient(time.Minute))
		synctest.Wait()
		if s := g.Snapshot(); s.InFlight != 1 || s.Waiting != 3 {
			t.Fatalf("snapshot %+v, want 1 in flight and 3 waiting (the newcomer too)", s)
		}
		start := time.Now()
		for i, ch := range line[1:] {
			r := <-ch
			if want := time.Duration(i+1) * time.Second; r.outcome() != Admitted || r.at.Sub(start) != want {
				t.Errorf("waiter %d: %s at +%v, want admitted at +%v", i+1, r.outcome(), r.at.Sub(start), want)
			}
		}
		// The pace was for the waiters present at the resume: once they are in, the newcomer
		// behind them goes in with the last of them.
		if r := <-late; r.outcome() != Admitted || r.at.Sub(start) != 2*time.Second {
			t.Errorf("newcomer: %s at +%v, want admitted at +2s, after the paced ones", r.outcome(), r.at.Sub(start))
		}
	})
}

func TestPauseWhileReleasing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGate(t, Options{Limit: 100})
		g.Pause()
		line := queued(t, g, 9, func() Request { return patient(time.Minute) })
		g.Resume()
		for _, ch := range line[:8] {
			<-ch
		}
		g.Pause() // down again before the second batch
		time.Sleep(time.Second)
		if n := g.Snapshot().Waiting; n != 1 {
			t.Fatalf("waiting while paused again = %d, want 1", n)
		}
		g.Resume()
		if r := <-line[8]; r.outcome() != Admitted || r.slot.Waited() != time.Second {
			t.Errorf("ninth: %s, want admitted at the second resume", r.outcome())
		}
	})
}
