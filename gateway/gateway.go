package gateway

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/hfgate/hfgate/config"
	"github.com/hfgate/hfgate/gateway/gate"
	"github.com/hfgate/hfgate/gateway/health"
	"github.com/hfgate/hfgate/gateway/supervise"
	"github.com/hfgate/hfgate/middleware"
	"github.com/labstack/echo/v4"
)

// Options are what New needs besides the configuration. Zero values are documented per field.
type Options struct {
	// Logger is the gateway's logger (main builds it with logging.New, with AccessLine as its
	// Droppable). Required.
	Logger *slog.Logger
	// DroppedLines counts the log lines the logger's writer dropped, exported as a metric.
	// Zero value: no such metric (the logger writes through no dropping writer).
	DroppedLines func() uint64
	// Environ is the environment handed to the supervised child ("KEY=value" entries).
	// Zero value: the child gets an empty environment plus PYTHONUNBUFFERED=1.
	Environ []string
	// Now is the clock. Zero value: time.Now.
	Now func() time.Time
	// DialContext dials the upstream. Zero value: a net.Dialer with a 5 s timeout.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// ProbeInterval is the health-check interval while not ready; while ready it is 25 times
	// longer, at least 5 s. Zero value: health.Prober's (200ms).
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
	readiness   *health.Tracker
	proxy       *proxy
	answers     *answers
	conns       *hijackedConns
	prober      *health.Prober
	admission   *admission
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
	opts = opts.withDefaults()
	g := &Gateway{
		cfg:         cfg,
		logger:      opts.Logger,
		now:         opts.Now,
		conns:       newHijackedConns(),
		remindEvery: opts.RemindEvery,
	}
	tracker := health.TrackerOptions{Logger: opts.Logger, Now: opts.Now}
	g.answers = &answers{startedAt: opts.Now(), now: opts.Now, page: newStatusPage()}
	g.admission = &admission{timeout: cfg.HoldTimeout, now: opts.Now}
	if len(cfg.UpstreamCmd) > 0 {
		g.supervisor = g.newSupervisor(childEnv(opts.Environ))
		// A child that passed its health check started well: its next crash restarts it after
		// the shortest backoff (see supervise.Supervisor.Healthy).
		tracker.OnReady = g.supervisor.Healthy
		g.answers.child = g.supervisor.Status
		g.admission.next = func() time.Time { return g.supervisor.Status().NextAttempt }
	}
	// The gate follows every transition before the Mark method that made it returns.
	tracker.OnChange = g.admission.sync
	g.readiness = health.NewTracker(tracker)
	g.answers.readiness = g.readiness
	g.admission.readiness = g.readiness
	var err error
	if g.admission.gate, err = g.newGate(); err != nil {
		return nil, err
	}
	g.answers.queue = g.admission.gate.Snapshot
	g.admission.sync() // paused: the upstream is starting
	if cfg.MetricsAddr != "" {
		g.metrics = g.newMetrics(opts.DroppedLines)
	}
	base, chain := g.newTransport(opts.DialContext)
	g.proxy = newProxy(proxyConfig{
		Target:    cfg.UpstreamURL,
		Transport: chain,
		Readiness: g.readiness,
		Logger:    opts.Logger,
		Answers:   g.answers,
		Conns:     g.conns,
		Now:       opts.Now,
	})
	g.prober = &health.Prober{
		URL:          cfg.UpstreamURL.JoinPath(cfg.UpstreamHealthPath).String(),
		Client:       &http.Client{Transport: base},
		Tracker:      g.readiness,
		Logger:       opts.Logger,
		FastInterval: opts.ProbeInterval,
		LastAnswer:   g.proxy.lastAnswer,
		// The readiness clock, so elapsed times agree with the state's Since.
		Now:           opts.Now,
		ProgressEvery: opts.ProgressEvery,
	}
	g.echo = g.routes()
	return g, nil
}

func (o Options) withDefaults() Options {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.RemindEvery <= 0 {
		o.RemindEvery = time.Minute
	}
	return o
}

// newMetrics registers the gateway's collectors, with the line's and the log writer's.
func (g *Gateway) newMetrics(droppedLines func() uint64) *metrics {
	var child func() supervise.Status
	if g.supervisor != nil {
		child = g.supervisor.Status
	}
	m := newMetrics(g.readiness, child)
	m.watchGate(g.admission.gate)
	m.watchLog(droppedLines)
	return m
}

// newGate is the line in front of the upstream: UPSTREAM_CONCURRENCY (0: adaptive), HOLD_MAX
// waiting, and the edge's cut at UPSTREAM_TIMEOUT, after which the upstream's answer would be
// a 504 anyway. Its outcomes go to the metrics, its refusing episodes to the log.
func (g *Gateway) newGate() (*gate.Gate, error) {
	return gate.New(gate.Options{
		Limit:       int(g.cfg.UpstreamConcurrency),
		MaxWaiting:  g.cfg.HoldMax,
		EdgeTimeout: g.cfg.UpstreamTimeout,
		OnOutcome: func(o gate.Outcome, waited time.Duration) {
			if g.metrics != nil {
				g.metrics.observeQueue(o, waited)
			}
		},
		OnRefusing: g.logRefusing,
	})
}

// newSupervisor is the supervisor of UPSTREAM_CMD: its starts and exits become readiness
// transitions.
func (g *Gateway) newSupervisor(env []string) *supervise.Supervisor {
	return &supervise.Supervisor{
		Args:        g.cfg.UpstreamCmd,
		Dir:         g.cfg.UpstreamDir,
		Env:         env,
		Logger:      g.logger,
		StopTimeout: g.cfg.UpstreamStopTimeout,
		MaxBackoff:  g.cfg.UpstreamMaxBackoff,
		OnStart:     func(int) { g.readiness.MarkStarted() },
		OnExit: func(ev supervise.Exit) {
			// An exit with no next attempt is the one shutdown asked for.
			if !ev.NextAttempt.IsZero() {
				g.readiness.MarkCrashed()
			}
		},
	}
}

// childEnv is the child's environment: the gateway's, plus PYTHONUNBUFFERED=1 unless set, so
// a Python backend's log lines arrive as they are written.
func childEnv(environ []string) []string {
	env := make([]string, 0, len(environ)+1)
	unbuffered := false
	for _, kv := range environ {
		unbuffered = unbuffered || strings.HasPrefix(kv, "PYTHONUNBUFFERED=")
		env = append(env, kv)
	}
	if !unbuffered {
		env = append(env, "PYTHONUNBUFFERED=1")
	}
	return env
}

// AccessLine reports whether r is one of the gateway's access lines, which a log writer under
// pressure drops first: main passes it as logging.Options.Droppable.
func AccessLine(r slog.Record) bool { return middleware.IsAccessRecord(r) }
