package gateway

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/hfgate/hfgate/gateway/clientip"
	"github.com/hfgate/hfgate/gateway/gate"
	"github.com/hfgate/hfgate/gateway/health"
	"github.com/hfgate/hfgate/middleware"
	"github.com/labstack/echo/v4"
)

// ServeHTTP is where every request enters: the connection-level rule of requests.go (a chunked
// request ends its connection), then echo, whose middleware and routes routes() builds.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if len(r.TransferEncoding) > 0 {
		w.Header().Set("Connection", "close")
	}
	// The request's record, as its context: the client is resolved and the hold deadline
	// starts here, once, for everything below (see flight).
	client := clientip.Resolve(r.RemoteAddr, r.Header["X-Forwarded-For"], g.cfg.TrustedProxies)
	now := g.now()
	f := newFlight(r.Context(), client, now, g.admission.deadline(now))
	g.echo.ServeHTTP(w, r.WithContext(f.withTrace()))
}

// routes builds the echo instance: middleware in order, then every path to forward.
func (g *Gateway) routes() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = g.handleEchoError
	if g.metrics != nil {
		// Outermost, to see every request whole; absent (not a no-op) when metrics are off.
		e.Use(g.metrics.middleware)
	}
	e.Use(
		middleware.RequestID(middleware.RequestIDConfig{}),
		middleware.AccessLog(middleware.AccessLogConfig{
			Logger: g.logger,
			Attrs:  g.accessAttrs(),
			Now:    g.now,
		}),
		middleware.Recover(middleware.RecoverConfig{Logger: g.logger}),
	)
	if len(g.cfg.CORSAllowOrigins) > 0 {
		// Only when origins are configured: with none, no CORS header may appear at all.
		e.Use(middleware.CORS(middleware.CORSConfig{
			AllowOrigins:     g.cfg.CORSAllowOrigins,
			AllowCredentials: g.cfg.CORSAllowCredentials,
			AllowHeaders:     g.cfg.CORSAllowHeaders,
			MaxAge:           g.cfg.CORSMaxAge,
		}))
	}
	e.Use(middleware.BodyLimit(middleware.BodyLimitConfig{Limit: g.cfg.MaxBodyBytes}))
	e.Use(middleware.BodyBuffer(middleware.BodyBufferConfig{Limit: g.cfg.BufferBodyBytes, Timeout: g.cfg.BodyReadTimeout}))

	// Every path goes to forward, which recognises the gateway's own routes on the decoded path
	// (echo routes on the escaped one, where "/%72eady" is not "/ready").
	e.Any("/*", g.forward)
	e.RouteNotFound("/*", g.forward)
	return e
}

// forward proxies a request when the upstream is ready and otherwise gives the not-ready answer
// (or, for GET/HEAD "/", the status page). Requests that break the rules in requests.go are
// answered here and never forwarded.
func (g *Gateway) forward(c echo.Context) error {
	r := c.Request()
	if err := checkRequest(r); err != nil {
		return err
	}
	if p := r.URL.Path; p == "/ready" || p == "/healthz" {
		return g.serveOwn(c, p) // the one place the gateway's own routes are recognised
	}
	if !g.readiness.IsReady() && r.URL.Path == "/" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		g.answers.writeStatusPage(c.Response(), r)
		return nil
	}
	f := flightFrom(r.Context())
	f.wantsStream = wantsStream(r)
	if !g.admit(c, f) {
		return nil
	}
	defer f.done()
	w := &proxyWriter{resp: c.Response(), conns: g.conns, websocket: isWebSocket(r)}
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler || w.pending == 0 {
				panic(v)
			}
			// ReverseProxy aborts when the upstream's body breaks. Nothing of this answer has
			// reached the client yet (the status is still held), so it gets the not-ready
			// answer instead of a cut connection.
			g.answerCutBeforeBody(c, w)
		}
	}()
	g.proxy.rp.ServeHTTP(w, r)
	w.commit()
	return nil
}

