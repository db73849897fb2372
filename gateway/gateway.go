package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/hfgate/hfgate/config"
	"github.com/hfgate/hfgate/gateway/supervise"
	"github.com/hfgate/hfgate/middleware"
	"github.com/labstack/echo/v4"
)

// Options are what New needs besides the configuration. Zero values are documented per field.
type Options struct {
	// Logger is the gateway's logger, normally from NewLogger. Required.
	Logger *slog.Logger
	// Environ is the environment handed to the supervised child ("KEY=value" entries).
	// Zero value: the child gets an empty environment plus PYTHONUNBUFFERED=1.
	Environ []string
	// Now is the clock. Zero value: time.Now.
	Now func() time.Time
	// DialContext dials the upstream. Zero value: a net.Dialer with a 5 s timeout.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// ProbeInterval is the health-check interval while not ready; while ready it is 25 times
	// longer, at least 5 s. Zero value: 200ms.
	ProbeInterval time.Duration
	// RemindEvery is how often a misconfiguration is logged again. Zero value: 1 minute.
	RemindEvery time.Duration
	// ProgressEvery is how often a "waiting for upstream" line is logged while the upstream is
	// not ready. Zero value: 5s.
	ProgressEvery time.Duration
}

// Gateway is hfgate: the HTTP server, the proxy, the readiness state machine, the prober and,
// when UPSTREAM_CMD is set, the supervisor of the upstream process.
type Gateway struct {
	cfg         config.Config
	logger      *slog.Logger
	now         func() time.Time
	readiness   *Readiness
	proxy       *proxy
	answers     *answers
	conns       *hijackedConns
	prober      *Prober
	hold        *holdQueue
	supervisor  *supervise.Supervisor // nil when UPSTREAM_CMD is not set
	remindEvery time.Duration
	metrics     *metrics // nil unless METRICS_ADDR is set
	echo        *echo.Echo
}

