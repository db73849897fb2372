package middleware

import (
	"crypto/rand"
	"encoding/hex"

	"github.com/labstack/echo/v4"
	echomw "github.com/labstack/echo/v4/middleware"
)

// HeaderRequestID is the header that carries the request ID, in canonical
// form, on both the request (towards the upstream) and the response.
const HeaderRequestID = "X-Request-Id"

// maxRequestIDLen is the longest incoming request ID that is kept.
const maxRequestIDLen = 128

// RequestIDConfig configures [RequestID].
type RequestIDConfig struct {
	// Generator returns a new request ID. It is called for every request
	// without a valid incoming ID and must be safe for concurrent use.
	// Its result is used as-is, without validation.
	// Default (nil): 16 random bytes from crypto/rand, hex encoded
	// (32 lowercase hex characters).
	Generator func() string
}

func (c RequestIDConfig) withDefaults() RequestIDConfig {
	if c.Generator == nil {
		c.Generator = newRequestID
	}
	return c
}

// RequestID returns middleware that gives every request an ID: echo's
// RequestID middleware, with [RequestIDConfig.Generator] as its generator and
// a handler hook that refuses unsafe incoming IDs and copies the ID onto the
// request.
//
// An incoming X-Request-ID header is kept when it is 1 to 128 characters
// from [A-Za-z0-9._:+=/-]; otherwise a new ID is generated. The ID is set on
// the request header (so it is forwarded upstream) and on the response
// header, where [RequestIDFrom] reads it.
//
// Security: the incoming ID is client-controlled. The character set excludes
// spaces, quotes and control characters so that a kept ID cannot forge log
// lines or inject into JSON or headers; it is still not unique, so never use
// it for anything but correlation. (echo's middleware alone passes any
// incoming ID through.)
func RequestID(cfg RequestIDConfig) echo.MiddlewareFunc {
	cfg = cfg.withDefaults()
	return echomw.RequestIDWithConfig(echomw.RequestIDConfig{
		Generator:    cfg.Generator,
		TargetHeader: HeaderRequestID,
		// Runs after echo set the response header to the first incoming value, or to a
		// generated ID when there was none (used as-is: Generator's results are not checked).
		RequestIDHandler: func(c echo.Context, id string) {
			req, h := c.Request(), c.Response().Header()
			if id != "" && id == req.Header.Get(HeaderRequestID) && !validRequestID(id) {
				h[HeaderRequestID] = []string{cfg.Generator()}
			}
			// The response's single-value slice, capped so that an Add on either header
			// copies it instead of writing into the other's, is shared with the request header
			// (sent upstream): no second slice per request.
			req.Header[HeaderRequestID] = h[HeaderRequestID][:1:1]
		},
	})
}

// RequestIDFrom returns the request ID that [RequestID] set on c's response,
// or "" when the middleware did not run.
func RequestIDFrom(c echo.Context) string {
	return c.Response().Header().Get(HeaderRequestID)
}

// validRequestID reports whether an incoming ID may be kept.
func validRequestID(id string) bool {
	if len(id) == 0 || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		b := id[i]
		switch {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		case b == '.', b == '_', b == ':', b == '+', b == '=', b == '/', b == '-':
		default:
			return false
		}
	}
	return true
}

// newRequestID returns 16 random bytes, hex encoded.
func newRequestID() string {
	var raw [16]byte
	// crypto/rand.Read never returns an error (Go 1.24+); on a broken
	// system random source it crashes the program irrecoverably instead.
	_, _ = rand.Read(raw[:])
	var buf [32]byte
	hex.Encode(buf[:], raw[:])
	return string(buf[:])
}
