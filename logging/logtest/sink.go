// Package logtest is the one log sink of hfgate's tests: a writer that a logger writes to,
// whose records a test reads or awaits. A test waits for a record to be written (Wait wakes on
// every write), never sleeps hoping it was. Logger gives hfgate's own logger (what users see),
// RawLogger slog's plain JSON one (what a package logs, uncleaned).
//
// Records are decoded JSON, as a log shipper sees them: numbers are float64, durations
// nanoseconds, errors their text and the level a string ("INFO", "WARN").
package logtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hfgate/hfgate/logging"
)

// WaitTimeout is how long Wait waits for a record before it fails the test.
const WaitTimeout = 10 * time.Second

// Sink collects log lines: JSON ones for Records, Wait and WaitN; any for String and WaitText.
// The zero value is not usable: call NewSink.
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

// RawLogger returns slog's own JSON logger (debug level) writing to s: nothing is cleaned or
// masked. It is for a test of what a package itself logs, byte for byte (a child's lone "\r"
// kept), which hfgate's logger would clean away.
func (s *Sink) RawLogger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(s, &slog.HandlerOptions{Level: slog.LevelDebug}))
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
	var found map[string]any
	s.await(t, fmt.Sprintf("no %q log record matched", msg), func() bool {
		for _, r := range s.Records(t, msg) {
			if match == nil || match(r) {
				found = r
				return true
			}
		}
		return false
	})
	return found
}

// WaitN returns the first n records with message msg, waiting for them to be written for up to
// WaitTimeout.
func (s *Sink) WaitN(t testing.TB, msg string, n int) []map[string]any {
	t.Helper()
	var recs []map[string]any
	s.await(t, fmt.Sprintf("fewer than %d %q log records", n, msg), func() bool {
		recs = s.Records(t, msg)
		return len(recs) >= n
	})
	return recs[:n]
}

// WaitText waits for up to WaitTimeout until what was written contains substr, whatever the
// format: for a text-format log (main's default), which Records cannot read.
func (s *Sink) WaitText(t testing.TB, substr string) {
	t.Helper()
	s.await(t, fmt.Sprintf("the log never contained %q", substr), func() bool {
		return strings.Contains(s.String(), substr)
	})
}

// await calls done after every write until it reports true; after WaitTimeout it fails the
// test with failure and the log.
func (s *Sink) await(t testing.TB, failure string, done func() bool) {
	t.Helper()
	deadline := time.NewTimer(WaitTimeout)
	defer deadline.Stop()
	for !done() {
		select {
		case <-s.notify:
		case <-deadline.C:
			t.Fatalf("%s within %v; log:\n%s", failure, WaitTimeout, s.String())
		}
	}
}
