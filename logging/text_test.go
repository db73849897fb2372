package logging

import (
	"bytes"
	"context"
	"log/slog"
	"math"
	"testing"
	"time"

	"github.com/lmittmann/tint"
)

// tintLine is what tint (as New configures it for text) writes for r.
func tintLine(t testing.TB, r slog.Record) string {
	t.Helper()
	var buf bytes.Buffer
	h := tint.NewTextHandler(&buf, &tint.Options{TimeFormat: time.RFC3339, NoColor: true})
	if err := h.Handle(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// renderedLine is what tint writes for r after renderText, and whether renderText rendered it.
func renderedLine(t testing.TB, r slog.Record) (string, bool) {
	t.Helper()
	msg, ok := renderText(r)
	if !ok {
		return "", false
	}
	return tintLine(t, slog.NewRecord(r.Time, r.Level, msg, r.PC)), true
}

var renderTime = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

func TestRenderTextMatchesTint(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		attrs  []slog.Attr
		render bool // whether renderText takes the record (else tint renders it as it is)
	}{
		{name: "access line", attrs: accessLineAttrs, render: true},
		{name: "needs quoting", attrs: []slog.Attr{slog.String("k", "a b=c"), slog.String("q", `say "hi"`)}, render: true},
		{name: "empty string", attrs: []slog.Attr{slog.String("k", "")}, render: true},
		{name: "backslash unquoted", attrs: []slog.Attr{slog.String("k", `C:\dir`)}, render: true},
		{name: "tab and newline quoted", attrs: []slog.Attr{slog.String("k", "a\tb\nc")}, render: true},
		{name: "utf-8", attrs: []slog.Attr{slog.String("k", "héllo ✓"), slog.String("nbsp", "a\u00a0b"), slog.String("zw", "a\u200bb")}, render: true},
		{name: "numbers and bools", attrs: []slog.Attr{
			slog.Int("i", -42), slog.Uint64("u", math.MaxUint64), slog.Float64("f", 0.1), slog.Float64("inf", math.Inf(-1)),
			slog.Float64("big", 1e21), slog.Bool("b", true),
		}, render: true},
		{name: "durations", attrs: []slog.Attr{slog.Duration("d", 0), slog.Duration("us", 1500), slog.Duration("long", 26*time.Hour+3*time.Second), slog.Duration("neg", -time.Millisecond)}, render: true},
		{name: "odd keys", attrs: []slog.Attr{slog.String("a b", "x"), slog.String("", "y"), slog.String("k=v", "z")}, render: true},
		// Left to tint:
		{name: "escape sequence", attrs: []slog.Attr{slog.String("k", "\x1b[31mred\x1b[0m")}},
		{name: "escape in key", attrs: []slog.Attr{slog.String("\x1b[1mk", "v")}},
		{name: "invalid utf-8", attrs: []slog.Attr{slog.String("k", "ab\xffcd")}},
		{name: "replacement char", attrs: []slog.Attr{slog.String("k", "ab\ufffdcd")}},
		{name: "group", attrs: []slog.Attr{slog.Group("g", slog.String("k", "v"))}},
		{name: "time", attrs: []slog.Attr{slog.Time("t", renderTime)}},
		{name: "any", attrs: []slog.Attr{slog.Any("e", []string{"x"})}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := slog.NewRecord(renderTime, slog.LevelInfo, "request", 0)
			r.AddAttrs(tt.attrs...)
			got, ok := renderedLine(t, r)
			if ok != tt.render {
				t.Fatalf("renderText rendered: got %v, want %v", ok, tt.render)
			}
			if want := tintLine(t, r); ok && got != want {
				t.Errorf("got  %q\nwant %q (tint's)", got, want)
			}
		})
	}
}

// FuzzRenderText holds renderText to tint's own output: whenever it renders a record, tint
// writes the rendered record byte for byte as it writes the original.
func FuzzRenderText(f *testing.F) {
	f.Add("method", "POST", int64(200), int64(1234567), 0.5, true)
	f.Add("k", "a b", int64(-1), int64(-1), math.NaN(), false)
	f.Add("k", "\x1b[2Jx", int64(0), int64(0), 0.0, false)
	f.Add("k\u2028", "\u00a0\u0085", int64(0), int64(0), 1e100, false)
	f.Add("", "\\\"=", int64(0), int64(0), 0.0, false)
	f.Fuzz(func(t *testing.T, key, value string, i, d int64, fl float64, b bool) {
		r := slog.NewRecord(renderTime, slog.LevelWarn, "msg", 0)
		r.AddAttrs(slog.String(key, value), slog.Int64("i", i), slog.Duration("d", time.Duration(d)),
			slog.Float64("f", fl), slog.Bool("b", b), slog.String("v", value))
		got, ok := renderedLine(t, r)
		if !ok {
			return
		}
		if want := tintLine(t, r); got != want {
			t.Errorf("got  %q\nwant %q (tint's)", got, want)
		}
	})
}

// TestTextLoggerMatchesTint checks the whole text logger on the record shapes the gateway logs
// (with and without cleaning): the line is tint's for the cleaned record.
func TestTextLoggerMatchesTint(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		msg         string
		attrs       []slog.Attr
		cleanedMsg  string
		cleanedAttr []slog.Attr
	}{
		{name: "access line", msg: "request", attrs: accessLineAttrs, cleanedMsg: "request", cleanedAttr: accessLineAttrs},
		{
			name: "child output", msg: "upstream",
			attrs:       []slog.Attr{slog.String("source", "upstream"), slog.String("line", "INFO:  \x1b[32mStarted\x1b[0m server")},
			cleanedMsg:  "upstream",
			cleanedAttr: []slog.Attr{slog.String("source", "upstream"), slog.String("line", "INFO:  Started server")},
		},
		{
			name: "error value", msg: "upstream error",
			attrs:       []slog.Attr{slog.Any("err", errString("dial tcp: connection refused")), slog.Int("status", 502)},
			cleanedMsg:  "upstream error",
			cleanedAttr: []slog.Attr{slog.String("err", "dial tcp: connection refused"), slog.Int("status", 502)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			New(&buf, Options{}).LogAttrs(context.Background(), slog.LevelInfo, tt.msg, tt.attrs...)
			r := slog.NewRecord(time.Now(), slog.LevelInfo, tt.cleanedMsg, 0)
			r.AddAttrs(tt.cleanedAttr...)
			want := tintLine(t, r)
			// The times differ; compare from the level on.
			got := buf.String()
			if cut(got) != cut(want) {
				t.Errorf("got  %q\nwant %q (tint's)", got, want)
			}
		})
	}
}

// cut drops a text line's time field.
func cut(line string) string {
	if i := bytes.IndexByte([]byte(line), ' '); i >= 0 {
		return line[i:]
	}
	return line
}

type errString string

func (e errString) Error() string { return string(e) }
