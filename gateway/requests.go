package gateway

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// Request-shape rules the gateway applies before anything is forwarded. Each is a cheap check
// on fields net/http has already parsed; none allocates on the normal path.
//
//   - A request with a chunked body ends its connection (Connection: close on the answer).
//     Go's server accepts Content-Length together with Transfer-Encoding: chunked by dropping
//     the Content-Length (RFC 9112 section 6.3), but keeps the connection open, so bytes that a
//     front proxy counted as this request's body could be read here as a second, smuggled
//     request. RFC 9112 section 6.1 requires closing the connection after such a request; the
//     Content-Length is gone by the time a handler runs, so every chunked request is treated
//     alike. Browsers do not send chunked request bodies, so this costs them nothing.
//   - CONNECT and TRACE get 405: the gateway is no tunnel, and TRACE would echo the client's
//     cookies back to a script. (CONNECT in authority form, "CONNECT host:443", has no path and
//     gets echo's 404 before routing; it is never forwarded either.)
//   - A path with a dot segment ("/a/../b", "/a/./b", also percent-encoded as %2e) gets 400.
//     Clients remove dot segments before sending, so only hand-made requests carry them, and
//     the gateway and a backend could disagree on what such a path names.
//   - /ready and /healthz are the gateway's whatever their spelling ("/%72eady" too): forward
//     recognises them on the decoded path, in one place (echo routes on the escaped one).

// checkRequest applies the method and path rules to a request on its way to forward; it
// returns the error to answer with, or nil.
func checkRequest(r *http.Request) error {
	switch r.Method {
	case http.MethodConnect, http.MethodTrace:
		return echo.NewHTTPError(http.StatusMethodNotAllowed, "method not allowed")
	}
	if hasDotSegment(r.URL.Path) {
		return echo.NewHTTPError(http.StatusBadRequest, "the path must not contain . or .. segments")
	}
	return nil
}

// hasDotSegment reports whether the decoded path p has a "." or ".." segment.
func hasDotSegment(p string) bool {
	for {
		i := strings.Index(p, "/.")
		if i < 0 {
			return false
		}
		p = p[i+2:]
		if p == "" || p[0] == '/' {
			return true // "/."
		}
		if p[0] == '.' && (len(p) == 1 || p[1] == '/') {
			return true // "/.."
		}
	}
}
