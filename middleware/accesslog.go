package middleware

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// StatusClientClosedRequest is the status logged for requests whose client
// went away before the answer was complete (nginx's convention). It is never
// sent to a client.
const StatusClientClosedRequest = 499

// AccessLogConfig configures [AccessLog].
type AccessLogConfig struct {
	// Logger receives one record per request, logged with the request's
	// context, which is already canceled when the client went away; its
	// handler must not drop records because of that.
	// Default (nil): slog.Default().
	Logger *slog.Logger

	// Attrs, when set, returns extra attributes appended to each record,
	// for example the upstream state. It is called after the handler has
	// finished, so it sees the state the request ended in. It must not
	// return secret values. The slice is only read, never kept or
	// changed, so it may be shared: returning precomputed slices keeps
	// the access log free of allocations.
	// Default (nil): no extra attributes.
	Attrs func(c echo.Context) []slog.Attr

	// Now returns the current time; tests set it to control durations.
	// Default (nil): time.Now.
	Now func() time.Time
}

func (cfg AccessLogConfig) withDefaults() AccessLogConfig {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return cfg
}

// accessLogMessage is the message of every record AccessLog writes.
const accessLogMessage = "request"

// IsAccessRecord reports whether r is one of AccessLog's records: a log writer
// that must drop lines under pressure drops these first (logging.Options.Droppable).
func IsAccessRecord(r slog.Record) bool { return r.Message == accessLogMessage }

// AccessLog returns middleware that logs one record per request with the
// message "request" and the attributes method, path, status, duration,
// bytes and request_id, followed by those from AccessLogConfig.Attrs.
//
// When the next handler returns an error, AccessLog passes it to echo's
// HTTPErrorHandler (c.Error) so the logged status is the one the client
// received, and returns nil. The status is 499 ([StatusClientClosedRequest])
// when the request context was canceled before the handler returned, that is
// when the client went away, also in the middle of a stream. A panic that
// reaches AccessLog (one that Recover re-panics, such as
// http.ErrAbortHandler, or any panic without Recover installed) is logged
// with the committed status, or 500 if nothing was sent yet, and then
// re-panicked unchanged.
//
// Records are logged at Info, at Warn for 5xx statuses other than 500 and
// 503 (503 is the expected answer while a backend warms up), and at Error
// for 500.
//
// Security: only URL.Path is logged, never the query string (it may carry
// tokens), and no header, Authorization or Cookie value is ever logged.
// Bytes are the response body bytes written through echo's Response, not
// counting hijacked connections.
func AccessLog(cfg AccessLogConfig) echo.MiddlewareFunc {
	cfg = cfg.withDefaults()
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			// Captured up front: handlers may replace the request.
			method, path, ctx := req.Method, req.URL.Path, req.Context()
			start := cfg.Now()

			panicking := true
			defer func() {
				if !panicking {
					return
				}
				v := recover()
				status := http.StatusInternalServerError
				if c.Response().Committed {
					status = c.Response().Status
				}
				cfg.log(ctx, c, method, path, status, start)
				if v == nil {
					// runtime.Goexit, not a panic: let it continue.
					return
				}
				panic(v)
			}()

			if err := next(c); err != nil {
				c.Error(err)
			}
			panicking = false
			cfg.log(ctx, c, method, path, c.Response().Status, start)
			return nil
		}
	}
}

// log writes the access record. ctx is the request's context; it is done
// when the client went away, and the record is written with it regardless.
func (cfg AccessLogConfig) log(ctx context.Context, c echo.Context, method, path string, status int, start time.Time) {
	// net/http cancels the context on any failed read of the connection, also when a body
	// read deadline expired: that client got its 408 and did not leave.
	if errors.Is(ctx.Err(), context.Canceled) && status != http.StatusRequestTimeout {
		status = StatusClientClosedRequest
	}
	level := slog.LevelInfo
	switch {
	case status == http.StatusInternalServerError:
		level = slog.LevelError
	case status == http.StatusServiceUnavailable:
		// Expected while a backend warms up, and answered with Retry-After: clients poll
		// through it, and a warning per poll would bury the lines that matter.
	case status >= 500:
		level = slog.LevelWarn
	}
	if !cfg.Logger.Enabled(ctx, level) {
		return
	}
	// On the stack: a slice passed to a func value (Attrs) would escape, so the extra
	// attributes are copied in rather than appended by Attrs.
	var buf [10]slog.Attr
	attrs := append(buf[:0],
		slog.String("method", method),
		slog.String("path", path),
		slog.Int("status", status),
		slog.Duration("duration", cfg.Now().Sub(start)),
		slog.Int64("bytes", c.Response().Size),
		slog.String("request_id", RequestIDFrom(c)),
	)
	if cfg.Attrs != nil {
		if extra := cfg.Attrs(c); len(attrs)+len(extra) <= len(buf) {
			attrs = buf[:len(attrs)+copy(buf[len(attrs):], extra)]
		} else {
			attrs = append(attrs[:len(attrs):len(attrs)], extra...)
		}
	}
	cfg.Logger.LogAttrs(ctx, level, accessLogMessage, attrs...)
}