// New builds a gateway. It does no I/O: Serve starts everything.
func New(cfg config.Config, opts Options) (*Gateway, error) {
	if opts.Logger == nil {
		return nil, errors.New("gateway: Options.Logger is required")
	}
	if cfg.UpstreamURL == nil {
		return nil, errors.New("gateway: config has no upstream URL")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.RemindEvery <= 0 {
		opts.RemindEvery = time.Minute
	}
	g := &Gateway{
		cfg:         cfg,
		logger:      opts.Logger,
		now:         opts.Now,
		readiness:   NewReadiness(opts.Logger, opts.Now),
		conns:       newHijackedConns(),
		remindEvery: opts.RemindEvery,
	}
	if len(cfg.UpstreamCmd) > 0 {
		g.supervisor = &supervise.Supervisor{
			Args:        cfg.UpstreamCmd,
			Dir:         cfg.UpstreamDir,
			Env:         childEnv(opts.Environ),
			Logger:      opts.Logger,
			StopTimeout: cfg.UpstreamStopTimeout,
			MinBackoff:  min(500*time.Millisecond, cfg.UpstreamMaxBackoff),
			MaxBackoff:  cfg.UpstreamMaxBackoff,
			OnStart:     func(int) { g.readiness.MarkStarted() },
			OnExit: func(ev supervise.Exit) {
				// An exit with no next attempt is the one shutdown asked for.
				if !ev.NextAttempt.IsZero() {
					g.readiness.MarkCrashed()
				}
			},
		}
	}
	g.answers = &answers{
		readiness: g.readiness,
		startedAt: opts.Now(),
		now:       opts.Now,
		page:      newStatusPage(),
	}
	var nextStart func() time.Time
	if g.supervisor != nil {
		// A child that passed its health check started well: its next crash restarts it after
		// the shortest backoff (see supervise.Supervisor.Healthy).
		g.readiness.onReady = g.supervisor.Healthy
		g.answers.child = g.supervisor.Status
		nextStart = func() time.Time { return g.supervisor.Status().NextAttempt }
	}
	g.hold = newHoldQueue(g.readiness, cfg.HoldTimeout, cfg.HoldMax, nextStart, opts.Now)
	g.proxy = newProxy(proxyConfig{
		Target:        cfg.UpstreamURL,
		Trusted:       cfg.TrustedProxies,
		HeaderTimeout: cfg.UpstreamTimeout,
		DialContext:   opts.DialContext,
		Readiness:     g.readiness,
		Logger:        opts.Logger,
		Answers:       g.answers,
		HijackedConns: g.conns,
	})
	fast := opts.ProbeInterval
	if fast <= 0 {
		fast = 200 * time.Millisecond
	}
	g.prober = &Prober{
		URL:          cfg.UpstreamURL.JoinPath(cfg.UpstreamHealthPath).String(),
		Client:       &http.Client{Transport: g.proxy.rp.Transport, Timeout: 2 * time.Second},
		Readiness:    g.readiness,
		Logger:       opts.Logger,
		FastInterval: fast,
		SlowInterval: max(25*fast, 5*time.Second),
		// The readiness clock, so elapsed times agree with the state's Since.
		Now:           opts.Now,
		ProgressEvery: opts.ProgressEvery,
	}
	if cfg.MetricsAddr != "" {
		var child func() supervise.Status
		if g.supervisor != nil {
			child = g.supervisor.Status
		}
		g.metrics = newMetrics(g.readiness, child)
		g.metrics.watchHold(g.hold)
		g.hold.observe = g.metrics.observeHold
		// Wrapped after the prober took the transport: health checks are not upstream traffic.
		g.proxy.rp.Transport = &timedTransport{next: g.proxy.rp.Transport, ttfb: g.metrics.ttfb}
	}
	// Outermost, so that a replay's wait in the hold queue is not counted as upstream time.
	replay := &replayTransport{next: g.proxy.rp.Transport, hold: g.hold, readiness: g.readiness, logger: opts.Logger}
	if g.metrics != nil {
		replay.onReplay = g.metrics.replays.Inc
	}
	g.proxy.rp.Transport = replay
	g.echo = g.routes()
	return g, nil
}

// childEnv is the child's environment: the gateway's, plus PYTHONUNBUFFERED=1 unless set, so
// a Python backend's log lines arrive as they are written, and without the GODEBUG setting
// hfgate added for itself (SysmonSchedtrace): a Go backend must not inherit it.
func childEnv(environ []string) []string {
	env := make([]string, 0, len(environ)+1)
	unbuffered := false
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, "GODEBUG="); ok {
			v = strings.TrimSuffix(strings.TrimSuffix(v, SysmonSchedtrace), ",")
			if v == "" {
				continue
			}
			kv = "GODEBUG=" + v
		}
		unbuffered = unbuffered || strings.HasPrefix(kv, "PYTHONUNBUFFERED=")
		env = append(env, kv)
	}
	if !unbuffered {
		env = append(env, "PYTHONUNBUFFERED=1")
	}
	return env
}

// Handler returns the gateway's HTTP handler (for tests and embedding).
func (g *Gateway) Handler() http.Handler { return g }

// Readiness returns the gateway's state machine.
func (g *Gateway) Readiness() *Readiness { return g.readiness }

