package middleware

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
)

// FuzzCORSOrigin: for any Origin header, an allowed origin (matched exactly, byte for byte) gets
// exactly itself back in Access-Control-Allow-Origin, and any other origin gets no
// Access-Control-* header at all; "*" never comes with credentials.
//
//	go test -run '^$' -fuzz '^FuzzCORSOrigin$' -fuzztime 10s ./middleware
func FuzzCORSOrigin(f *testing.F) {
	for _, o := range []string{
		"https://app.example", "https://app.example.evil.com", "https://evil.com/https://app.example",
		"https://APP.example", "https://app.example:443", "https://app.example/", " https://app.example",
		"https://app.example\x00", "null", "", "http://localhost:5173", "http://localhost:51730", "*",
	} {
		f.Add(o, false, false)
		f.Add(o, true, true)
	}
	allowed := []string{"https://app.example", "http://localhost:5173"}
	f.Fuzz(func(t *testing.T, origin string, preflight, credentials bool) {
		e := echo.New()
		e.Use(CORS(CORSConfig{AllowOrigins: allowed, AllowCredentials: credentials}))
		e.Any("/*", func(c echo.Context) error { return c.NoContent(http.StatusOK) })
		req := httptest.NewRequest(http.MethodGet, "/x", nil)
		if preflight {
			req.Method = http.MethodOptions
			req.Header["Access-Control-Request-Method"] = []string{"POST"}
		}
		// Set directly, so that bytes http.Header.Set would refuse reach the middleware too.
		req.Header["Origin"] = []string{origin}
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)

		acao := rec.Header().Values("Access-Control-Allow-Origin")
		if slices.Contains(allowed, origin) {
			if len(acao) != 1 || acao[0] != origin {
				t.Errorf("allowed origin %q: Access-Control-Allow-Origin %q, want exactly it", origin, acao)
			}
			if got := rec.Header().Get("Access-Control-Allow-Credentials"); (got == "true") != credentials {
				t.Errorf("Access-Control-Allow-Credentials %q with credentials=%v", got, credentials)
			}
			return
		}
		for k, v := range rec.Header() {
			if strings.HasPrefix(k, "Access-Control-") {
				t.Errorf("origin %q not allowed, yet %s: %q", origin, k, v)
			}
		}
	})
}

var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:+=/-]{1,128}$`)

// FuzzRequestID: an incoming X-Request-ID is kept exactly when it matches the documented
// pattern; whatever comes in, the ID used is one that matches it, set once on the request
// (towards the upstream) and once on the response.
//
//	go test -run '^$' -fuzz '^FuzzRequestID$' -fuzztime 10s ./middleware
func FuzzRequestID(f *testing.F) {
	for _, id := range []string{"", "abc-123", "a b", "x\r\nSet-Cookie: y=1", strings.Repeat("a", 128), strings.Repeat("a", 129),
		"\x1b[31mred", `"quoted"`, "ü", "a/b+c=d:e.f_g"} {
		f.Add(id, false)
		f.Add(id, true)
	}
	f.Fuzz(func(t *testing.T, id string, twice bool) {
		e := echo.New()
		e.Use(RequestID(RequestIDConfig{}))
		var upstreamSaw []string
		e.Any("/*", func(c echo.Context) error {
			upstreamSaw = c.Request().Header.Values(HeaderRequestID)
			return c.NoContent(http.StatusOK)
		})
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header[HeaderRequestID] = []string{id}
		if twice {
			req.Header[HeaderRequestID] = append(req.Header[HeaderRequestID], "second")
		}
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)

		got := rec.Header().Values(HeaderRequestID)
		if len(got) != 1 || !requestIDPattern.MatchString(got[0]) {
			t.Fatalf("response X-Request-ID %q, want one value matching %s", got, requestIDPattern)
		}
		if keep := requestIDPattern.MatchString(id); keep != (got[0] == id) {
			t.Errorf("incoming %q: got %q, want it kept exactly when it matches the pattern (%v)", id, got[0], keep)
		}
		if len(upstreamSaw) != 1 || upstreamSaw[0] != got[0] {
			t.Errorf("request header %q, want exactly the response's %q", upstreamSaw, got[0])
		}
	})
}
