package supervise

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// logRecord is one captured slog record with its attributes flattened.
type logRecord struct {
	Level slog.Level
	Msg   string
	Attrs map[string]any
}

// logRecorder is a slog.Handler that keeps every record and wakes waiters on
// each new one, so tests can await log lines instead of sleeping.
type logRecorder struct {
	store *recordStore
	attrs []slog.Attr
}

type recordStore struct {
	mu      sync.Mutex
	records []logRecord
	changed chan struct{} // capacity 1: "something was appended"
}

func newLogRecorder() *logRecorder {
	return &logRecorder{store: &recordStore{changed: make(chan struct{}, 1)}}
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	rec := logRecord{Level: r.Level, Msg: r.Message, Attrs: map[string]any{}}
	for _, a := range h.attrs {
		rec.Attrs[a.Key] = a.Value.Any()
	}
	r.Attrs(func(a slog.Attr) bool {
		rec.Attrs[a.Key] = a.Value.Resolve().Any()
		return true
	})
	h.store.mu.Lock()
	h.store.records = append(h.store.records, rec)
	h.store.mu.Unlock()
	select {
	case h.store.changed <- struct{}{}:
	default:
	}
	return nil
}

func (h *logRecorder) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &logRecorder{store: h.store, attrs: append(slices.Clip(h.attrs), attrs...)}
}

func (h *logRecorder) WithGroup(string) slog.Handler { return h }

// Records returns a copy of everything logged so far.
func (h *logRecorder) Records() []logRecord {
	h.store.mu.Lock()
	defer h.store.mu.Unlock()
	return slices.Clone(h.store.records)
}

// Wait returns the first record matching match, waiting up to 10s for it.
func (h *logRecorder) Wait(t *testing.T, what string, match func(logRecord) bool) logRecord {
	t.Helper()
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for {
		for _, r := range h.Records() {
			if match(r) {
				return r
			}
		}
		select {
		case <-h.store.changed:
		case <-timeout.C:
			t.Fatalf("no log record %s after 10s; got %v", what, h.Records())
			return logRecord{}
		}
	}
}

// upstreamLines returns the relayed lines of one stream ("" = all streams).
func upstreamLines(recs []logRecord, stream string) []logRecord {
	var out []logRecord
	for _, r := range recs {
		if r.Msg == "upstream" && (stream == "" || r.Attrs["stream"] == stream) {
			out = append(out, r)
		}
	}
	return out
}

// relayedLine is what the relay tests compare: the text and the flag.
type relayedLine struct {
	line      string
	truncated bool
}

func relayed(recs []logRecord) []relayedLine {
	var out []relayedLine
	for _, r := range upstreamLines(recs, "") {
		line, _ := r.Attrs["line"].(string)
		tr, _ := r.Attrs["truncated"].(bool)
		out = append(out, relayedLine{line, tr})
	}
	return out
}

func TestRelayLines(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		input   string
		maxLine int
		want    []relayedLine
	}{
		{
			name:    "lines",
			input:   "one\ntwo\n",
			maxLine: 100,
			want:    []relayedLine{{"one", false}, {"two", false}},
		},
		{
			name:    "crlf",
			input:   "one\r\ntwo\r\n",
			maxLine: 100,
			want:    []relayedLine{{"one", false}, {"two", false}},
		},
		{
			name:    "final line without newline",
			input:   "one\ntwo",
			maxLine: 100,
			want:    []relayedLine{{"one", false}, {"two", false}},
		},
		{
			name:    "empty lines skipped",
			input:   "\n\r\none\n\n",
			maxLine: 100,
			want:    []relayedLine{{"one", false}},
		},
		{
			name:    "lone carriage return kept inside a line",
			input:   "50%\r100%\n",
			maxLine: 100,
			want:    []relayedLine{{"50%\r100%", false}},
		},
		{
			name:    "exactly max with crlf",
			input:   strings.Repeat("a", 20) + "\r\nnext\n",
			maxLine: 20,
			want:    []relayedLine{{strings.Repeat("a", 20), false}, {"next", false}},
		},
		{
			name:    "one byte over max",
			input:   strings.Repeat("a", 21) + "\nnext\n",
			maxLine: 20,
			want:    []relayedLine{{strings.Repeat("a", 20), true}, {"next", false}},
		},
		{
			name:    "long line cut, rest discarded up to newline",
			input:   strings.Repeat("b", 1000) + "\nnext\n",
			maxLine: 20,
			want:    []relayedLine{{strings.Repeat("b", 20), true}, {"next", false}},
		},
		{
			name:    "long final line without newline",
			input:   "first\n" + strings.Repeat("c", 1000),
			maxLine: 20,
			want:    []relayedLine{{"first", false}, {strings.Repeat("c", 20), true}},
		},
		{
			name:    "cut backs off to a rune boundary",
			input:   strings.Repeat("a", 19) + "é" + strings.Repeat("a", 100) + "\n",
			maxLine: 20,
			want:    []relayedLine{{strings.Repeat("a", 19), true}},
		},
		{
			name:    "tiny max below bufio minimum",
			input:   "abcdef\nab\n",
			maxLine: 3,
			want:    []relayedLine{{"abc", true}, {"ab", false}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := newLogRecorder()
			// iotest-style one-byte reads as well as whole reads must agree.
			for _, r := range []io.Reader{strings.NewReader(tt.input), &oneByteReader{s: tt.input}} {
				rec = newLogRecorder()
				err := relayLines(t.Context(), r, slog.New(rec), "stdout", tt.maxLine)
				if err != nil {
					t.Fatalf("relayLines: got error %v, want nil", err)
				}
				if got := relayed(rec.Records()); !slices.Equal(got, tt.want) {
					t.Errorf("%T: got lines %+v, want %+v", r, got, tt.want)
				}
			}
			for _, r := range upstreamLines(rec.Records(), "") {
				if r.Level != slog.LevelInfo || r.Attrs["source"] != "upstream" || r.Attrs["stream"] != "stdout" {
					t.Errorf("got record %v, want level INFO with source=upstream stream=stdout", r)
				}
			}
		})
	}
}

