package middleware

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hfgate/hfgate/logging/logtest"

	"github.com/labstack/echo/v4"
)

// testTimeout bounds every wait in these tests so a broken middleware fails
// instead of hanging; it is never used to let something happen.
const testTimeout = 10 * time.Second

// onlyRecord returns the one record in logs, waiting for it to be written, and fails the test
// if there is another.
func onlyRecord(t *testing.T, logs *logtest.Sink) map[string]any {
	t.Helper()
	rec := logs.WaitN(t, "", 1)[0]
	if recs := logs.Records(t, ""); len(recs) != 1 {
		t.Errorf("got %d log records, want 1:\n%s", len(recs), logs.String())
	}
	return rec
}

// noRecords fails the test if anything was logged.
func noRecords(t *testing.T, logs *logtest.Sink) {
	t.Helper()
	if out := logs.String(); out != "" {
		t.Errorf("got log records, want none:\n%s", out)
	}
}

// steppingClock returns a Now func that advances by step on every call.
func steppingClock(step time.Duration) func() time.Time {
	now := time.Date(2026, 11, 25, 16, 0, 0, 0, time.UTC)
	return func() time.Time {
		now = now.Add(step)
		return now
	}
}

func TestAccessLog(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		target     string
		header     http.Header
		canceled   bool
		handler    echo.HandlerFunc
		wantStatus int
		wantBytes  int
		wantPath   string
		wantLevel  string
	}{
		{
			name: "ok", method: http.MethodGet, target: "/chat",
			handler:    func(c echo.Context) error { return c.String(http.StatusOK, "hello") },
			wantStatus: 200, wantBytes: 5, wantPath: "/chat", wantLevel: "INFO",
		},
		{
			name: "query never logged", method: http.MethodGet, target: "/search?token=secret&q=secret",
			handler:    func(c echo.Context) error { return c.NoContent(http.StatusNoContent) },
			wantStatus: 204, wantPath: "/search", wantLevel: "INFO",
		},
		{
			name: "credentials never logged", method: http.MethodPost, target: "/login",
			header: http.Header{
				"Authorization": {"Bearer secret-bearer"},
				"Cookie":        {"session=secret-cookie"},
				"X-Api-Key":     {"secret-key"},
			},
			handler:    func(c echo.Context) error { return c.String(http.StatusCreated, "ok") },
			wantStatus: 201, wantBytes: 2, wantPath: "/login", wantLevel: "INFO",
		},
		{
			name: "HTTP error returned", method: http.MethodPost, target: "/upload",
			handler: func(c echo.Context) error {
				return echo.NewHTTPError(http.StatusRequestEntityTooLarge, "request body too large")
			},
			wantStatus: 413, wantBytes: -1, wantPath: "/upload", wantLevel: "INFO",
		},
		{
			name: "service unavailable", method: http.MethodGet, target: "/v1/models",
			handler: func(c echo.Context) error {
				return echo.NewHTTPError(http.StatusServiceUnavailable, "upstream not ready")
			},
			wantStatus: 503, wantBytes: -1, wantPath: "/v1/models", wantLevel: "INFO",
		},
		{
			name: "gateway timeout", method: http.MethodGet, target: "/slow",
			handler: func(c echo.Context) error {
				return echo.NewHTTPError(http.StatusGatewayTimeout, "upstream timed out")
			},
			wantStatus: 504, wantBytes: -1, wantPath: "/slow", wantLevel: "WARN",
		},
		{
			name: "plain error", method: http.MethodGet, target: "/x",
			handler:    func(c echo.Context) error { return errors.New("boom") },
			wantStatus: 500, wantBytes: -1, wantPath: "/x", wantLevel: "ERROR",
		},
		{
			name: "panic with Recover", method: http.MethodGet, target: "/panic",
			handler:    func(c echo.Context) error { panic("kaboom") },
			wantStatus: 500, wantBytes: -1, wantPath: "/panic", wantLevel: "ERROR",
		},
		{
			name: "client canceled before answer", method: http.MethodGet, target: "/slow", canceled: true,
			handler: func(c echo.Context) error {
				return echo.NewHTTPError(http.StatusBadGateway, "upstream error")
			},
			wantStatus: 499, wantBytes: -1, wantPath: "/slow", wantLevel: "INFO",
		},
		{
			name: "escaped path logged decoded", method: http.MethodGet, target: "/a%20b",
			handler:    func(c echo.Context) error { return c.NoContent(http.StatusOK) },
			wantStatus: 200, wantPath: "/a b", wantLevel: "INFO",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := logtest.NewSink()
			logger := logs.RawLogger()
			e := echo.New()
			e.Use(
				RequestID(RequestIDConfig{}),
				AccessLog(AccessLogConfig{Logger: logger, Now: steppingClock(1500 * time.Millisecond)}),
				Recover(RecoverConfig{Logger: slog.New(slog.DiscardHandler)}),
			)
			e.Any("/*", tt.handler)

			req := httptest.NewRequest(tt.method, tt.target, nil)
			for k, vs := range tt.header {
				req.Header[k] = vs
			}
			if tt.canceled {
				ctx, cancel := context.WithCancel(req.Context())
				cancel()
				req = req.WithContext(ctx)
			}
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, req)

			got := onlyRecord(t, logs)

			if !tt.canceled && rec.Code != tt.wantStatus {
				t.Errorf("response status: got %d, want %d", rec.Code, tt.wantStatus)
			}
			if got["msg"] != "request" {
				t.Errorf("msg: got %v, want %q", got["msg"], "request")
			}
			if got["level"] != tt.wantLevel {
				t.Errorf("level: got %v, want %s", got["level"], tt.wantLevel)
			}
			if got["method"] != tt.method {
				t.Errorf("method: got %v, want %s", got["method"], tt.method)
			}
			if got["path"] != tt.wantPath {
				t.Errorf("path: got %v, want %q", got["path"], tt.wantPath)
			}
			if got["status"] != float64(tt.wantStatus) {
				t.Errorf("status: got %v, want %d", got["status"], tt.wantStatus)
			}
			if want := float64(1500 * time.Millisecond); got["duration"] != want {
				t.Errorf("duration: got %v, want %v", got["duration"], want)
			}
			wantBytes := float64(tt.wantBytes)
			if tt.wantBytes < 0 {
				wantBytes = float64(rec.Body.Len()) // rendered by echo's error handler
			}
			if got["bytes"] != wantBytes {
				t.Errorf("bytes: got %v, want %v", got["bytes"], wantBytes)
			}
			if id := rec.Header().Get("X-Request-ID"); id == "" || got["request_id"] != id {
				t.Errorf("request_id: got %v, want %q", got["request_id"], id)
			}
			if line := logs.String(); strings.Contains(line, "secret") {
				t.Errorf("log record holds a secret: %s", line)
			}
		})
	}
}

