package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// Each way a request can end is told apart: an answer (with its Retry-After), the client's
// own deadline, and a connection that cannot be made.
func TestOverloadSend(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		switch r.URL.Path {
		case "/busy":
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusServiceUnavailable)
		case "/stuck":
			// Never answers: only the client's deadline ends the request (the test's end, this
			// handler).
			select {
			case <-r.Context().Done():
			case <-release:
			}
		default:
			if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
				w.WriteHeader(http.StatusBadRequest)
			}
		}
	}))
	defer srv.Close()
	defer close(release)
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	client := overloadClient()
	defer client.CloseIdleConnections()

	tests := []struct {
		name                  string
		url                   string
		timeout               time.Duration
		status                int
		timedOut, connErr     bool
		retryAfter            string
		tookAtLeast, tookUpTo time.Duration
	}{
		{name: "answered", url: srv.URL + "/chat", timeout: 30 * time.Second, status: 200, tookUpTo: 30 * time.Second},
		{name: "refused", url: srv.URL + "/busy", timeout: 30 * time.Second, status: 503, retryAfter: "7", tookUpTo: 30 * time.Second},
		{name: "client gives up", url: srv.URL + "/stuck", timeout: 50 * time.Millisecond, timedOut: true, tookAtLeast: 50 * time.Millisecond, tookUpTo: 30 * time.Second},
		{name: "no connection", url: closed.URL + "/chat", timeout: 30 * time.Second, connErr: true, tookUpTo: 30 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := overloadRequest{url: tt.url, timeout: tt.timeout}.send(t.Context(), client, time.Now())
			if out.status != tt.status || out.timedOut != tt.timedOut || out.connErr != tt.connErr || out.retryAfter != tt.retryAfter {
				t.Errorf("got status %d, timedOut %v, connErr %v, Retry-After %q; want %d, %v, %v, %q",
					out.status, out.timedOut, out.connErr, out.retryAfter, tt.status, tt.timedOut, tt.connErr, tt.retryAfter)
			}
			if out.took < tt.tookAtLeast || out.took > tt.tookUpTo {
				t.Errorf("took %v, want %v to %v", out.took, tt.tookAtLeast, tt.tookUpTo)
			}
		})
	}
}

// Every scheduled request is sent and recorded at its place, with its scheduled time.
func TestLoadCell(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { n.Add(1) }))
	defer srv.Close()
	client := overloadClient()
	defer client.CloseIdleConnections()
	outs := loadCell(t.Context(), client, overloadRequest{url: srv.URL, timeout: 30 * time.Second},
		pacedOpts{rate: 200, duration: 50 * time.Millisecond})
	if len(outs) != 10 || n.Load() != 10 {
		t.Fatalf("outcomes, requests served: got %d, %d, want 10, 10", len(outs), n.Load())
	}
	for i, o := range outs {
		if o.status != 200 || o.at != time.Duration(i)*5*time.Millisecond {
			t.Errorf("outcome %d: got status %d at %v, want 200 at %v", i, o.status, o.at, time.Duration(i)*5*time.Millisecond)
		}
	}
}

// pollReady counts the answers that were not 200 and the states they named; a poll cut short
// by the end of the cell is not counted.
func TestPollReady(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch n.Add(1) {
		case 1:
			_, _ = w.Write([]byte(`{"state":"ready"}`))
		case 2, 3:
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"state":"unavailable"}`))
		case 4:
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`not json`))
		default:
			cancel()
		}
	}))
	defer srv.Close()
	st := pollReady(ctx, srv.URL, time.Millisecond)
	if st.polls != 4 || st.notOK != 3 || st.failed != 0 || st.states["unavailable"] != 2 || st.states["status 503, no JSON"] != 1 {
		t.Errorf("got %+v, want 4 polls, 3 not ready (2 unavailable, 1 without JSON)", st)
	}
}

func TestCalibrate(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 6 {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	client := overloadClient()
	defer client.CloseIdleConnections()
	capacity, median, err := calibrate(t.Context(), client, overloadRequest{url: srv.URL, timeout: 30 * time.Second}, 3)
	if err != nil || !(capacity > 0) || median <= 0 {
		t.Fatalf("got %v req/s, median %v, %v; want a capacity", capacity, median, err)
	}
	if n.Load() != 5 {
		t.Errorf("requests: got %d, want 5 (2 unmeasured, 3 measured)", n.Load())
	}
	if _, _, err := calibrate(t.Context(), client, overloadRequest{url: srv.URL, timeout: 30 * time.Second}, 3); err == nil {
		t.Error("a 500 during calibration: got no error")
	}
}

// The backend itself, under real uvicorn: both endpoints and /health answer, with the work
// made small.
func TestOverloadApp(t *testing.T) {
	const python = "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import fastapi, uvicorn").Run(); err != nil {
		t.Skipf("skipped: %s cannot import fastapi and uvicorn (Debian: python3-fastapi, python3-uvicorn)", python)
	}
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{dir: t.TempDir(), ps: newProcs(), logf: t.Logf}
	defer e.ps.stopAll()
	b := backend{python: python, dir: dir, module: "overload_app:app", env: []string{"CPU_MS=5", "IO_MS=5", noBytecode}}
	up, base, err := b.start(t.Context(), e, "uvicorn-test", "--limit-concurrency", "50")
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	client := overloadClient()
	defer client.CloseIdleConnections()
	for _, path := range []string{cpuEndpoint.path, ioEndpoint.path} {
		out := overloadRequest{url: base + path, timeout: 30 * time.Second}.send(t.Context(), client, time.Now())
		if out.status != 200 {
			t.Errorf("POST %s: got status %d (timed out %v, conn error %v), want 200", path, out.status, out.timedOut, out.connErr)
		}
	}
	if hwm := vmHWM(up.pid()); hwm < 1<<20 {
		t.Errorf("backend VmHWM: got %d bytes, want a resident Python process", hwm)
	}
}
