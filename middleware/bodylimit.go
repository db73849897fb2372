package middleware

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// DefaultBodyLimit is the request body limit used when
// BodyLimitConfig.Limit is not positive: 10 MiB.
const DefaultBodyLimit int64 = 10 << 20

// BodyLimitConfig configures [BodyLimit].
type BodyLimitConfig struct {
	// Limit is the largest request body, in bytes, that is accepted.
	// Default (0 or negative): DefaultBodyLimit (10 MiB).
	//
	// Security: without a limit a client can stream an endless body
	// through the gateway into the upstream.
	Limit int64
}

func (c BodyLimitConfig) withDefaults() BodyLimitConfig {
	if c.Limit <= 0 {
		c.Limit = DefaultBodyLimit
	}
	return c
}

// BodyLimit returns middleware that limits request bodies to cfg.Limit
// bytes.
//
// A request whose Content-Length exceeds the limit is refused with
// echo.NewHTTPError(413, "request body too large") before its body is read.
// Otherwise, including chunked bodies of unknown length, the body is wrapped
// in http.MaxBytesReader: reading past the limit fails with
// *http.MaxBytesError, which the caller (the proxy's error handler) maps to
// 413, and the server closes the connection after the answer.
func BodyLimit(cfg BodyLimitConfig) echo.MiddlewareFunc {
	cfg = cfg.withDefaults()
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			if req.ContentLength > cfg.Limit {
				return echo.NewHTTPError(http.StatusRequestEntityTooLarge, "request body too large")
			}
			if req.Body != nil && req.Body != http.NoBody {
				// The underlying writer, not echo's Response, lets
				// MaxBytesReader tell net/http to close the connection
				// instead of reading the rest of an oversized body.
				req.Body = http.MaxBytesReader(c.Response().Writer, req.Body, cfg.Limit)
			}
			return next(c)
		}
	}
}
