package middleware

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/labstack/echo/v4"
)

// DefaultBufferBodyBytes is the largest body BodyBuffer reads whole when
// BodyBufferConfig.Limit is not positive: 64 KiB, more than any chat message.
const DefaultBufferBodyBytes int64 = 64 << 10

// DefaultBodyReadTimeout is the time a body read whole may take when
// BodyBufferConfig.Timeout is not positive.
const DefaultBodyReadTimeout = 30 * time.Second

// BodyBufferConfig configures [BodyBuffer].
type BodyBufferConfig struct {
	// Limit is the largest request body, in bytes, that is read whole
	// before the next handler runs; larger bodies stream.
	// Default (0 or negative): DefaultBufferBodyBytes (64 KiB).
	//
	// Security: each request being read holds up to Limit bytes, so memory
	// is bounded by Limit times the number of bodies arriving at once.
	Limit int64

	// Timeout bounds the whole read of a body read whole, from its start;
	// a body that has not arrived by then is answered 408.
	// Default (0 or negative): DefaultBodyReadTimeout (30s).
	//
	// It is a read deadline on the connection, so it runs on the real clock
	// (there is no clock to inject).
	//
	// Security: without it a client sending a byte now and then holds its
	// request, and its buffer, for as long as it likes.
	Timeout time.Duration
}

func (cfg BodyBufferConfig) withDefaults() BodyBufferConfig {
	if cfg.Limit <= 0 {
		cfg.Limit = DefaultBufferBodyBytes
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultBodyReadTimeout
	}
	return cfg
}

// BodyBuffer returns middleware that reads small request bodies whole before
// the next handler runs, as nginx's proxy_request_buffering does. Two things
// follow: a request whose upstream attempt failed before any of it was sent
// can be sent again, body and all (its body is in memory), and a client that
// sends its body slowly ties up a goroutine and at most Limit bytes here, not
// a connection to the upstream: with 500 clients sending a small body byte by
// byte (slowhttptest -B), the gateway had kept 501 upstream connections open.
// Go's Transport has no such option and echo's middleware none either, hence
// this one.
//
// A request with a body of at most cfg.Limit bytes (a Content-Length that
// small, or a chunked body that ends within cfg.Limit) reaches the next
// handler with
//
//   - Body: an io.NopCloser around a *bytes.Reader, a reader that
//     http.Transport knows does not block, so it sends the headers and the
//     body in one write (httputil.ReverseProxy wraps Body, which hides
//     that; a reader from GetBody handed to Transport keeps it);
//   - GetBody: a fresh reader of the same bytes, for Transport's own retry
//     and for a replay;
//   - ContentLength: the body's length, and TransferEncoding nil, so that a
//     chunked body that turned out small goes on with a Content-Length;
//   - no Expect header: a 100-continue expectation was met by this hop.
//
// The whole body must arrive within cfg.Timeout of the start of the read
// (a read deadline on the connection, cleared afterwards); else the request
// is answered echo.NewHTTPError(408) with Connection: close, since the rest
// of the body is unread. Where the response writer offers no read deadline
// (httptest.ResponseRecorder, a wrapper without Unwrap), the body is still
// read whole, without the time bound.
//
// Left alone: requests without a body; a Content-Length above cfg.Limit (the
// body streams, unread); and a chunked body longer than cfg.Limit, which
// streams as the cfg.Limit+1 bytes read so far followed by the rest, with no
// GetBody. The deadline covers only those first bytes.
//
// When the read fails the next handler does not run. A body over
// BodyLimit's limit (BodyLimit must run before this) is answered
// echo.NewHTTPError(413), as BodyLimit does; any other failure gets 400 with
// Connection: close: a malformed chunk, or a client that went away mid-body,
// which sees no answer (net/http cancels the request context, so the access
// log shows 499).
//
// Memory: at most cfg.Limit bytes per request being read (cfg.Limit+1 for a
// chunked body, which needs one byte more to tell that it is longer). A
// known length allocates exactly that many bytes; a chunked body grows its
// buffer by doubling, from 512 bytes.
func BodyBuffer(cfg BodyBufferConfig) echo.MiddlewareFunc {
	cfg = cfg.withDefaults()
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			if req.Body == nil || req.Body == http.NoBody || req.ContentLength == 0 || req.ContentLength > cfg.Limit {
				return next(c)
			}
			if err := cfg.read(c, req); err != nil {
				return err
			}
			return next(c)
		}
	}
}

// read reads req's body within the timeout and replaces it in req, or
// returns the error to answer with.
func (cfg BodyBufferConfig) read(c echo.Context, req *http.Request) error {
	rc := http.NewResponseController(c.Response())
	// ErrNotSupported: no deadline to set (or clear); read without one.
	deadline := rc.SetReadDeadline(time.Now().Add(cfg.Timeout)) == nil
	var (
		buf   []byte
		whole bool
		err   error
	)
	if req.ContentLength > 0 {
		buf = make([]byte, req.ContentLength)
		_, err = io.ReadFull(req.Body, buf)
		whole = true
	} else {
		buf, whole, err = readUpTo(req.Body, cfg.Limit)
	}
	if err != nil {
		return readError(c, err)
	}
	if deadline {
		// net/http lifts it itself once a body ends, but not for the rest of a long one.
		_ = rc.SetReadDeadline(time.Time{})
	}
	if !whole {
		// Too long to hold: the rest streams behind what was read.
		req.Body = streamedBody{Reader: io.MultiReader(bytes.NewReader(buf), req.Body), Closer: req.Body}
		return nil
	}
	req.ContentLength = int64(len(buf))
	req.TransferEncoding = nil
	// The client's 100-continue was answered when the body was read (net/http sends it on the
	// first read); forwarded, it would only hold the body back for the upstream's own.
	req.Header.Del("Expect")
	if len(buf) == 0 {
		// An empty chunked body: what net/http uses for no body.
		req.Body = http.NoBody
		req.GetBody = func() (io.ReadCloser, error) { return http.NoBody, nil }
		return nil
	}
	req.Body = io.NopCloser(bytes.NewReader(buf))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf)), nil }
	return nil
}

// readUpTo reads r until it ends or more than limit bytes were read, and
// reports whether it ended. The buffer starts at 512 bytes and doubles, up
// to limit+1.
func readUpTo(r io.Reader, limit int64) (buf []byte, ended bool, err error) {
	buf = make([]byte, 0, min(512, limit+1))
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) > limit {
				return buf, false, nil
			}
			grown := make([]byte, len(buf), min(2*int64(cap(buf)), limit+1))
			copy(grown, buf)
			buf = grown
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, true, nil
		}
		if err != nil {
			return buf, false, err
		}
	}
}

// readError maps a failed body read to the answer. The read deadline is
// left as it is: the connection closes after the answer, and a late read of
// the rest must not wait.
func readError(c echo.Context, err error) error {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		// net/http closes the connection itself after this answer.
		return echo.NewHTTPError(http.StatusRequestEntityTooLarge, "request body too large")
	}
	c.Response().Header().Set("Connection", "close")
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return echo.NewHTTPError(http.StatusRequestTimeout, "the request body did not arrive in time")
	}
	return echo.NewHTTPError(http.StatusBadRequest, "the request body could not be read")
}

// streamedBody is a body of which the first bytes were read ahead: Reader
// gives them and then the rest; Close closes the original body.
type streamedBody struct {
	io.Reader
	io.Closer
}