type oneByteReader struct {
	s string
	i int
}

func (r *oneByteReader) Read(p []byte) (int, error) {
	if r.i >= len(r.s) {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	p[0] = r.s[r.i]
	r.i++
	return 1, nil
}

func TestRelayLinesReturnsReadError(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	rec := newLogRecorder()
	r := io.MultiReader(strings.NewReader("whole\npartial"), failingReader{boom})
	err := relayLines(t.Context(), r, slog.New(rec), "stderr", 100)
	if !errors.Is(err, boom) {
		t.Fatalf("got error %v, want %v", err, boom)
	}
	want := []relayedLine{{"whole", false}, {"partial", false}}
	if got := relayed(rec.Records()); !slices.Equal(got, want) {
		t.Errorf("got lines %+v, want %+v", got, want)
	}
}

type failingReader struct{ err error }

func (r failingReader) Read([]byte) (int, error) { return 0, r.err }

// xReader yields n bytes of 'x' without allocating.
type xReader struct{ n int }

func (r *xReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.EOF
	}
	k := min(len(p), r.n)
	for i := range p[:k] {
		p[i] = 'x'
	}
	r.n -= k
	return k, nil
}

// Not parallel: it measures allocations, so nothing else should run.
func TestRelayLinesBoundedMemory(t *testing.T) {
	const total = 10 << 20
	const maxLine = 16 << 10
	rec := newLogRecorder()
	r := io.MultiReader(&xReader{n: total}, strings.NewReader("\nafter\n"))

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if err := relayLines(t.Context(), r, slog.New(rec), "stdout", maxLine); err != nil {
		t.Fatalf("relayLines: got error %v, want nil", err)
	}
	runtime.ReadMemStats(&after)

	if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
		t.Errorf("relaying a %d-byte line allocated %d bytes, want under 1 MiB", total, got)
	}
	want := []relayedLine{{strings.Repeat("x", maxLine), true}, {"after", false}}
	if got := relayed(rec.Records()); !slices.Equal(got, want) {
		t.Errorf("got %d lines, want 2 (%d bytes truncated, then %q)", len(got), maxLine, "after")
	}
}

func TestRelayLinesStopsAtReadDeadline(t *testing.T) {
	t.Parallel()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	rec := newLogRecorder()
	done := make(chan error, 1)
	go func() { done <- relayLines(t.Context(), pr, slog.New(rec), "stdout", 100) }()
	if _, err := pw.WriteString("held\npart"); err != nil {
		t.Fatal(err)
	}
	rec.Wait(t, `line "held"`, func(r logRecord) bool { return r.Attrs["line"] == "held" })
	if err := pr.SetReadDeadline(time.Now()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("got error %v, want %v", err, os.ErrDeadlineExceeded)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("relayLines did not return after the read deadline")
	}
	want := []relayedLine{{"held", false}, {"part", false}}
	if got := relayed(rec.Records()); !slices.Equal(got, want) {
		t.Errorf("got lines %+v, want %+v", got, want)
	}
}

func TestCutUTF8(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		n    int
		want string
	}{
		{name: "shorter", in: "abc", n: 5, want: "abc"},
		{name: "ascii", in: "abcdef", n: 3, want: "abc"},
		{name: "at rune start", in: "ab€cd", n: 2, want: "ab"},
		{name: "inside 3-byte rune", in: "ab€cd", n: 3, want: "ab"},
		{name: "inside 3-byte rune, last byte", in: "ab€cd", n: 4, want: "ab"},
		{name: "after rune", in: "ab€cd", n: 5, want: "ab€"},
		{name: "inside 4-byte rune", in: "a😀b", n: 4, want: "a"},
		{name: "invalid bytes cut exactly", in: "a\x80\x80\x80\x80\x80", n: 5, want: "a\x80\x80\x80\x80"},
		{name: "zero", in: "abc", n: 0, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := string(cutUTF8([]byte(tt.in), tt.n)); got != tt.want {
				t.Errorf("cutUTF8(%q, %d): got %q, want %q", tt.in, tt.n, got, tt.want)
			}
		})
	}
}
