// Package middleware holds the echo middleware that hfgate installs in front
// of every route: request IDs, the access log, panic recovery, CORS and the
// request body limit.
//
// The package knows nothing about the upstream. Each middleware lives in its
// own file with its own Config struct whose zero value is documented and
// usable. Constructors never panic and never fail: invalid or missing
// settings fall back to the documented defaults.
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
