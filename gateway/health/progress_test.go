package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hfgate/hfgate/logging/logtest"
)

// scriptedUpstream answers health checks from a script: an error, or a status code.
type scriptedUpstream struct {
	err    error
	status int
}

func (s *scriptedUpstream) RoundTrip(r *http.Request) (*http.Response, error) {
	if s.err != nil {
		return nil, s.err
	}
	return &http.Response{StatusCode: s.status, Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
}

// TestProberProgressLines drives the prober one check at a time on a virtual clock, one
// second apart, and checks the progress lines: one per ProgressEvery while not ready, with the
// elapsed time and the last result, none once ready, and the count restarting with a new outage.
func TestProberProgressLines(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	logs := logtest.NewSink()
	logger := logs.Logger()
	r := NewTracker(TrackerOptions{Logger: logger, Now: clock.Now})
	up := &scriptedUpstream{err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}
	p := &Prober{
		URL:           "http://127.0.0.1:1/health",
		Client:        &http.Client{Transport: up},
		Tracker:       r,
		Logger:        logger,
		ProgressEvery: 5 * time.Second,
		Now:           clock.Now,
	}
	check := func(n int) {
		t.Helper()
		for range n {
			clock.Advance(time.Second)
			p.checkOnce(context.Background())
		}
	}
	lines := func() []string {
		var out []string
		for _, rec := range logs.Records(t, "waiting for upstream") {
			out = append(out, fmt.Sprintf("%v %v %v %v", rec["state"], rec["elapsed"], rec["last_check"], rec["checks"]))
		}
		return out
	}
	want := func(w ...string) {
		t.Helper()
		if got := lines(); strings.Join(got, "\n") != strings.Join(w, "\n") {
			t.Fatalf("progress lines:\ngot  %q\nwant %q", got, w)
		}
	}
	// slog's JSON handler writes durations as nanoseconds.
	const s = 1e9

	check(4)
	want()
	check(1) // 5 s in
	want(fmt.Sprintf("starting %v connection refused 5", 5*s))
	up.err, up.status = nil, http.StatusInternalServerError
	check(5) // 10 s in
	want(fmt.Sprintf("starting %v connection refused 5", 5*s), fmt.Sprintf("starting %v status 500 10", 10*s))
	check(2)
	up.status = http.StatusOK
	check(10) // ready at 13 s; nothing more while ready
	want(fmt.Sprintf("starting %v connection refused 5", 5*s), fmt.Sprintf("starting %v status 500 10", 10*s))
	if !r.IsReady() {
		t.Fatal("not ready after a passing check")
	}

	// A new outage: two failed checks turn it unavailable, and its own count begins.
	up.err = fmt.Errorf("health: %w", context.DeadlineExceeded)
	check(2)
	if got := r.State(); got != Unavailable {
		t.Fatalf("state after two failed checks: got %s, want unavailable", got)
	}
	check(4)
	want(fmt.Sprintf("starting %v connection refused 5", 5*s), fmt.Sprintf("starting %v status 500 10", 10*s))
	check(1)
	want(fmt.Sprintf("starting %v connection refused 5", 5*s), fmt.Sprintf("starting %v status 500 10", 10*s),
		fmt.Sprintf("unavailable %v timed out 6", 5*s)) // the check that turned it unavailable counts
}

func TestProbeResult(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		status int
		err    error
		want   string
	}{
		{name: "status", status: 503, want: "status 503"},
		{name: "refused", err: &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, want: "connection refused"},
		{name: "reset", err: &net.OpError{Op: "read", Err: syscall.ECONNRESET}, want: "connection reset"},
		{name: "deadline", err: fmt.Errorf("get: %w", context.DeadlineExceeded), want: "timed out"},
		{name: "eof", err: fmt.Errorf("get: %w", io.EOF), want: "connection closed before an answer"},
		{name: "other", err: errors.New("tls: bad record"), want: "error: tls: bad record"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := probeResult(tt.status, tt.err); got != tt.want {
				t.Errorf("probeResult: got %q, want %q", got, tt.want)
			}
		})
	}
}