func TestAccessLogAttrs(t *testing.T) {
	logs := logtest.NewSink()
	logger := logs.RawLogger()
	e := echo.New()
	e.Use(AccessLog(AccessLogConfig{
		Logger: logger,
		Attrs: func(c echo.Context) []slog.Attr {
			return []slog.Attr{slog.String("upstream", "ready"), slog.Int("late_status", c.Response().Status)}
		},
	}))
	e.GET("/", func(c echo.Context) error { return c.NoContent(http.StatusAccepted) })
	e.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))

	got := onlyRecord(t, logs)
	if got["upstream"] != "ready" {
		t.Errorf("upstream: got %v, want %q", got["upstream"], "ready")
	}
	if got["late_status"] != float64(http.StatusAccepted) {
		t.Errorf("late_status: got %v, want %d (Attrs must run after the handler)", got["late_status"], http.StatusAccepted)
	}
	if got["request_id"] != "" {
		t.Errorf("request_id without RequestID: got %v, want empty", got["request_id"])
	}
}

func TestAccessLogPanicWithoutRecover(t *testing.T) {
	tests := []struct {
		name       string
		handler    echo.HandlerFunc
		wantStatus int
	}{
		{
			name:       "before answer",
			handler:    func(c echo.Context) error { panic("kaboom") },
			wantStatus: 500,
		},
		{
			name: "abort after headers",
			handler: func(c echo.Context) error {
				c.Response().WriteHeader(http.StatusOK)
				panic(http.ErrAbortHandler)
			},
			wantStatus: 200,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := logtest.NewSink()
			logger := logs.RawLogger()
			h := AccessLog(AccessLogConfig{Logger: logger})(tt.handler)
			c := echo.New().NewContext(httptest.NewRequest(http.MethodGet, "/p", nil), httptest.NewRecorder())

			v := func() (v any) {
				defer func() { v = recover() }()
				_ = h(c)
				return nil
			}()
			if v == nil {
				t.Fatal("panic swallowed, want it re-panicked")
			}
			got := onlyRecord(t, logs)
			if got["status"] != float64(tt.wantStatus) {
				t.Errorf("status: got %v, want %d", got["status"], tt.wantStatus)
			}
		})
	}
}

