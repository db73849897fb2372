package health

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestProberCheckOnce(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		status int
		wantUp bool
	}{
		{"200 is up", http.StatusOK, true},
		{"204 is up", http.StatusNoContent, true},
		{"404 is up: the app answers", http.StatusNotFound, true},
		{"500 is down", http.StatusInternalServerError, false},
		{"503 is down", http.StatusServiceUnavailable, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var gotPath string
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				gotPath = r.URL.Path
				w.WriteHeader(tt.status)
			}))
			defer up.Close()
			r := NewTracker(TrackerOptions{Logger: slog.New(slog.DiscardHandler)})
			p := &Prober{URL: up.URL + "/health", Client: up.Client(), Tracker: r, Logger: slog.New(slog.DiscardHandler), FailureThreshold: 1}
			if got := p.checkOnce(context.Background()); got != tt.wantUp {
				t.Errorf("checkOnce = %v, want %v", got, tt.wantUp)
			}
			if gotPath != "/health" {
				t.Errorf("probed path %q, want /health", gotPath)
			}
			if got := r.IsReady(); got != tt.wantUp {
				t.Errorf("IsReady = %v, want %v", got, tt.wantUp)
			}
		})
	}
}

func TestProberRefusedAndThreshold(t *testing.T) {
	t.Parallel()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	url := up.URL
	client := up.Client()
	r := NewTracker(TrackerOptions{Logger: slog.New(slog.DiscardHandler)})
	p := &Prober{URL: url, Client: client, Tracker: r, Logger: slog.New(slog.DiscardHandler), Timeout: time.Second}
	if !p.checkOnce(context.Background()) {
		t.Fatal("first check failed against a live server")
	}
	up.Close() // now refused
	if p.checkOnce(context.Background()) {
		t.Fatal("check passed against a closed server")
	}
	if !r.IsReady() {
		t.Fatal("one failed check turned the upstream unavailable; want FailureThreshold=2 by default")
	}
	p.checkOnce(context.Background())
	if got := r.Snapshot().State; got != Unavailable {
		t.Fatalf("after two failed checks state = %q, want unavailable", got)
	}
}

func TestProberRunWakesEarly(t *testing.T) {
	t.Parallel()
	checks := make(chan struct{}, 10)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		checks <- struct{}{}
	}))
	defer up.Close()
	r := NewTracker(TrackerOptions{Logger: slog.New(slog.DiscardHandler)})
	// Intervals far beyond the test's deadline: only the first check and a wake can run one.
	p := &Prober{URL: up.URL, Client: up.Client(), Tracker: r, Logger: slog.New(slog.DiscardHandler), FastInterval: time.Hour, SlowInterval: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	await(t, checks, "first check")
	r.Poke() // what MarkUnreachable and MarkStarted do
	await(t, checks, "check after wake")
	cancel()
	await(t, done, "Run to return after cancel")
}

// await waits for one value from ch, failing after 10 s.
func await[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}
