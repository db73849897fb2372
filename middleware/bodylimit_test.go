package middleware

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
)

// countingReader counts the bytes read from it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestBodyLimit(t *testing.T) {
	tests := []struct {
		name          string
		limit         int64
		body          string
		contentLength int64 // -1: unknown (chunked)
		wantStatus    int
		wantCalled    bool
		wantBody      string // what the handler read
		wantMaxBytes  bool   // the handler's read failed with *http.MaxBytesError
	}{
		{name: "content length over limit", limit: 10, body: strings.Repeat("a", 11), contentLength: 11, wantStatus: 413},
		{name: "declared length over limit", limit: 10, body: "tiny", contentLength: 1 << 30, wantStatus: 413},
		{name: "chunked over limit", limit: 10, body: strings.Repeat("a", 11), contentLength: -1, wantStatus: 413, wantCalled: true, wantMaxBytes: true},
		{name: "content length at limit", limit: 10, body: "0123456789", contentLength: 10, wantStatus: 200, wantCalled: true, wantBody: "0123456789"},
		{name: "chunked at limit", limit: 10, body: "0123456789", contentLength: -1, wantStatus: 200, wantCalled: true, wantBody: "0123456789"},
		{name: "under limit", limit: 10, body: "hello", contentLength: 5, wantStatus: 200, wantCalled: true, wantBody: "hello"},
		{name: "empty body", limit: 10, body: "", contentLength: 0, wantStatus: 200, wantCalled: true, wantBody: ""},
		{name: "zero limit means default", limit: 0, body: "x", contentLength: DefaultBodyLimit + 1, wantStatus: 413},
		{name: "default allows its size", limit: -5, body: "x", contentLength: DefaultBodyLimit, wantStatus: 200, wantCalled: true, wantBody: "x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			called, maxBytes := false, false
			var read string
			e := echo.New()
			e.Use(BodyLimit(BodyLimitConfig{Limit: tt.limit}))
			e.POST("/upload", func(c echo.Context) error {
				called = true
				b, err := io.ReadAll(c.Request().Body)
				read = string(b)
				var mbe *http.MaxBytesError
				if errors.As(err, &mbe) {
					maxBytes = true
					if mbe.Limit != tt.limit {
						t.Errorf("MaxBytesError.Limit: got %d, want %d", mbe.Limit, tt.limit)
					}
					return echo.NewHTTPError(http.StatusRequestEntityTooLarge, "request body too large")
				}
				if err != nil {
					return err
				}
				return c.NoContent(http.StatusOK)
			})
			body := &countingReader{r: strings.NewReader(tt.body)}
			req := httptest.NewRequest(http.MethodPost, "/upload", body)
			req.ContentLength = tt.contentLength
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, req)

			if rec.Code != tt.wantStatus {
				t.Errorf("status: got %d, want %d", rec.Code, tt.wantStatus)
			}
			if called != tt.wantCalled {
				t.Errorf("handler called: got %v, want %v", called, tt.wantCalled)
			}
			if !tt.wantCalled && body.n != 0 {
				t.Errorf("body bytes read before refusing: got %d, want 0", body.n)
			}
			if maxBytes != tt.wantMaxBytes {
				t.Errorf("read failed with *http.MaxBytesError: got %v, want %v", maxBytes, tt.wantMaxBytes)
			}
			if tt.wantCalled && !tt.wantMaxBytes && read != tt.wantBody {
				t.Errorf("body: got %q, want %q", read, tt.wantBody)
			}
		})
	}
}

func TestBodyLimitNoBody(t *testing.T) {
	var got io.ReadCloser
	e := echo.New()
	e.Use(BodyLimit(BodyLimitConfig{Limit: 1}))
	e.GET("/", func(c echo.Context) error {
		got = c.Request().Body
		return c.NoContent(http.StatusOK)
	})
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Errorf("status: got %d, want 200", rec.Code)
	}
	if got != http.NoBody {
		t.Errorf("body: got %T, want http.NoBody left alone", got)
	}
}

// TestBodyLimitClosesConnection checks, on a real server, that an oversized
// chunked body makes net/http close the connection after the 413 instead of
// reading the rest of the body.
func TestBodyLimitClosesConnection(t *testing.T) {
	e := echo.New()
	e.Use(BodyLimit(BodyLimitConfig{Limit: 1 << 10}))
	e.POST("/upload", func(c echo.Context) error {
		if _, err := io.Copy(io.Discard, c.Request().Body); err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return echo.NewHTTPError(http.StatusRequestEntityTooLarge, "request body too large")
			}
			return err
		}
		return c.NoContent(http.StatusOK)
	})
	srv := httptest.NewServer(e)
	defer srv.Close()

	// io.MultiReader hides the length, so the client sends it chunked.
	body := io.MultiReader(strings.NewReader(strings.Repeat("a", 64<<10)))
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/upload", body)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("post: %v", err)
	}
	defer resp.Body.Close()
	if got, want := resp.StatusCode, http.StatusRequestEntityTooLarge; got != want {
		t.Errorf("status: got %d, want %d", got, want)
	}
	if got, want := req.ContentLength, int64(0); got != want {
		t.Fatalf("request content length: got %d, want %d (unknown, chunked)", got, want)
	}
	if !resp.Close {
		t.Errorf("connection: got kept alive, want closed after an oversized body")
	}
}
