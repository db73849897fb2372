package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lmittmann/tint"
)

func TestLoggerStripsEscapesAndMasksSecrets(t *testing.T) {
	t.Parallel()
	const secret = "sk-live-0123456789"
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			log := New(&buf, Options{Format: format, Secrets: []string{secret}})
			log = log.With("pre", "\x1b[31mred\x1b[0m")
			log.Info("hello \x1b[1mbold\x1b[0m",
				"line", "INFO:     \x1b[32mStarted\x1b[0m key="+secret+" \x1b]0;title\x07done\x00",
				"err", errors.New("dial "+secret+"\x1b[K"),
				slog.Group("g", "inner", "x\x1b[2Jy"),
			)
			out := buf.String()
			if strings.ContainsRune(out, 0x1b) {
				t.Errorf("output contains ESC: %q", out)
			}
			if strings.Contains(out, secret) {
				t.Errorf("output contains the secret: %q", out)
			}
			if strings.Count(strings.TrimSpace(out), "\n") != 0 {
				t.Errorf("output is not one line: %q", out)
			}
			for _, want := range []string{"Started", "key=***", "red", "bold", "done", "xy"} {
				if !strings.Contains(out, want) {
					t.Errorf("output %q lacks %q", out, want)
				}
			}
			if format == "json" {
				var m map[string]any
				if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
					t.Fatalf("not JSON: %v", err)
				}
				if m["msg"] != "hello bold" {
					t.Errorf("msg = %q, want %q", m["msg"], "hello bold")
				}
			}
		})
	}
}

func TestLoggerTextFormat(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	New(&buf, Options{}).Info("listening", "addr", "0.0.0.0:7860")
	out := buf.String()
	// RFC 3339 time, level, message, attributes.
	fields := strings.Fields(out)
	if len(fields) != 4 || fields[1] != "INF" || fields[2] != "listening" || fields[3] != "addr=0.0.0.0:7860" {
		t.Errorf("text line = %q, want <time> INF listening addr=0.0.0.0:7860", out)
	}
	if !strings.HasSuffix(out, "\n") || !strings.Contains(fields[0], "T") {
		t.Errorf("text line = %q, want an RFC 3339 time and one newline", out)
	}
}

// TestTintTextOutput pins tint's text output (NoColor) for the string shapes the access log
// relies on: plain strings, strings that need quoting, and strings with escape sequences,
// which tint itself strips when they reach it directly.
func TestTintTextOutput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		value string
		want  string
	}{
		{name: "plain", value: "abc", want: "k=abc"},
		{name: "needs quoting", value: "a b=c", want: `k="a b=c"`},
		{name: "empty", value: "", want: `k=""`},
		{name: "escape sequence stripped", value: "\x1b[31mred\x1b[0m", want: "k=red"},
		{name: "escape sequence and space", value: "\x1b[1mbold\x1b[0m text", want: `k="bold text"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			h := tint.NewTextHandler(&buf, &tint.Options{NoColor: true, TimeFormat: time.RFC3339})
			r := slog.NewRecord(time.Time{}, slog.LevelInfo, "m", 0)
			r.AddAttrs(slog.String("k", tt.value))
			if err := h.Handle(context.Background(), r); err != nil {
				t.Fatal(err)
			}
			if got, want := buf.String(), "INF m "+tt.want+"\n"; got != want {
				t.Errorf("got %q, want %q", got, want)
			}
		})
	}
}

// An access line in the text format allocates twice: slog's slice for the attributes past the
// fifth, and the message renderText builds, tint's format without tint's per-string cut() (15
// allocations of tint's own 17 for the same record; docs/performance.md). The race detector
// adds one (the duration's string escapes under it), so the bound is 3.
func TestTextAccessLineAllocs(t *testing.T) {
	ctx := context.Background()
	measure := func(log *slog.Logger) float64 {
		return testing.AllocsPerRun(100, func() { log.LogAttrs(ctx, slog.LevelInfo, "request", accessLineAttrs...) })
	}
	if got, want := measure(New(discard{}, Options{})), 3.0; got > want {
		t.Errorf("allocations per access line: got %v, want at most %v", got, want)
	}
	bare := measure(slog.New(tint.NewTextHandler(discard{}, &tint.Options{TimeFormat: time.RFC3339, NoColor: true})))
	t.Logf("tint alone: %v allocations per access line", bare)
}

func TestLoggerLevel(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := New(&buf, Options{Level: slog.LevelWarn})
	log.Info("quiet")
	log.Warn("loud")
	if out := buf.String(); strings.Contains(out, "quiet") || !strings.Contains(out, "loud") {
		t.Errorf("output = %q, want only the warning", out)
	}
}

func TestStripControl(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, in, want string }{
		{"plain", "hello world", "hello world"},
		{"csi colour", "\x1b[1;32mok\x1b[0m", "ok"},
		{"osc title bel", "\x1b]0;t\x07x", "x"},
		{"osc title st", "\x1b]0;t\x1b\\x", "x"},
		{"two byte", "\x1bcx", "x"},
		{"trailing esc", "x\x1b", "x"},
		{"unterminated csi", "x\x1b[12", "x"},
		{"bell and nul", "a\x07b\x00c", "abc"},
		{"tab and newline kept", "a\tb\nc", "a\tb\nc"},
		{"carriage return", "progress\r100%", "progress100%"},
		{"utf-8 kept", "héllo ✓", "héllo ✓"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := stripControl(tt.in); got != tt.want {
				t.Errorf("stripControl(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func BenchmarkCleanHandlerAccessLine(b *testing.B) {
	log := New(discard{}, Options{Format: "json", Secrets: []string{"sk-live-0123456789", "postgres://u:p@h/db"}})
	b.ReportAllocs()
	for b.Loop() {
		log.Info("request", "method", "GET", "path", "/chat/stream", "status", 200, "request_id", "0123456789abcdef0123456789abcdef")
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// accessLineAttrs are the attributes of one access line as the gateway logs it (AccessLog's
// six and the upstream state).
var accessLineAttrs = []slog.Attr{
	slog.String("method", "POST"), slog.String("path", "/chat"), slog.Int("status", 200),
	slog.Duration("duration", 1234567), slog.Int64("bytes", 70),
	slog.String("request_id", "0123456789abcdef0123456789abcdef"), slog.String("upstream", "ready"),
}

// BenchmarkAccessLine is one access line on the path main wires (the logger and, since the
// buffered writer, the writer in front of stderr), in each format, to a discarding writer and
// to /dev/null (a write syscall per line, or per flush) and to a file (what a redirected stderr
// costs in the kernel).
func BenchmarkAccessLine(b *testing.B) {
	for _, format := range []string{"text", "json"} {
		for _, out := range []string{"discard", "devnull", "file"} {
			b.Run("format="+format+"/out="+out, func(b *testing.B) {
				var w io.Writer = discard{}
				if out != "discard" {
					name := os.DevNull
					if out == "file" {
						name = filepath.Join(b.TempDir(), "log")
					}
					f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
					if err != nil {
						b.Fatal(err)
					}
					b.Cleanup(func() { _ = f.Close() })
					w = f
				}
				lw := NewWriter(w, WriterOptions{})
				b.Cleanup(func() { _ = lw.Close() })
				log := New(lw, Options{Format: format, Droppable: accessRecord})
				ctx := context.Background()
				b.ReportAllocs()
				for b.Loop() {
					log.LogAttrs(ctx, slog.LevelInfo, "request", accessLineAttrs...)
				}
			})
		}
	}
}
