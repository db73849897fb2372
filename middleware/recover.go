package middleware

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"
	echomw "github.com/labstack/echo/v4/middleware"
)

// recoverStackSize bounds the stack logged for a panic: the panicking
// goroutine's only, cut at 64 KiB (echo's default, 4 KiB, cuts deep stacks
// short). The buffer is allocated only when a panic is recovered.
const recoverStackSize = 64 << 10

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

// Recover returns echo's Recover middleware, configured to turn a panic in
// the next handler into echo.NewHTTPError(500, "internal error"), returned
// to the caller for echo's HTTPErrorHandler to render, and to log it through
// cfg.Logger at Error with the message "panic recovered" and the attributes
// panic (the value, formatted), stack, method, path and request_id.
//
// http.ErrAbortHandler, also wrapped, is re-panicked unchanged and not
// logged: net/http uses it to abort a response silently
// (httputil.ReverseProxy panics with it when a streamed copy fails), and the
// server must see it to close the connection. echo re-panics the sentinel
// itself; the wrapped form is re-panicked here.
//
// Security: the panic value and stack are logged, never sent to the client.
// They are foreign text and go in attributes only; the gateway's log handler
// masks secrets in them.
func Recover(cfg RecoverConfig) echo.MiddlewareFunc {
	cfg = cfg.withDefaults()
	return echomw.RecoverWithConfig(echomw.RecoverConfig{
		StackSize:       recoverStackSize,
		DisableStackAll: true,
		// Return the error instead of rendering it here: the access log (outside) renders
		// errors itself, so that it logs the status the client received.
		DisableErrorHandler: true,
		// err is the panic value itself when that is an error, else fmt.Errorf("%v", value).
		LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
			if errors.Is(err, http.ErrAbortHandler) {
				panic(err)
			}
			req := c.Request()
			cfg.Logger.LogAttrs(req.Context(), slog.LevelError, "panic recovered",
				slog.String("panic", err.Error()),
				slog.String("stack", string(stack)),
				slog.String("method", req.Method),
				slog.String("path", req.URL.Path),
				slog.String("request_id", RequestIDFrom(c)),
			)
			return echo.NewHTTPError(http.StatusInternalServerError, "internal error")
		},
	})
}
