package middleware

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
)

const (
	appOrigin   = "https://app.example"
	otherOrigin = "https://evil.example"
	varyAll     = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
	exposeAll   = "X-Custom,Retry-After,X-Request-ID"
	allMethods  = "GET,HEAD,POST,PUT,PATCH,DELETE,OPTIONS"
)

func TestCORS(t *testing.T) {
	base := CORSConfig{
		AllowOrigins:  []string{appOrigin, "http://localhost:5173"},
		AllowHeaders:  []string{"Accept", "Authorization", "Content-Type"},
		ExposeHeaders: []string{"X-Custom"},
		MaxAge:        600,
	}
	withCreds := base
	withCreds.AllowCredentials = true
	wildcard := base
	wildcard.AllowOrigins = []string{"*"}
	wildcardCreds := wildcard
	wildcardCreds.AllowCredentials = true

	tests := []struct {
		name       string
		cfg        CORSConfig
		method     string
		header     map[string]string
		preVary    []string // Vary values set before CORS runs
		handlerErr error
		wantCalled bool
		wantStatus int
		// wantHeaders lists Vary and every Access-Control-* header the
		// answer must carry (multiple values joined with ", "); any other
		// Access-Control-* header is an error.
		wantHeaders map[string]string
	}{
		{
			name: "preflight allowed", cfg: base, method: http.MethodOptions,
			header:     map[string]string{"Origin": appOrigin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"},
			wantStatus: 204,
			wantHeaders: map[string]string{
				"Vary":                         varyAll,
				"Access-Control-Allow-Origin":  appOrigin,
				"Access-Control-Allow-Methods": allMethods,
				"Access-Control-Allow-Headers": "Accept,Authorization,Content-Type",
				"Access-Control-Max-Age":       "600",
			},
		},
		{
			name: "preflight allowed second origin with credentials", cfg: withCreds, method: http.MethodOptions,
			header:     map[string]string{"Origin": "http://localhost:5173", "Access-Control-Request-Method": "GET"},
			wantStatus: 204,
			wantHeaders: map[string]string{
				"Vary":                             varyAll,
				"Access-Control-Allow-Origin":      "http://localhost:5173",
				"Access-Control-Allow-Methods":     allMethods,
				"Access-Control-Allow-Headers":     "Accept,Authorization,Content-Type",
				"Access-Control-Max-Age":           "600",
				"Access-Control-Allow-Credentials": "true",
			},
		},
		{
			name: "preflight wildcard", cfg: wildcard, method: http.MethodOptions,
			header:     map[string]string{"Origin": otherOrigin, "Access-Control-Request-Method": "DELETE"},
			wantStatus: 204,
			wantHeaders: map[string]string{
				"Vary":                         varyAll,
				"Access-Control-Allow-Origin":  "*",
				"Access-Control-Allow-Methods": allMethods,
				"Access-Control-Allow-Headers": "Accept,Authorization,Content-Type",
				"Access-Control-Max-Age":       "600",
			},
		},
		{
			name:       "preflight custom methods, no headers, no max age",
			cfg:        CORSConfig{AllowOrigins: []string{appOrigin}, AllowMethods: []string{"GET", "POST"}},
			method:     http.MethodOptions,
			header:     map[string]string{"Origin": appOrigin, "Access-Control-Request-Method": "POST"},
			wantStatus: 204,
			wantHeaders: map[string]string{
				"Vary":                         varyAll,
				"Access-Control-Allow-Origin":  appOrigin,
				"Access-Control-Allow-Methods": "GET,POST",
				"Access-Control-Max-Age":       "0",
			},
		},
		{
			name: "preflight negative max age", cfg: CORSConfig{AllowOrigins: []string{appOrigin}, MaxAge: -1},
			method:     http.MethodOptions,
			header:     map[string]string{"Origin": appOrigin, "Access-Control-Request-Method": "POST"},
			wantStatus: 204,
			wantHeaders: map[string]string{
				"Vary":                         varyAll,
				"Access-Control-Allow-Origin":  appOrigin,
				"Access-Control-Allow-Methods": allMethods,
				"Access-Control-Max-Age":       "0",
			},
		},
		{
			name: "preflight disallowed origin", cfg: base, method: http.MethodOptions,
			header:      map[string]string{"Origin": otherOrigin, "Access-Control-Request-Method": "POST"},
			wantCalled:  true,
			wantStatus:  200,
			wantHeaders: map[string]string{"Vary": "Origin"},
		},
		{
			name: "OPTIONS without request method", cfg: base, method: http.MethodOptions,
			header:     map[string]string{"Origin": appOrigin},
			wantCalled: true,
			wantStatus: 200,
			wantHeaders: map[string]string{
				"Vary":                          "Origin",
				"Access-Control-Allow-Origin":   appOrigin,
				"Access-Control-Expose-Headers": exposeAll,
			},
		},
		{
			name: "OPTIONS without origin", cfg: base, method: http.MethodOptions,
			header:      map[string]string{"Access-Control-Request-Method": "POST"},
			wantCalled:  true,
			wantStatus:  200,
			wantHeaders: map[string]string{"Vary": "Origin"},
		},
		{
			name: "actual request allowed", cfg: base, method: http.MethodPost,
			header:     map[string]string{"Origin": appOrigin},
			wantCalled: true,
			wantStatus: 200,
			wantHeaders: map[string]string{
				"Vary":                          "Origin",
				"Access-Control-Allow-Origin":   appOrigin,
				"Access-Control-Expose-Headers": exposeAll,
			},
		},
		{
			name: "actual request with credentials", cfg: withCreds, method: http.MethodGet,
			header:     map[string]string{"Origin": appOrigin},
			wantCalled: true,
			wantStatus: 200,
			wantHeaders: map[string]string{
				"Vary":                             "Origin",
				"Access-Control-Allow-Origin":      appOrigin,
				"Access-Control-Expose-Headers":    exposeAll,
				"Access-Control-Allow-Credentials": "true",
			},
		},
		{
			name: "actual request wildcard", cfg: wildcard, method: http.MethodGet,
			header:     map[string]string{"Origin": otherOrigin},
			wantCalled: true,
			wantStatus: 200,
			wantHeaders: map[string]string{
				"Vary":                          "Origin",
				"Access-Control-Allow-Origin":   "*",
				"Access-Control-Expose-Headers": exposeAll,
			},
		},
		{
			name: "actual request wildcard with credentials echoes origin", cfg: wildcardCreds, method: http.MethodGet,
			header:     map[string]string{"Origin": otherOrigin},
			wantCalled: true,
			wantStatus: 200,
			wantHeaders: map[string]string{
				"Vary":                             "Origin",
				"Access-Control-Allow-Origin":      otherOrigin,
				"Access-Control-Expose-Headers":    exposeAll,
				"Access-Control-Allow-Credentials": "true",
			},
		},
		{
			name: "actual request disallowed origin", cfg: withCreds, method: http.MethodGet,
			header:      map[string]string{"Origin": otherOrigin},
			wantCalled:  true,
			wantStatus:  200,
			wantHeaders: map[string]string{"Vary": "Origin"},
		},
		{
			name: "origin matched exactly, not case-folded", cfg: base, method: http.MethodGet,
			header:      map[string]string{"Origin": "https://APP.example"},
			wantCalled:  true,
			wantStatus:  200,
			wantHeaders: map[string]string{"Vary": "Origin"},
		},
		{
			name: "origin with trailing slash not allowed", cfg: base, method: http.MethodGet,
			header:      map[string]string{"Origin": appOrigin + "/"},
			wantCalled:  true,
			wantStatus:  200,
			wantHeaders: map[string]string{"Vary": "Origin"},
		},
		{
			name: "null origin not allowed", cfg: base, method: http.MethodGet,
			header:      map[string]string{"Origin": "null"},
			wantCalled:  true,
			wantStatus:  200,
			wantHeaders: map[string]string{"Vary": "Origin"},
		},
		{
			name: "error answer keeps CORS headers", cfg: withCreds, method: http.MethodGet,
			header:     map[string]string{"Origin": appOrigin},
			handlerErr: echo.NewHTTPError(http.StatusServiceUnavailable, "upstream not ready"),
			wantCalled: true,
			wantStatus: 503,
			wantHeaders: map[string]string{
				"Vary":                             "Origin",
				"Access-Control-Allow-Origin":      appOrigin,
				"Access-Control-Expose-Headers":    exposeAll,
				"Access-Control-Allow-Credentials": "true",
			},
		},
		{
			name: "no origin untouched except Vary", cfg: withCreds, method: http.MethodGet,
			wantCalled:  true,
			wantStatus:  200,
			wantHeaders: map[string]string{"Vary": "Origin"},
		},
		{
			name: "Vary Origin not duplicated", cfg: base, method: http.MethodGet,
			header:     map[string]string{"Origin": appOrigin},
			preVary:    []string{"Accept-Encoding, origin"},
			wantCalled: true,
			wantStatus: 200,
			wantHeaders: map[string]string{
				"Vary":                          "Accept-Encoding, origin",
				"Access-Control-Allow-Origin":   appOrigin,
				"Access-Control-Expose-Headers": exposeAll,
			},
		},
		{
			name: "Vary star kept alone", cfg: base, method: http.MethodGet,
			preVary:     []string{"*"},
			wantCalled:  true,
			wantStatus:  200,
			wantHeaders: map[string]string{"Vary": "*"},
		},
		{
			name: "Vary Origin added to others", cfg: base, method: http.MethodGet,
			preVary:     []string{"Accept-Encoding", "Accept"},
			wantCalled:  true,
			wantStatus:  200,
			wantHeaders: map[string]string{"Vary": "Accept-Encoding, Accept, Origin"},
		},
		{
			name:       "exposed headers not duplicated",
			cfg:        CORSConfig{AllowOrigins: []string{appOrigin}, ExposeHeaders: []string{"x-request-id", " ", "Content-Length"}},
			method:     http.MethodGet,
			header:     map[string]string{"Origin": appOrigin},
			wantCalled: true,
			wantStatus: 200,
			wantHeaders: map[string]string{
				"Vary":                          "Origin",
				"Access-Control-Allow-Origin":   appOrigin,
				"Access-Control-Expose-Headers": "x-request-id,Content-Length,Retry-After",
			},
		},
		{
			name: "no origins configured is a no-op", cfg: CORSConfig{AllowCredentials: true}, method: http.MethodOptions,
			header:      map[string]string{"Origin": appOrigin, "Access-Control-Request-Method": "POST"},
			wantCalled:  true,
			wantStatus:  200,
			wantHeaders: map[string]string{"Vary": ""},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			called := false
			e := echo.New()
			e.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
				return func(c echo.Context) error {
					for _, v := range tt.preVary {
						c.Response().Header().Add("Vary", v)
					}
					return next(c)
				}
			}, CORS(tt.cfg))
			e.Any("/*", func(c echo.Context) error {
				called = true
				if tt.handlerErr != nil {
					return tt.handlerErr
				}
				return c.String(http.StatusOK, "handler")
			})
			req := httptest.NewRequest(tt.method, "/v1/chat", nil)
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, req)

			if called != tt.wantCalled {
				t.Errorf("handler called: got %v, want %v", called, tt.wantCalled)
			}
			if rec.Code != tt.wantStatus {
				t.Errorf("status: got %d, want %d", rec.Code, tt.wantStatus)
			}
			for k, want := range tt.wantHeaders {
				if got := strings.Join(rec.Header().Values(k), ", "); got != want {
					t.Errorf("%s: got %q, want %q", k, got, want)
				}
			}
			for k := range rec.Header() {
				if _, ok := tt.wantHeaders[k]; !ok && strings.HasPrefix(k, "Access-Control-") {
					t.Errorf("unexpected header %s: %q", k, rec.Header().Values(k))
				}
			}
		})
	}
}

