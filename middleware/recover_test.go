package middleware

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hfgate/hfgate/logging/logtest"

	"github.com/labstack/echo/v4"
)

func TestRecover(t *testing.T) {
	tests := []struct {
		name      string
		value     any
		wantPanic string
	}{
		{name: "string", value: "kaboom", wantPanic: "kaboom"},
		{name: "error", value: errors.New("nil map write"), wantPanic: "nil map write"},
		{name: "wrapped error", value: fmt.Errorf("wrap: %w", errors.New("x")), wantPanic: "wrap: x"},
		{name: "int", value: 42, wantPanic: "42"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := logtest.NewSink()
			logger := logs.RawLogger()
			e := echo.New()
			e.Use(RequestID(RequestIDConfig{}), Recover(RecoverConfig{Logger: logger}))
			e.GET("/boom", func(c echo.Context) error { panic(tt.value) })

			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/boom?token=secret", nil))

			if got, want := rec.Code, http.StatusInternalServerError; got != want {
				t.Errorf("status: got %d, want %d", got, want)
			}
			if got := rec.Body.String(); !strings.Contains(got, "internal error") || strings.Contains(got, tt.wantPanic) {
				t.Errorf("body: got %q, want the fixed message without the panic value", got)
			}
			got := onlyRecord(t, logs)
			if got["level"] != "ERROR" || got["msg"] != "panic recovered" {
				t.Errorf("level, msg: got %v, %v, want ERROR, %q", got["level"], got["msg"], "panic recovered")
			}
			if got["panic"] != tt.wantPanic {
				t.Errorf("panic: got %v, want %q", got["panic"], tt.wantPanic)
			}
			if stack, _ := got["stack"].(string); !strings.Contains(stack, "recover_test.go") {
				t.Errorf("stack: got %q, want it to name the panicking file", stack)
			}
			if got["path"] != "/boom" || got["method"] != "GET" {
				t.Errorf("method, path: got %v, %v, want GET, /boom", got["method"], got["path"])
			}
			if id := rec.Header().Get("X-Request-ID"); got["request_id"] != id {
				t.Errorf("request_id: got %v, want %q", got["request_id"], id)
			}
			if line := logs.String(); strings.Contains(line, "secret") {
				t.Errorf("log record holds the query: %s", line)
			}
		})
	}
}

func TestRecoverReturnsHTTPError(t *testing.T) {
	h := Recover(RecoverConfig{Logger: slog.New(slog.DiscardHandler)})(func(c echo.Context) error { panic("x") })
	c := echo.New().NewContext(httptest.NewRequest(http.MethodGet, "/", nil), httptest.NewRecorder())

	err := h(c)
	var he *echo.HTTPError
	if !errors.As(err, &he) {
		t.Fatalf("error: got %v, want *echo.HTTPError", err)
	}
	if he.Code != http.StatusInternalServerError || he.Message != "internal error" {
		t.Errorf("HTTP error: got %d %v, want 500 %q", he.Code, he.Message, "internal error")
	}
}

func TestRecoverPassesThrough(t *testing.T) {
	logs := logtest.NewSink()
	want := echo.NewHTTPError(http.StatusTeapot)
	h := Recover(RecoverConfig{Logger: logs.RawLogger()})(func(c echo.Context) error { return want })
	c := echo.New().NewContext(httptest.NewRequest(http.MethodGet, "/", nil), httptest.NewRecorder())

	if got := h(c); got != want {
		t.Errorf("error: got %v, want %v", got, want)
	}
	noRecords(t, logs)
}

func TestRecoverRepanicsAbortHandler(t *testing.T) {
	tests := []struct {
		name  string
		value error
	}{
		{name: "sentinel", value: http.ErrAbortHandler},
		{name: "wrapped", value: fmt.Errorf("copy body: %w", http.ErrAbortHandler)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := logtest.NewSink()
			h := Recover(RecoverConfig{Logger: logs.RawLogger()})(func(c echo.Context) error { panic(tt.value) })
			c := echo.New().NewContext(httptest.NewRequest(http.MethodGet, "/", nil), httptest.NewRecorder())

			got := func() (v any) {
				defer func() { v = recover() }()
				_ = h(c)
				return nil
			}()
			if got != tt.value {
				t.Errorf("panic value: got %v, want %v unchanged", got, tt.value)
			}
			noRecords(t, logs)
		})
	}
}

// BenchmarkRecover: the cost on every request, which does not panic.
func BenchmarkRecover(b *testing.B) {
	h := Recover(RecoverConfig{})(func(c echo.Context) error { return nil })
	c := echo.New().NewContext(httptest.NewRequest(http.MethodGet, "/", nil), httptest.NewRecorder())
	b.ReportAllocs()
	for b.Loop() {
		_ = h(c)
	}
}
