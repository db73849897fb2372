// Package middleware holds the echo middleware that hfgate installs in front
// of every route: request IDs, the access log, panic recovery, CORS, the
// request body limit and reading small bodies whole.
//
// Where echo's own middleware (github.com/labstack/echo/v4/middleware) gives
// the behaviour the tests ask for, configured, it is used; where it does not,
// the middleware is ours, and the line below says why:
//
//   - requestid.go: echo's RequestIDWithConfig, with our generator (32 hex
//     characters from crypto/rand) and a RequestIDHandler that refuses unsafe
//     incoming IDs (echo passes any through) and shares the ID with the
//     request header (sent upstream).
//   - recover.go: echo's RecoverWithConfig, logging through slog in its
//     LogErrorFunc, which also re-panics a wrapped http.ErrAbortHandler (echo
//     re-panics only the sentinel itself).
//   - accesslog.go: ours: echo's RequestLoggerWithConfig logs nothing for a
//     request that panics (a stream cut by http.ErrAbortHandler included) and
//     takes no injected clock.
//   - cors.go: ours: echo's CORSWithConfig answers every OPTIONS itself (the
//     upstream never sees one), allows any requested header by default and
//     matches origins by wildcard, not exactly.
//   - bodylimit.go: ours: echo's BodyLimitWithConfig fails reads with its own
//     error, not *http.MaxBytesError, keeps the connection after an oversized
//     body, and recycles its reader while http.Transport may still read it.
//
// The package knows nothing about the upstream. Each middleware lives in its
// own file with its own Config struct whose zero value is documented and
// usable, also where echo's middleware does the work. Constructors never
// panic and never fail: invalid or missing settings fall back to the
// documented defaults.
//
// The intended order, outermost first, is
//
//	e.Use(
//		middleware.RequestID(middleware.RequestIDConfig{}),
//		middleware.AccessLog(middleware.AccessLogConfig{Logger: logger}),
//		middleware.Recover(middleware.RecoverConfig{Logger: logger}),
//		middleware.CORS(middleware.CORSConfig{AllowOrigins: origins}),
//		middleware.BodyLimit(middleware.BodyLimitConfig{Limit: limit}),
//		middleware.BodyBuffer(middleware.BodyBufferConfig{Limit: small, Timeout: timeout}),
//	)
//
// RequestID comes first so that every later middleware and every error
// answer can name the request. AccessLog wraps Recover so that requests that
// panicked are logged with the status the client saw. AccessLog hands errors
// returned by inner middleware and handlers to echo's HTTPErrorHandler itself
// (as echo's own logger does), so the error answer is rendered inside it;
// CORS runs inside AccessLog but sets its headers before calling the next
// handler, so they are present on error answers as well.
//
// None of the middleware wraps the http.ResponseWriter: streaming
// (http.NewResponseController(c.Response()).Flush) and connection hijacking
// work unchanged through all of them.
package middleware
