package middleware

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"

	"github.com/labstack/echo/v4"
)

// RecoverConfig configures [Recover].
type RecoverConfig struct {
	// Logger receives one Error record per recovered panic.
	// Default (nil): slog.Default().
	Logger *slog.Logger
}

func (c RecoverConfig) withDefaults() RecoverConfig {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Recover returns middleware that turns a panic in the next handler into
// echo.NewHTTPError(500, "internal error"), which echo's HTTPErrorHandler
// renders, and logs it at Error with the message "panic recovered" and the
// attributes panic (the value, formatted), stack, method, path and
// request_id.
//
// http.ErrAbortHandler is re-panicked unchanged and not logged: net/http uses
// it to abort a response silently (httputil.ReverseProxy panics with it when
// a streamed copy fails), and the server must see it to close the connection.
//
// Security: the panic value and stack are logged, never sent to the client.
// They are foreign text and go in attributes only; the gateway's log handler
// masks secrets in them.
func Recover(cfg RecoverConfig) echo.MiddlewareFunc {
	cfg = cfg.withDefaults()
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) (err error) {
			defer func() {
				v := recover()
				if v == nil {
					return
				}
				if e, ok := v.(error); ok && errors.Is(e, http.ErrAbortHandler) {
					panic(v)
				}
				req := c.Request()
				cfg.Logger.LogAttrs(req.Context(), slog.LevelError, "panic recovered",
					slog.String("panic", fmt.Sprint(v)),
					slog.String("stack", string(debug.Stack())),
					slog.String("method", req.Method),
					slog.String("path", req.URL.Path),
					slog.String("request_id", RequestIDFrom(c)),
				)
				err = echo.NewHTTPError(http.StatusInternalServerError, "internal error")
			}()
			return next(c)
		}
	}
}
