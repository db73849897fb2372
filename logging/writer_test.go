package logging

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// gateWriter records what is written to it; every Write waits until open is closed. Its
// channel makes a blocked Write durably blocked in a synctest bubble.
type gateWriter struct {
	open   chan struct{}
	mu     sync.Mutex
	buf    bytes.Buffer
	writes int
}

func newGateWriter(open bool) *gateWriter {
	g := &gateWriter{open: make(chan struct{})}
	if open {
		close(g.open)
	}
	return g
}

func (g *gateWriter) Write(p []byte) (int, error) {
	<-g.open
	g.mu.Lock()
	defer g.mu.Unlock()
	g.writes++
	return g.buf.Write(p)
}

// release opens the gate if it is still shut.
func (g *gateWriter) release() {
	select {
	case <-g.open:
	default:
		close(g.open)
	}
}

func (g *gateWriter) String() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.buf.String()
}

// line returns a line of exactly n bytes, newline included, starting with tag.
func line(tag string, n int) []byte {
	return []byte(tag + strings.Repeat(".", n-len(tag)-1) + "\n")
}

// TestLogWriterStalledReader is the console pipe nobody reads: requests from many goroutines
// are answered and their access lines logged while the reader makes no progress at all; the
// warnings logged meanwhile all arrive; and when the reader resumes, the "log lines dropped"
// lines count exactly the access lines that never arrived. Every line that arrives is whole.
func TestLogWriterStalledReader(t *testing.T) {
	t.Parallel()
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			pr, pw, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer pr.Close()
			// 16 KiB held plus the pipe's own buffer (64 KiB on Linux) against ~1.5 MB of lines.
			lw := NewWriter(pw, WriterOptions{Limit: 16 << 10})
			logger := New(lw, Options{Format: format, Droppable: accessRecord})

			const goroutines, perGoroutine, warnings = 8, 2000, 20
			var wg sync.WaitGroup
			for range goroutines {
				wg.Go(func() {
					for i := range perGoroutine {
						// An access line as the gateway's access log writes it.
						logger.Info("request", "method", "GET", "path", "/chat", "status", 200,
							"duration", time.Millisecond, "request_id", fmt.Sprintf("%032x", i))
					}
				})
			}
			// Nobody has read from the pipe: were a request to wait for the reader, this would
			// never return.
			wg.Wait()
			for i := range warnings {
				logger.Warn("upstream slow", "n", i)
			}
			dropped := lw.Dropped()
			if dropped == 0 {
				t.Fatalf("no line dropped with the reader stalled")
			}

			// The reader resumes: read until the reports account for every dropped line.
			sc := bufio.NewScanner(pr)
			accessLines, reported := 0, uint64(0)
			warned := map[int]bool{}
			for reported < dropped && sc.Scan() {
				msg, attrs := parseLogLine(t, format, sc.Text())
				switch msg {
				case "request":
					if attrs["status"] != "200" || attrs["path"] != "/chat" || len(attrs["request_id"]) != 32 {
						t.Fatalf("access line not whole: %q", sc.Text())
					}
					accessLines++
				case "upstream slow":
					n, _ := strconv.Atoi(attrs["n"])
					warned[n] = true
				case "log lines dropped":
					n, err := strconv.ParseUint(attrs["count"], 10, 64)
					if err != nil || attrs["level"] != "WARN" {
						t.Fatalf("drop report: %q", sc.Text())
					}
					reported += n
				default:
					t.Fatalf("unexpected line %q", sc.Text())
				}
			}
			if reported != dropped {
				t.Fatalf("lines reported dropped: got %d, want %d (Dropped)", reported, dropped)
			}
			if got, want := accessLines+int(reported), goroutines*perGoroutine; got != want {
				t.Errorf("access lines arrived + reported dropped: got %d + %d = %d, want %d", accessLines, reported, got, want)
			}
			if len(warned) != warnings {
				t.Errorf("warnings arrived: got %d, want all %d", len(warned), warnings)
			}

			// Every line arrived before the last report: Close writes nothing more.
			if err := lw.Close(); err != nil {
				t.Fatal(err)
			}
			_ = pw.Close()
			for sc.Scan() {
				t.Errorf("line after the last report: %q", sc.Text())
			}
		})
	}
}

