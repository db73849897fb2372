package health

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// answers is a fake record of the upstream's answers to forwarded requests (Prober.LastAnswer).
type answers struct {
	mu   sync.Mutex
	last time.Time
}

func (a *answers) answer() {
	a.mu.Lock()
	a.last = time.Now()
	a.mu.Unlock()
}

func (a *answers) lastAnswer() time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.last
}

// TestProberLastAnswer: a check that times out while the upstream answers forwarded requests is
// not counted (the upstream is busy, not down), however many there are; one that times out with
// no answer meanwhile, a refused connection and an error status count even while answers
// arrive. FailureThreshold 1 makes each counted failure visible as the state.
func TestProberLastAnswer(t *testing.T) {
	t.Parallel()
	const timeout = 2 * time.Second
	// The health endpoint's behaviours, on virtual time: each gets the check's request and the
	// record of answers, and plays the upstream.
	hang := func(r *http.Request, _ *answers) (*http.Response, error) {
		<-r.Context().Done()
		return nil, r.Context().Err()
	}
	answeredMeanwhile := func(r *http.Request, a *answers) (*http.Response, error) {
		time.Sleep(timeout / 2) // a forwarded request is answered while the check waits
		a.answer()
		return hang(r, a)
	}
	answeredBefore := func(r *http.Request, a *answers) (*http.Response, error) {
		a.answer() // the same instant the check starts: not after it
		return hang(r, a)
	}
	refusedMeanwhile := func(r *http.Request, a *answers) (*http.Response, error) {
		a.answer()
		time.Sleep(time.Millisecond)
		a.answer()
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	}
	status503Meanwhile := func(r *http.Request, a *answers) (*http.Response, error) {
		time.Sleep(timeout / 2)
		a.answer()
		return &http.Response{StatusCode: http.StatusServiceUnavailable, Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
	}
	tests := []struct {
		name      string
		health    func(*http.Request, *answers) (*http.Response, error)
		noRecord  bool // Prober.LastAnswer nil
		wantState State
	}{
		{"timed out while answers arrive: not counted", answeredMeanwhile, false, Ready},
		{"timed out, last answer at the check's start: counted", answeredBefore, false, Unavailable},
		{"timed out, no answer ever: counted", hang, false, Unavailable},
		{"timed out without LastAnswer: counted", answeredMeanwhile, true, Unavailable},
		{"refused while answers arrive: counted", refusedMeanwhile, false, Unavailable},
		{"503 while answers arrive: counted", status503Meanwhile, false, Unavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				var a answers
				r := NewTracker(TrackerOptions{Logger: slog.New(slog.DiscardHandler)})
				r.MarkReady()
				p := &Prober{
					URL:              "http://upstream.invalid/health",
					Client:           &http.Client{Transport: roundTripperFunc(func(req *http.Request) (*http.Response, error) { return tt.health(req, &a) })},
					Tracker:          r,
					Logger:           slog.New(slog.DiscardHandler),
					Timeout:          timeout,
					FailureThreshold: 1,
				}
				if !tt.noRecord {
					p.LastAnswer = a.lastAnswer
				}
				// Three checks in a row: an uncounted one must not count later either.
				for i := range 3 {
					start := time.Now()
					if p.checkOnce(context.Background()) {
						t.Fatalf("check %d passed, want failed", i+1)
					}
					if took := time.Since(start); took > timeout {
						t.Fatalf("check %d took %v, want at most the timeout %v", i+1, took, timeout)
					}
					if tt.wantState == Ready && p.failures != 0 {
						t.Fatalf("check %d: %d failures counted, want 0", i+1, p.failures)
					}
				}
				if got := r.State(); got != tt.wantState {
					t.Errorf("state after three failed checks = %q, want %q", got, tt.wantState)
				}
			})
		})
	}
}