// TestCORSSharedValues checks that a handler adding to a CORS header does not
// change the values that later answers get.
func TestCORSSharedValues(t *testing.T) {
	e := echo.New()
	e.Use(CORS(CORSConfig{AllowOrigins: []string{"*", appOrigin}, AllowCredentials: true}))
	e.GET("/", func(c echo.Context) error {
		h := c.Response().Header()
		h.Add("Access-Control-Allow-Origin", "https://added.example")
		h.Add("Access-Control-Expose-Headers", "X-Added")
		h.Add("Access-Control-Allow-Credentials", "false")
		h.Add("Vary", "Accept")
		return c.NoContent(http.StatusOK)
	})
	for i := range 3 {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set("Origin", appOrigin)
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		for k, want := range map[string]string{
			"Access-Control-Allow-Origin":      appOrigin + ", https://added.example",
			"Access-Control-Expose-Headers":    "Retry-After,X-Request-ID, X-Added",
			"Access-Control-Allow-Credentials": "true, false",
			"Vary":                             "Origin, Accept",
		} {
			if got := strings.Join(rec.Header().Values(k), ", "); got != want {
				t.Errorf("request %d: %s: got %q, want %q", i, k, got, want)
			}
		}
	}
}

func TestStripCORSHeaders(t *testing.T) {
	tests := []struct {
		name string
		in   http.Header
		want []string // keys left
	}{
		{
			name: "canonical and odd case",
			in: http.Header{
				"Access-Control-Allow-Origin":      {"*"},
				"access-control-allow-credentials": {"true"},
				"ACCESS-CONTROL-MAX-AGE":           {"5"},
				"Access-Control-Expose-Headers":    {"X"},
				"Vary":                             {"Origin"},
				"Content-Type":                     {"text/plain"},
				"X-Access-Control-Allow-Origin":    {"*"},
				"Access-Control":                   {"x"},
			},
			want: []string{"Access-Control", "Content-Type", "Vary", "X-Access-Control-Allow-Origin"},
		},
		{name: "empty", in: http.Header{}, want: nil},
		{name: "nil", in: nil, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			StripCORSHeaders(tt.in)
			if got, want := len(tt.in), len(tt.want); got != want {
				t.Errorf("keys left: got %d (%v), want %d (%v)", got, tt.in, want, tt.want)
			}
			for _, k := range tt.want {
				if _, ok := tt.in[k]; !ok {
					t.Errorf("key %q: got deleted, want kept", k)
				}
			}
		})
	}
}

func BenchmarkCORS(b *testing.B) {
	h := CORS(CORSConfig{AllowOrigins: []string{appOrigin}, AllowHeaders: []string{"Content-Type"}})(
		func(c echo.Context) error { return nil })
	e := echo.New()
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Origin", appOrigin)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		_ = h(e.NewContext(req, rec))
	}
}