// parseLogLine parses one text (tint) or JSON line, with the level under "level". Text values
// must not contain spaces (the test's do not).
func parseLogLine(t *testing.T, format, line string) (msg string, attrs map[string]string) {
	t.Helper()
	attrs = map[string]string{}
	if format == "json" {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not one JSON object: %q: %v", line, err)
		}
		for k, v := range m {
			attrs[k] = fmt.Sprint(v)
		}
		return attrs["msg"], attrs
	}
	m := textLine.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("not one text line: %q", line)
	}
	attrs["level"] = map[string]string{"INF": "INFO", "WRN": "WARN", "ERR": "ERROR"}[m[1]]
	fields := strings.Fields(m[3])
	for _, f := range fields {
		k, v, _ := strings.Cut(f, "=")
		attrs[k] = v
	}
	return m[2], attrs
}

var textLine = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\S* (INF|WRN|ERR) (request|upstream slow|log lines dropped)((?: [a-z_]+=\S+)+)$`)

// TestLogWriterDropPolicy pins the policy with the writer stalled on its first batch: access
// lines stop at three quarters of the limit, other lines only at the limit, and nothing waits.
func TestLogWriterDropPolicy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		out := newGateWriter(false)
		lw := NewWriter(out, WriterOptions{Limit: 1000}) // access lines up to 750 bytes held
		defer lw.Close()
		defer out.release() // also when the test fails early, so that the loop can end
		access := accessLines{lw}
		_, _ = lw.Write(line("first", 10))
		time.Sleep(defaultLogFlushEvery)
		synctest.Wait() // the loop is now stuck writing "first": 10 bytes held

		var want strings.Builder
		want.Write(line("first", 10))
		for i := range 7 { // 10 + 7*100 = 710 bytes held
			_, _ = access.Write(line("access"+strconv.Itoa(i), 100))
		}
		_, _ = access.Write(line("access-dropped", 100)) // 810 > 750
		if got := lw.Dropped(); got != 1 {
			t.Fatalf("Dropped after an access line past 3/4: got %d, want 1", got)
		}
		for i := range 2 { // 810, 910
			_, _ = lw.Write(line("warn"+strconv.Itoa(i), 100))
		}
		_, _ = lw.Write(line("warn-dropped", 100))   // 1010 > 1000
		_, _ = access.Write(line("late-access", 20)) // still past 3/4
		if got := lw.Dropped(); got != 3 {
			t.Fatalf("Dropped: got %d, want 3", got)
		}
		if out.String() != "" {
			t.Fatalf("written while the writer was stuck: %q", out.String())
		}

		out.release() // the reader resumes
		if err := lw.Close(); err != nil {
			t.Fatal(err)
		}
		for i := range 7 {
			want.Write(line("access"+strconv.Itoa(i), 100))
		}
		for i := range 2 {
			want.Write(line("warn"+strconv.Itoa(i), 100))
		}
		want.WriteString("log lines dropped count=3\n")
		if got := out.String(); got != want.String() {
			t.Errorf("written:\n%s\nwant:\n%s", got, want.String())
		}
	})
}

// TestLoggerOnLogWriterKeepsWarnings: through New, info "request" records are the
// droppable ones; a 5xx access line (warn or error) and other info lines are kept like
// warnings.
func TestLoggerOnLogWriterKeepsWarnings(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		out := newGateWriter(false)
		lw := NewWriter(out, WriterOptions{Limit: 4000}) // access lines up to 3000 bytes
		defer lw.Close()
		defer out.release()
		logger := New(lw, Options{Format: "json", Droppable: accessRecord})
		ctx := context.Background()
		logger.Info("first")
		time.Sleep(defaultLogFlushEvery)
		synctest.Wait() // stuck writing "first"

		for lw.Dropped() == 0 {
			logger.LogAttrs(ctx, slog.LevelInfo, "request", slog.Int("status", 200))
		}
		logger.LogAttrs(ctx, slog.LevelDebug, "request", slog.Int("status", 200))
		logger.LogAttrs(ctx, slog.LevelWarn, "request", slog.Int("status", 502))
		logger.LogAttrs(ctx, slog.LevelError, "request", slog.Int("status", 500))
		logger.Info("upstream ready")
		if got := lw.Dropped(); got != 1 {
			t.Fatalf("Dropped: got %d, want 1 (only the first access line past 3/4)", got)
		}
		out.release()
		_ = lw.Close()
		lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
		tail := lines[len(lines)-4:]
		for i, want := range []string{`"status":502`, `"status":500`, `"msg":"upstream ready"`, `"msg":"log lines dropped","count":1`} {
			if !strings.Contains(tail[i], want) {
				t.Errorf("line %d from the end: got %s, want it to contain %s", 4-i, tail[i], want)
			}
		}
	})
}

// accessRecord is the Droppable of these tests: the gateway's access lines have this message.
func accessRecord(r slog.Record) bool { return r.Message == "request" }

func TestDropsFirst(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		level slog.Level
		msg   string
		want  bool
	}{
		{"access line", slog.LevelInfo, "request", true},
		{"5xx access line", slog.LevelWarn, "request", false},
		{"500 access line", slog.LevelError, "request", false},
		{"other info", slog.LevelInfo, "upstream", false},
		{"debug", slog.LevelDebug, "probe", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := dropsFirst(slog.NewRecord(time.Time{}, tt.level, tt.msg, 0), accessRecord); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// TestLogWriterFlushEvery: a line waits for the batch at most FlushEvery (100 ms).
func TestLogWriterFlushEvery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		out := newGateWriter(true)
		lw := NewWriter(out, WriterOptions{})
		defer lw.Close()
		_, _ = lw.Write([]byte("one\n"))
		time.Sleep(defaultLogFlushEvery - time.Millisecond)
		synctest.Wait()
		if got := out.String(); got != "" {
			t.Fatalf("written before the batch was due: %q", got)
		}
		_, _ = lw.Write([]byte("two\n"))
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if got, want := out.String(), "one\ntwo\n"; got != want {
			t.Fatalf("written after 100 ms: got %q, want %q", got, want)
		}
		// The next batch starts its own 100 ms with its first line.
		time.Sleep(time.Hour)
		_, _ = lw.Write([]byte("three\n"))
		time.Sleep(defaultLogFlushEvery)
		synctest.Wait()
		if got, want := out.String(), "one\ntwo\nthree\n"; got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
		if out.writes != 2 {
			t.Errorf("writes: got %d, want 2 (one a batch)", out.writes)
		}
	})
}

// TestLogWriterFlushAt: 32 KiB waiting are written at once, without waiting for the batch's
// 100 ms.
func TestLogWriterFlushAt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		out := newGateWriter(true)
		lw := NewWriter(out, WriterOptions{})
		defer lw.Close()
		start := time.Now()
		for range logFlushAt / 128 {
			_, _ = lw.Write(line("x", 128))
		}
		synctest.Wait()
		if got := len(out.String()); got < logFlushAt/2 || time.Since(start) != 0 {
			t.Errorf("written at once: got %d bytes after %v, want a batch at once", got, time.Since(start))
		}
	})
}

// TestLogWriterClose: Close writes out everything held, in order, and the loop is gone (the
// bubble would not end otherwise); later lines go straight through.
func TestLogWriterClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		out := newGateWriter(true)
		lw := NewWriter(out, WriterOptions{})
		var want strings.Builder
		for i := range 1000 {
			l := fmt.Sprintf("line %d\n", i)
			want.WriteString(l)
			_, _ = lw.Write([]byte(l))
		}
		if err := lw.Close(); err != nil {
			t.Fatal(err)
		}
		if got := out.String(); got != want.String() {
			t.Fatalf("after Close: got %d bytes, want all %d in order", len(got), want.Len())
		}
		_, _ = lw.Write([]byte("late\n"))
		if got := out.String(); !strings.HasSuffix(got, "\nlate\n") {
			t.Errorf("a line after Close: got %q at the end, want it written at once", got[len(got)-20:])
		}
		if err := lw.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
	})
}

// panicWriter panics on its first Write and records the later ones.
type panicWriter struct {
	once sync.Once
	gateWriter
}

func (p *panicWriter) Write(b []byte) (int, error) {
	p.once.Do(func() { panic("disk on fire") })
	return p.gateWriter.Write(b)
}

// TestLogWriterPanic: a panic in the loop is logged and the writer falls back to writing each
// line directly; nothing waits forever.
func TestLogWriterPanic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		out := &panicWriter{gateWriter: *newGateWriter(true)}
		lw := NewWriter(out, WriterOptions{})
		logger := New(lw, Options{Format: "json"})
		logger.Info("lost in the panic")
		time.Sleep(defaultLogFlushEvery)
		synctest.Wait()
		logger.Info("after")
		if got := out.String(); !strings.Contains(got, `"msg":"log writer panicked, writing lines directly from now on","panic":"disk on fire"`) ||
			!strings.HasSuffix(got, `"msg":"after"}`+"\n") {
			t.Errorf("after a panic: got %s", got)
		}
		_ = lw.Close()
	})
}