// admit takes the request through the line in front of the upstream (admission) and reports
// whether it may go on. Otherwise it has been answered: busy (503 with the line's Retry-After),
// not ready (503 with the start-up's), or nothing at all for a client that left (logged as 499).
func (g *Gateway) admit(c echo.Context, f *flight) bool {
	err := g.admission.acquire(f, false)
	if err == nil {
		return true
	}
	var ref *gate.Refusal
	switch {
	case !errors.As(err, &ref):
		g.answers.writeNotReady(c.Response(), c.Request(), middleware.RequestIDFrom(c))
	case ref.Outcome == gate.Gone:
	case ref.Overload:
		g.answers.writeBusy(c.Response(), c.Request(), middleware.RequestIDFrom(c), ref)
	default:
		g.answers.writeNotReady(c.Response(), c.Request(), middleware.RequestIDFrom(c))
	}
	return false
}

// answerCutBeforeBody replaces an upstream answer whose body broke before its first byte with
// the not-ready 503: the upstream's headers are dropped, the gateway's own (request ID, CORS)
// kept.
func (g *Gateway) answerCutBeforeBody(c echo.Context, w *proxyWriter) {
	w.pending = 0
	h := c.Response().Header()
	for k := range h {
		if k != middleware.HeaderRequestID && k != "Vary" && !strings.HasPrefix(k, "Access-Control-") {
			delete(h, k)
		}
	}
	reqID := middleware.RequestIDFrom(c)
	g.logger.Warn("upstream answer broke before its body; answered 503", "request_id", reqID)
	g.readiness.Poke()
	g.answers.writeNotReady(c.Response(), c.Request(), reqID)
}

func isWebSocket(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

// handleEchoError renders errors returned by middleware and handlers in the fixed JSON shape.
func (g *Gateway) handleEchoError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	code, msg := http.StatusInternalServerError, "internal error"
	var he *echo.HTTPError
	if errors.As(err, &he) {
		code = he.Code
		if s, ok := he.Message.(string); ok && code < 500 {
			msg = s
		} else {
			msg = strings.ToLower(http.StatusText(code))
		}
	}
	g.answers.writeError(c.Response(), c.Request(), code, msg, middleware.RequestIDFrom(c))
}

// accessAttrs returns the access log's attributes after its own: the upstream's state, how long
// the request waited in line (queued) and whether it was replayed, and the client (unless LOG_CLIENT_ADDR is
// false), all read from the request's flight.
func (g *Gateway) accessAttrs() func(c echo.Context) []slog.Attr {
	// The common case, shared by every record (AccessLogConfig.Attrs slices are only read).
	readyAttr := []slog.Attr{slog.String("upstream", string(health.Ready))}
	return func(c echo.Context) []slog.Attr {
		f := flightFrom(c.Request().Context())
		held := f != nil && (f.queued > 0 || f.replayed)
		client := ""
		if g.cfg.LogClientAddr && f != nil {
			client = f.client.Text // the client the upstream is told of
		}
		upstream := readyAttr[0]
		if !g.readiness.IsReady() {
			upstream = slog.String("upstream", string(g.readiness.State()))
		} else if !held && client == "" {
			return readyAttr // no lock, no allocation
		}
		attrs := append(make([]slog.Attr, 0, 4), upstream)
		if held {
			attrs = append(attrs, slog.Duration("queued", f.queued), slog.Bool("replayed", f.replayed))
		}
		if client != "" {
			attrs = append(attrs, slog.String("client", client))
		}
		return attrs
	}
}

// serveOwn answers one of the gateway's own routes (/ready, /healthz), whatever the upstream's
// state: GET and HEAD get the answer, other methods 405 (a POST /ready must not reach the
// upstream, nor get a 503 that reads like "not ready").
func (g *Gateway) serveOwn(c echo.Context, path string) error {
	if m := c.Request().Method; m != http.MethodGet && m != http.MethodHead {
		c.Response().Header().Set("Allow", "GET, HEAD")
		return echo.NewHTTPError(http.StatusMethodNotAllowed, "method not allowed")
	}
	if path == "/ready" {
		g.answers.writeReady(c.Response(), c.Request())
	} else {
		g.answers.writeHealthz(c.Response(), c.Request())
	}
	return nil
}