// routes builds the echo instance: middleware in order, the two routes the gateway owns, and
// everything else to the forwarding handler.
func (g *Gateway) routes() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = g.handleEchoError
	if g.metrics != nil {
		// Outermost, to see every request whole; absent (not a no-op) when metrics are off.
		e.Use(g.metrics.middleware)
	}
	// The access log's upstream attribute in the common case, shared by every record
	// (AccessLogConfig.Attrs slices are only read).
	readyAttr := []slog.Attr{slog.String("upstream", string(StateReady))}
	e.Use(
		middleware.RequestID(middleware.RequestIDConfig{}),
		middleware.AccessLog(middleware.AccessLogConfig{
			Logger: g.logger,
			Attrs: func(c echo.Context) []slog.Attr {
				f := flightFrom(c.Request().Context())
				held := f != nil && (f.held > 0 || f.replayed)
				client := ""
				if g.cfg.LogClientAddr {
					// The client as rewrite resolves it for the upstream: the same pure,
					// allocation-free walk, done here too because the log also covers requests
					// that never reach rewrite (own routes, 413s, cold 503s).
					r := c.Request()
					client = resolveClient(r.RemoteAddr, r.Header["X-Forwarded-For"], g.cfg.TrustedProxies).Text
				}
				upstream := readyAttr[0]
				if !g.readiness.IsReady() {
					upstream = slog.String("upstream", string(g.readiness.State()))
				} else if !held && client == "" {
					return readyAttr // no lock, no allocation
				}
				attrs := append(make([]slog.Attr, 0, 4), upstream)
				if held {
					attrs = append(attrs, slog.Duration("held", f.held), slog.Bool("replayed", f.replayed))
				}
				if client != "" {
					attrs = append(attrs, slog.String("client", client))
				}
				return attrs
			},
			Now: g.now,
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

	// /healthz and /ready are the gateway's whatever the method: a POST /ready must not reach
	// the upstream (nor get a 503 that reads like "not ready").
	e.Any("/healthz", ownRoute(g.answers.writeHealthz))
	e.Any("/ready", ownRoute(g.answers.writeReady))
	e.Any("/*", g.forward)
	e.RouteNotFound("/*", g.forward)
	return e
}

// ownRoute adapts one of the gateway's GET/HEAD answers to echo; other methods get 405.
func ownRoute(answer func(http.ResponseWriter, *http.Request)) echo.HandlerFunc {
	return func(c echo.Context) error {
		if m := c.Request().Method; m != http.MethodGet && m != http.MethodHead {
			c.Response().Header().Set("Allow", "GET, HEAD")
			return echo.NewHTTPError(http.StatusMethodNotAllowed, "method not allowed")
		}
		answer(c.Response(), c.Request())
		return nil
	}
}

// forward proxies a request when the upstream is ready and otherwise gives the not-ready answer
// (or, for GET/HEAD "/", the status page). Requests that break the rules in requests.go are
// answered here and never forwarded.
func (g *Gateway) forward(c echo.Context) error {
	r := c.Request()
	if err := checkRequest(r); err != nil {
		return err
	}
	if own := g.ownPath(r.URL.Path); own != nil {
		return own(c)
	}
	var f *flight
	if g.hold.enabled() {
		// The request's record, as its context: the hold deadline runs from here, and the
		// replaying transport and the access log read it.
		f = newFlight(r.Context(), g.hold.deadline())
		r = r.WithContext(f.withTrace())
		c.SetRequest(r)
	}
	if !g.readiness.IsReady() {
		if r.URL.Path == "/" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			g.answers.writeStatusPage(c.Response(), r)
			return nil
		}
		if !g.holdUntilReady(c, f) {
			return nil
		}
	}
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
	g.proxy.ServeHTTP(w, r)
	w.commit()
	return nil
}

// holdUntilReady holds a request that arrived while the upstream is not ready (see holdQueue)
// and reports whether it may go on to the upstream. Otherwise it has been answered: the
// not-ready 503 with Retry-After, or nothing at all for a client that left (logged as 499).
func (g *Gateway) holdUntilReady(c echo.Context, f *flight) bool {
	outcome := holdNotHeld
	if f != nil {
		outcome, f.held = g.hold.wait(f, f.deadline)
	}
	switch outcome {
	case holdForwarded:
		return true
	case holdClientGone:
		return false
	}
	g.answers.writeNotReady(c.Response(), c.Request(), middleware.RequestIDFrom(c))
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
	g.readiness.poke()
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

// Serve runs the gateway on ln until ctx is done, then shuts down in order: stop accepting,
// drain in-flight requests and streams (up to SHUTDOWN_TIMEOUT; then end what is left), close
// WebSockets with 1001, stop the prober and the child. It returns nil after a clean shutdown.
func (g *Gateway) Serve(ctx context.Context, ln net.Listener) error {
	// Request contexts derive from reqCtx, so that at the drain deadline the requests still
	// running (long event streams) can be ended cleanly rather than cut.
	if g.metrics != nil {
		stopMetrics, err := g.metrics.serveMetrics(g.cfg.MetricsAddr, g.logger)
		if err != nil {
			_ = ln.Close()
			return err
		}
		// Deferred first, so it runs last: scrapes see the drain and the child's stop.
		defer stopMetrics()
	}
	reqCtx, cancelRequests := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRequests()
	srv := &http.Server{
		Handler:           g,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		// No WriteTimeout: it would cut event streams. UPSTREAM_TIMEOUT bounds the wait for the
		// upstream's headers instead.
		BaseContext: func(net.Listener) context.Context { return reqCtx },
		ErrorLog:    slog.NewLogLogger(g.logger.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	// Deferred after the drain below: the child outlives the requests that need it.
	defer g.startBackground(ctx)()

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	}
	g.shutdown(srv, ln, cancelRequests)
	return nil
}

// startBackground starts what runs beside the server (the prober, or the misconfiguration
// reminder; the supervisor) and returns the func that stops it all, the child last.
func (g *Gateway) startBackground(ctx context.Context) (stop func()) {
	loopsCtx, stopLoops := context.WithCancel(context.WithoutCancel(ctx))
	childCtx, stopChild := context.WithCancel(context.WithoutCancel(ctx))
	var loops, child sync.WaitGroup
	if len(g.cfg.Missing) > 0 {
		g.readiness.MarkMisconfigured(g.cfg.Missing)
		loops.Go(g.guard("misconfiguration reminder", func() { g.remindMisconfigured(loopsCtx) }))
	} else {
		loops.Go(g.guard("prober", func() { g.prober.Run(loopsCtx) }))
		if g.supervisor != nil {
			child.Go(g.guard("supervisor", func() {
				if err := g.supervisor.Run(childCtx); err != nil {
					g.logger.Error("supervisor stopped", "err", err)
				}
			}))
		}
	}
	return func() {
		stopLoops()
		loops.Wait()
		stopChild()
		child.Wait()
	}
}

// guard wraps a background loop so that a panic in it is logged instead of taking the Space
// down with it. (Were the supervisor to panic, its child would run on unsupervised until the
// gateway exits, when Pdeathsig ends it on Linux.)
func (g *Gateway) guard(name string, loop func()) func() {
	return func() {
		defer func() {
			if v := recover(); v != nil {
				g.logger.Error("background loop panicked", "loop", name, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			}
		}()
		loop()
	}
}

// shutdown drains the HTTP server. Serve stops the child afterwards, so in-flight requests can
// still reach it while they finish.
func (g *Gateway) shutdown(srv *http.Server, ln net.Listener, cancelRequests context.CancelFunc) {
	start := g.now()
	// From here /ready answers 503 "draining", so an uptime monitor or the platform sees the
	// restart, and a request that still arrives on an open connection is turned away with
	// Retry-After rather than started when it might not finish.
	g.readiness.MarkDraining()
	// Shutdown would close the listener too; closing it first makes the log line below true
	// when it is written.
	_ = ln.Close()
	g.logger.Info("shutting down: draining requests", "timeout", g.cfg.ShutdownTimeout)
	drainCtx, cancel := context.WithTimeout(context.Background(), g.cfg.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(drainCtx)
	// WebSockets are not waited for by Shutdown. Say goodbye (1001) before the request
	// contexts are canceled below: that would close them without a word.
	if n := g.conns.CloseAll(); n > 0 {
		g.logger.Info("closed upgraded connections", "count", n)
	}
	if err != nil {
		// Deadline: end what is still running. Event streams end cleanly (see eventStreamBody).
		g.logger.Warn("drain deadline reached: ending open requests")
		cancelRequests()
		closeCtx, cancelClose := context.WithTimeout(context.Background(), time.Second)
		if err := srv.Shutdown(closeCtx); err != nil {
			_ = srv.Close()
		}
		cancelClose()
	}
	g.logger.Info("requests drained", "took", g.now().Sub(start).Round(time.Millisecond))
}

// remindMisconfigured repeats the misconfiguration in the log, since the first line scrolls
// away in the Space's log console.
func (g *Gateway) remindMisconfigured(ctx context.Context) {
	t := time.NewTicker(g.remindEvery)
	defer t.Stop()
	for {
		g.logMisconfigured()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (g *Gateway) logMisconfigured() {
	g.logger.Error("misconfigured: required variables are missing; the upstream is not started",
		"missing", strings.Join(g.cfg.Missing, ","), "hint", setSecretsHint)
}
