package supervise

import (
	"errors"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hfgate/hfgate/logging/logtest"
)

// upstreamLines returns the relayed lines of one stream ("" = all streams).
func upstreamLines(t *testing.T, logs *logtest.Sink, stream string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, r := range logs.Records(t, "upstream") {
		if stream == "" || r["stream"] == stream {
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

func relayed(t *testing.T, logs *logtest.Sink) []relayedLine {
	t.Helper()
	var out []relayedLine
	for _, r := range upstreamLines(t, logs, "") {
		line, _ := r["line"].(string)
		tr, _ := r["truncated"].(bool)
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
			logs := logtest.NewSink()
			// iotest-style one-byte reads as well as whole reads must agree.
			for _, r := range []io.Reader{strings.NewReader(tt.input), &oneByteReader{s: tt.input}} {
				logs = logtest.NewSink()
				err := relayLines(t.Context(), r, logs.RawLogger(), "stdout", tt.maxLine)
				if err != nil {
					t.Fatalf("relayLines: got error %v, want nil", err)
				}
				if got := relayed(t, logs); !slices.Equal(got, tt.want) {
					t.Errorf("%T: got lines %+v, want %+v", r, got, tt.want)
				}
			}
			for _, r := range upstreamLines(t, logs, "") {
				if r["level"] != "INFO" || r["source"] != "upstream" || r["stream"] != "stdout" {
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
	logs := logtest.NewSink()
	r := io.MultiReader(strings.NewReader("whole\npartial"), failingReader{boom})
	err := relayLines(t.Context(), r, logs.RawLogger(), "stderr", 100)
	if !errors.Is(err, boom) {
		t.Fatalf("got error %v, want %v", err, boom)
	}
	want := []relayedLine{{"whole", false}, {"partial", false}}
	if got := relayed(t, logs); !slices.Equal(got, want) {
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
	logs := logtest.NewSink()
	logger := logs.RawLogger()
	r := io.MultiReader(&xReader{n: total}, strings.NewReader("\nafter\n"))

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if err := relayLines(t.Context(), r, logger, "stdout", maxLine); err != nil {
		t.Fatalf("relayLines: got error %v, want nil", err)
	}
	runtime.ReadMemStats(&after)

	if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
		t.Errorf("relaying a %d-byte line allocated %d bytes, want under 1 MiB", total, got)
	}
	want := []relayedLine{{strings.Repeat("x", maxLine), true}, {"after", false}}
	if got := relayed(t, logs); !slices.Equal(got, want) {
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
	logs := logtest.NewSink()
	done := make(chan error, 1)
	go func() { done <- relayLines(t.Context(), pr, logs.RawLogger(), "stdout", 100) }()
	if _, err := pw.WriteString("held\npart"); err != nil {
		t.Fatal(err)
	}
	logs.Wait(t, "upstream", func(r map[string]any) bool { return r["line"] == "held" })
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
	if got := relayed(t, logs); !slices.Equal(got, want) {
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
