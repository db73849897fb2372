package gate

import (
	"context"
	"errors"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestLimitNeverExceeded hammers a gate from real goroutines (no bubble: real scheduling, run
// it with -race): requests that leave at random moments, give their slot back at the first
// byte or at the end, while another goroutine pauses, resumes and fails the line. The number
// of requests holding a slot, counted outside the gate, never exceeds the limit.
func TestLimitNeverExceeded(t *testing.T) {
	tests := []struct {
		name string
		o    Options
	}{
		{"fixed", Options{Limit: 4}},
		{"adaptive", Options{InitialLimit: 4, MaxLimit: 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGate(t, tt.o)
			var holders, peak atomic.Int64
			stop := make(chan struct{})
			chaos := make(chan struct{})
			go func() {
				defer close(chaos)
				for {
					select {
					case <-stop:
						return
					case <-time.After(time.Millisecond):
					}
					g.Pause()
					runtime.Gosched()
					g.Resume()
					if rand.IntN(10) == 0 {
						g.Fail(errors.New("chaos"))
					}
				}
			}()
			var wg sync.WaitGroup
			for i := range 32 {
				wg.Go(func() { hammer(t, g, uint64(i), &holders, &peak) })
			}
			wg.Wait()
			close(stop)
			<-chaos
			if p := peak.Load(); p != 4 {
				t.Errorf("peak holders = %d, want 4 (the limit, reached and never passed)", p)
			}
			if s := g.Snapshot(); s.InFlight != 0 || s.Waiting != 0 || s.Streams != 0 {
				t.Errorf("snapshot after the run %+v, want empty", s)
			}
		})
	}
}

// hammer runs 300 requests through g, counting slot holders in holders.
func hammer(t *testing.T, g *Gate, seed uint64, holders, peak *atomic.Int64) {
	rng := rand.New(rand.NewPCG(seed, 7))
	for range 300 {
		ctx, cancel := context.WithCancel(context.Background())
		if rng.IntN(4) == 0 {
			go cancel() // the client leaves at some moment
		}
		r := Request{Deadline: time.Now().Add(time.Duration(rng.IntN(5000)) * time.Microsecond), Hold: rng.IntN(2) == 0}
		s, err := g.Acquire(ctx, r)
		cancel()
		if err != nil {
			continue
		}
		n := holders.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		if n > 4 {
			t.Errorf("%d requests hold a slot, limit 4", n)
		}
		if rng.IntN(2) == 0 {
			time.Sleep(time.Duration(rng.IntN(200)) * time.Microsecond) // hold it a while
		} else {
			runtime.Gosched()
		}
		holders.Add(-1)
		s.FirstByte(rng.IntN(3) == 0) // a stream gives its slot back here
		s.Done()
	}
}