func TestAccessLogAbortThroughRecover(t *testing.T) {
	logs := logtest.NewSink()
	logger := logs.RawLogger()
	h := AccessLog(AccessLogConfig{Logger: logger})(
		Recover(RecoverConfig{Logger: logger})(func(c echo.Context) error {
			_, _ = c.Response().Write([]byte("partial"))
			panic(http.ErrAbortHandler)
		}))
	c := echo.New().NewContext(httptest.NewRequest(http.MethodGet, "/stream", nil), httptest.NewRecorder())

	v := func() (v any) {
		defer func() { v = recover() }()
		_ = h(c)
		return nil
	}()
	if v != http.ErrAbortHandler {
		t.Fatalf("panic value: got %v, want http.ErrAbortHandler", v)
	}
	got := onlyRecord(t, logs)
	if got["msg"] != "request" {
		t.Fatalf("msg: got %v, want %q (Recover must not log ErrAbortHandler)", got["msg"], "request")
	}
	if got["status"] != float64(http.StatusOK) || got["bytes"] != float64(len("partial")) {
		t.Errorf("status, bytes: got %v, %v, want 200, %d", got["status"], got["bytes"], len("partial"))
	}
}

// streamServer serves handler behind the whole middleware chain on a real
// listener.
func streamServer(t *testing.T, logger *slog.Logger, handler echo.HandlerFunc) *httptest.Server {
	t.Helper()
	e := echo.New()
	e.Use(
		RequestID(RequestIDConfig{}),
		AccessLog(AccessLogConfig{Logger: logger}),
		Recover(RecoverConfig{Logger: logger}),
		CORS(CORSConfig{AllowOrigins: []string{"https://app.example"}}),
		BodyLimit(BodyLimitConfig{Limit: 1 << 20}),
	)
	e.GET("/stream", handler)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return srv
}

func TestAccessLogStreamingNotBuffered(t *testing.T) {
	logs := logtest.NewSink()
	logger := logs.RawLogger()
	release := make(chan struct{})
	srv := streamServer(t, logger, func(c echo.Context) error {
		c.Response().Header().Set("Content-Type", "text/event-stream")
		c.Response().WriteHeader(http.StatusOK)
		_, _ = io.WriteString(c.Response(), "data: one\n\n")
		if err := http.NewResponseController(c.Response()).Flush(); err != nil {
			return err
		}
		select {
		case <-release:
		case <-c.Request().Context().Done():
			return nil
		}
		_, _ = io.WriteString(c.Response(), "data: two\n\n")
		return nil
	})

	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/stream", nil)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	// The handler is still blocked on release: this line arrives only if
	// it was flushed through every middleware.
	line, err := br.ReadString('\n')
	if err != nil {
		t.Fatalf("read first event before release: %v", err)
	}
	if want := "data: one\n"; line != want {
		t.Errorf("first line: got %q, want %q", line, want)
	}
	noRecords(t, logs) // the request is not over yet
	close(release)
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatalf("read rest: %v", err)
	}
	if want := "\ndata: two\n\n"; string(rest) != want {
		t.Errorf("rest: got %q, want %q", rest, want)
	}

	got := onlyRecord(t, logs)
	if got["status"] != float64(http.StatusOK) {
		t.Errorf("status: got %v, want 200", got["status"])
	}
	if want := float64(len("data: one\n\ndata: two\n\n")); got["bytes"] != want {
		t.Errorf("bytes: got %v, want %v", got["bytes"], want)
	}
}

func TestAccessLogClientGoneMidStream(t *testing.T) {
	logs := logtest.NewSink()
	logger := logs.RawLogger()
	srv := streamServer(t, logger, func(c echo.Context) error {
		c.Response().WriteHeader(http.StatusOK)
		_, _ = io.WriteString(c.Response(), "data: one\n\n")
		if err := http.NewResponseController(c.Response()).Flush(); err != nil {
			return err
		}
		<-c.Request().Context().Done()
		return c.Request().Context().Err()
	})

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/stream", nil)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	defer resp.Body.Close()
	if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil {
		t.Fatalf("read first event: %v", err)
	}
	cancel() // the client goes away mid-stream

	got := onlyRecord(t, logs)
	if got["status"] != float64(StatusClientClosedRequest) {
		t.Errorf("status: got %v, want %d", got["status"], StatusClientClosedRequest)
	}
	if want := float64(len("data: one\n\n")); got["bytes"] != want {
		t.Errorf("bytes: got %v, want %v", got["bytes"], want)
	}
}

func BenchmarkAccessLog(b *testing.B) {
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	h := AccessLog(AccessLogConfig{Logger: logger})(func(c echo.Context) error { return nil })
	e := echo.New()
	req := httptest.NewRequest(http.MethodGet, "/x", nil)
	rec := httptest.NewRecorder()
	c := e.NewContext(req, rec)
	b.ReportAllocs()
	for b.Loop() {
		_ = h(c)
	}
}
