package gate

import (
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func TestStreamGivesItsSlotBackAtFirstByte(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGate(t, Options{Limit: 1})
		stream := mustAdmit(t, g, Request{Deadline: time.Now(), Stream: true})
		short := acquire(t.Context(), g, patient(time.Minute))
		synctest.Wait()
		time.Sleep(20 * time.Millisecond)
		stream.FirstByte(true) // the event stream's headers: the slot goes to the next in line
		r := <-short
		if r.outcome() != Admitted || r.slot.Waited() != 20*time.Millisecond {
			t.Fatalf("short request: %s, want admitted at the stream's first byte", r.outcome())
		}
		if s := g.Snapshot(); s.InFlight != 1 || s.Streams != 1 || s.Service != 20*time.Millisecond {
			t.Fatalf("snapshot %+v, want 1 in flight, 1 stream, service 20ms (the stream's first byte)", s)
		}
		time.Sleep(time.Minute)
		stream.Done()
		r.slot.FirstByte(false)
		r.slot.Done()
		if s := g.Snapshot(); s.InFlight != 0 || s.Streams != 0 {
			t.Fatalf("snapshot %+v, want nothing in flight", s)
		}
		if s := g.Snapshot(); s.Service > 10*time.Second {
			t.Errorf("service %v: the stream's minute counted", s.Service)
		}
	})
}

func TestLongStreamsNeitherStarveNorShrink(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGate(t, Options{InitialLimit: 4}) // adaptive
		var wg sync.WaitGroup
		refused := 0
		var mu sync.Mutex
		for range 200 { // 20 a second, each open for a minute: 200 open at the end
			wg.Go(func() {
				s, err := g.Acquire(t.Context(), Request{Deadline: time.Now().Add(10 * time.Second), Stream: true})
				if err != nil {
					mu.Lock()
					refused++
					mu.Unlock()
					return
				}
				time.Sleep(10 * time.Millisecond)
				s.FirstByte(true)
				time.Sleep(time.Minute)
				s.Done()
			})
			time.Sleep(50 * time.Millisecond)
		}
		if refused != 0 {
			t.Errorf("%d streams refused", refused)
		}
		s := g.Snapshot()
		if s.Streams != 200 || s.InFlight != 0 {
			t.Errorf("snapshot %+v, want 200 streams open and none holding a slot", s)
		}
		if s.Limit < 4 || s.Service != 10*time.Millisecond {
			t.Errorf("snapshot %+v: want the limit not below 4 and service 10ms", s)
		}
		// A short request goes in at once beside 200 open streams.
		short := mustAdmit(t, g, patient(time.Second))
		short.Done()
		wg.Wait()
	})
}

func TestUnansweredIsNoSample(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGate(t, Options{Limit: 1})
		for range 3 { // connection refused, reset before an answer: no first byte
			s := mustAdmit(t, g, patient(time.Second))
			time.Sleep(time.Second)
			s.Done()
		}
		if s := g.Snapshot(); s.Rate != 0 || s.Service != 0 {
			t.Fatalf("snapshot %+v, want no completion measured", s)
		}
		mustAdmit(t, g, patient(time.Second))
		queued(t, g, 30, func() Request { return patient(time.Second) })
		if n := g.Snapshot().Waiting; n != 30 {
			t.Errorf("waiting = %d, want 30: without an estimate nobody is refused early", n)
		}
	})
}

func TestSlotCallsTwice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGate(t, Options{Limit: 2})
		s := mustAdmit(t, g, patient(time.Second))
		s.FirstByte(true)
		s.FirstByte(true)
		s.Done()
		s.Done()
		a := mustAdmit(t, g, patient(time.Second))
		a.Done()
		a.FirstByte(false) // after Done: nothing
		a.Done()
		if s := g.Snapshot(); s.InFlight != 0 || s.Streams != 0 {
			t.Fatalf("snapshot %+v, want nothing in flight", s)
		}
		mustAdmit(t, g, patient(time.Second))
		mustAdmit(t, g, patient(time.Second))
		if s := g.Snapshot(); s.InFlight != 2 {
			t.Fatalf("in flight = %d, want 2: repeated calls gave back no extra slot", s.InFlight)
		}
	})
}

func TestAbandonCountsOnlyWhenLong(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGate(t, Options{}) // adaptive
		for range 8 {
			s := mustAdmit(t, g, patient(time.Second))
			time.Sleep(time.Second)
			s.FirstByte(false)
			s.Done()
		}
		weight := func() float64 { g.mu.Lock(); defer g.mu.Unlock(); return g.limiter.fit.w }
		w := weight()
		s := mustAdmit(t, g, patient(time.Second))
		time.Sleep(100 * time.Millisecond)
		s.Abandon() // an impatient client: shorter than expected, says nothing
		s.Done()
		if got := weight(); got != w {
			t.Fatalf("a short abandoned request was a sample")
		}
		s = mustAdmit(t, g, patient(time.Second))
		time.Sleep(1400 * time.Millisecond)
		s.Abandon() // no answer yet, later than usual: a lower bound that says something
		s.Done()
		if got := weight(); got <= w {
			t.Fatalf("a long abandoned request was no sample")
		}
		if got := g.Snapshot().Service; got != time.Second {
			t.Errorf("service %v, want 1s: an unanswered request is no completion", got)
		}
	})
}
