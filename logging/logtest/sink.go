// Package logtest is the one log sink of hfgate's tests: a writer that a JSON logger writes to,
// whose records a test reads or awaits. A test waits for a record to be written (Wait wakes on
// every write), never sleeps hoping it was.
package logtest

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hfgate/hfgate/logging"
)

// WaitTimeout is how long Wait waits for a record before it fails the test.
const WaitTimeout = 10 * time.Second

// Sink collects JSON log lines. The zero value is not usable: call NewSink.
type Sink struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	notify chan struct{} // buffered(1): something was written
}

// NewSink returns an empty sink.
func NewSink() *Sink { return &Sink{notify: make(chan struct{}, 1)} }

// Logger returns hfgate's logger (logging.New, JSON, debug level) writing to s; secrets are
// masked as in production.
func (s *Sink) Logger(secrets ...string) *slog.Logger {
	return logging.New(s, logging.Options{Format: "json", Level: slog.LevelDebug, Secrets: secrets})
}

// Write takes one or more whole lines.
func (s *Sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	s.buf.Write(p)
	s.mu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
	return len(p), nil
}

// String returns everything written so far.
func (s *Sink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// Records returns the records with message msg ("" for all), in order. A line that is not
// JSON fails the test.
func (s *Sink) Records(t testing.TB, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(s.String(), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %q: %v", line, err)
		}
		if msg == "" || m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// Wait returns the first record with message msg that match accepts (nil accepts any), waiting
// for it to be written for up to WaitTimeout.
func (s *Sink) Wait(t testing.TB, msg string, match func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.NewTimer(WaitTimeout)
	defer deadline.Stop()
	for {
		for _, r := range s.Records(t, msg) {
			if match == nil || match(r) {
				return r
			}
		}
		select {
		case <-s.notify:
		case <-deadline.C:
			t.Fatalf("no %q log record matched within %v; log:\n%s", msg, WaitTimeout, s.String())
		}
	}
}

// WaitN returns the first n records with message msg, waiting for them to be written for up to
// WaitTimeout.
func (s *Sink) WaitN(t testing.TB, msg string, n int) []map[string]any {
	t.Helper()
	deadline := time.NewTimer(WaitTimeout)
	defer deadline.Stop()
	for {
		if recs := s.Records(t, msg); len(recs) >= n {
			return recs[:n]
		}
		select {
		case <-s.notify:
		case <-deadline.C:
			t.Fatalf("fewer than %d %q log records within %v; log:\n%s", n, msg, WaitTimeout, s.String())
		}
	}
}
