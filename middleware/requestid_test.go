package middleware

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
)

var generatedID = regexp.MustCompile(`^[0-9a-f]{32}$`)

// serveRequestID runs one request with incoming header values through
// RequestID and returns the ID the handler saw in the request header, in
// the echo context, and the ID in the response header.
func serveRequestID(t *testing.T, cfg RequestIDConfig, incoming []string) (upstream, fromCtx, response string) {
	t.Helper()
	e := echo.New()
	e.Use(RequestID(cfg))
	e.GET("/", func(c echo.Context) error {
		upstream = strings.Join(c.Request().Header.Values("X-Request-ID"), "|")
		fromCtx = RequestIDFrom(c)
		return c.NoContent(http.StatusOK)
	})
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	for _, v := range incoming {
		req.Header.Add("X-Request-ID", v)
	}
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	if got, want := rec.Code, http.StatusOK; got != want {
		t.Fatalf("status: got %d, want %d", got, want)
	}
	if got := len(rec.Header().Values("X-Request-ID")); got != 1 {
		t.Errorf("response X-Request-ID values: got %d, want 1", got)
	}
	return upstream, fromCtx, rec.Header().Get("X-Request-ID")
}

func TestRequestIDKeepsValid(t *testing.T) {
	tests := []struct {
		name     string
		incoming []string
		want     string
	}{
		{name: "uuid", incoming: []string{"3f2c1a9e-7b1d-4c55-9a8e-2d9b1f0c6e41"}, want: "3f2c1a9e-7b1d-4c55-9a8e-2d9b1f0c6e41"},
		{name: "single char", incoming: []string{"a"}, want: "a"},
		{name: "all allowed punctuation", incoming: []string{"A.b_c:d+e=f/g-h"}, want: "A.b_c:d+e=f/g-h"},
		{name: "base64", incoming: []string{"dGVzdA=="}, want: "dGVzdA=="},
		{name: "128 chars", incoming: []string{strings.Repeat("x", 128)}, want: strings.Repeat("x", 128)},
		{name: "first of several", incoming: []string{"first", "second"}, want: "first"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			upstream, fromCtx, response := serveRequestID(t, RequestIDConfig{}, tt.incoming)
			if upstream != tt.want {
				t.Errorf("request header: got %q, want %q", upstream, tt.want)
			}
			if fromCtx != tt.want {
				t.Errorf("RequestIDFrom: got %q, want %q", fromCtx, tt.want)
			}
			if response != tt.want {
				t.Errorf("response header: got %q, want %q", response, tt.want)
			}
		})
	}
}

func TestRequestIDReplacesInvalid(t *testing.T) {
	tests := []struct {
		name     string
		incoming []string
	}{
		{name: "absent"},
		{name: "empty", incoming: []string{""}},
		{name: "129 chars", incoming: []string{strings.Repeat("x", 129)}},
		{name: "space", incoming: []string{"abc def"}},
		{name: "tab", incoming: []string{"abc\tdef"}},
		{name: "newline", incoming: []string{"abc\nlevel=ERROR msg=forged"}},
		{name: "control char", incoming: []string{"abc\x01"}},
		{name: "DEL", incoming: []string{"abc\x7f"}},
		{name: "quote", incoming: []string{`abc"def`}},
		{name: "non-ASCII", incoming: []string{"caf\u00e9"}},
		{name: "invalid first of several", incoming: []string{"bad id", "good"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			upstream, fromCtx, response := serveRequestID(t, RequestIDConfig{}, tt.incoming)
			if !generatedID.MatchString(response) {
				t.Fatalf("response header: got %q, want 32 lowercase hex characters", response)
			}
			if upstream != response {
				t.Errorf("request header: got %q, want %q", upstream, response)
			}
			if fromCtx != response {
				t.Errorf("RequestIDFrom: got %q, want %q", fromCtx, response)
			}
		})
	}
}

func TestRequestIDGeneratedUnique(t *testing.T) {
	const n = 1000
	seen := make(map[string]bool, n)
	for range n {
		_, _, id := serveRequestID(t, RequestIDConfig{}, nil)
		if !generatedID.MatchString(id) {
			t.Fatalf("generated id: got %q, want 32 lowercase hex characters", id)
		}
		if seen[id] {
			t.Fatalf("generated id %q twice in %d requests", id, len(seen)+1)
		}
		seen[id] = true
	}
}

func TestRequestIDCustomGenerator(t *testing.T) {
	cfg := RequestIDConfig{Generator: func() string { return "fixed" }}
	tests := []struct {
		name     string
		incoming []string
		want     string
	}{
		{name: "used when absent", want: "fixed"},
		{name: "used when invalid", incoming: []string{"a b"}, want: "fixed"},
		{name: "not used when valid", incoming: []string{"client"}, want: "client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, got := serveRequestID(t, cfg, tt.incoming)
			if got != tt.want {
				t.Errorf("id: got %q, want %q", got, tt.want)
			}
		})
	}
}

// The request and response headers share one value slice; a handler that adds a second value
// to one of them must not change the other.
func TestRequestIDHeadersIndependent(t *testing.T) {
	for _, incoming := range []string{"", "client-id"} {
		t.Run("incoming="+incoming, func(t *testing.T) {
			e := echo.New()
			e.Use(RequestID(RequestIDConfig{}))
			var upstream []string
			e.GET("/", func(c echo.Context) error {
				c.Response().Header().Add(HeaderRequestID, "added-to-response")
				c.Request().Header.Add(HeaderRequestID, "added-to-request")
				upstream = c.Request().Header.Values(HeaderRequestID)
				return c.NoContent(http.StatusOK)
			})
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			if incoming != "" {
				req.Header.Set(HeaderRequestID, incoming)
			}
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, req)
			got := rec.Header().Values(HeaderRequestID)
			if len(got) != 2 || got[1] != "added-to-response" {
				t.Errorf("response values: got %q, want [id added-to-response]", got)
			}
			if len(upstream) != 2 || upstream[1] != "added-to-request" || upstream[0] != got[0] {
				t.Errorf("request values: got %q, want [%s added-to-request]", upstream, got[0])
			}
		})
	}
}

func TestRequestIDFromWithoutMiddleware(t *testing.T) {
	c := echo.New().NewContext(httptest.NewRequest(http.MethodGet, "/", nil), httptest.NewRecorder())
	if got := RequestIDFrom(c); got != "" {
		t.Errorf("RequestIDFrom: got %q, want empty", got)
	}
}

// BenchmarkRequestID: no incoming ID, one is generated.
func BenchmarkRequestID(b *testing.B) { benchRequestID(b, nil) }

// BenchmarkRequestIDIncoming: the client sent a valid ID, which is kept.
func BenchmarkRequestIDIncoming(b *testing.B) {
	benchRequestID(b, []string{"3f2c1a9e-7b1d-4c55-9a8e-2d9b1f0c6e41"})
}

// benchRequestID runs RequestID on one request whose X-Request-ID is set to
// incoming (a fresh slice each time, as a parsed request's is) or absent.
func benchRequestID(b *testing.B, incoming []string) {
	b.Helper()
	h := RequestID(RequestIDConfig{})(func(c echo.Context) error { return nil })
	e := echo.New()
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	rec := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		req.Header.Del(HeaderRequestID)
		if incoming != nil {
			req.Header[HeaderRequestID] = append([]string(nil), incoming...)
		}
		clear(rec.Header())
		c := e.NewContext(req, rec)
		_ = h(c)
	}
}
