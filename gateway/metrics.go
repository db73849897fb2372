package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/hfgate/hfgate/gateway/gate"
	"github.com/hfgate/hfgate/gateway/health"
	"github.com/hfgate/hfgate/gateway/supervise"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Request kinds, the "kind" label: streams and WebSockets last as long as the conversation,
// so their durations would drown the plain requests' if they shared a histogram series.
const (
	kindPlain     = "plain"
	kindStream    = "stream"    // a text/event-stream response
	kindWebSocket = "websocket" // an upgraded connection; its duration is the connection's life
)

// metrics holds hfgate's Prometheus collectors on a registry of its own (never the global
// default one), served on METRICS_ADDR by a listener of its own. It exists only when
// METRICS_ADDR is set: without it no middleware is installed and no transport is wrapped, so
// requests pay nothing for metrics they do not export.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec   // code, method, kind
	duration *prometheus.HistogramVec // kind
	inFlight prometheus.Gauge
	ttfb     prometheus.Histogram

	queueTime     *prometheus.HistogramVec // outcome
	queueOutcomes *prometheus.CounterVec   // outcome
	replays       prometheus.Counter
}

// observeQueue records how one request's turn at the line in front of the upstream ended and
// how long it waited (gate.Options.OnOutcome). The outcomes other than admitted are the
// refusals, by reason; an early refusal waited 0 s.
func (m *metrics) observeQueue(o gate.Outcome, waited time.Duration) {
	m.queueOutcomes.WithLabelValues(string(o)).Inc()
	m.queueTime.WithLabelValues(string(o)).Observe(waited.Seconds())
}

// watchGate exports the line's state: requests waiting, in flight to the upstream, the limit.
func (m *metrics) watchGate(g *gate.Gate) {
	gauge := func(name, help string, v func(gate.Snapshot) int) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help},
			func() float64 { return float64(v(g.Snapshot())) })
	}
	m.reg.MustRegister(
		gauge("hfgate_queued_requests", "Requests waiting in line for the upstream now (restarting or busy; at most HOLD_MAX).",
			func(s gate.Snapshot) int { return s.Waiting }),
		gauge("hfgate_upstream_in_flight", "Forwarded requests holding a slot now (event streams and WebSockets give theirs back at their first byte).",
			func(s gate.Snapshot) int { return s.InFlight }),
		gauge("hfgate_upstream_concurrency_limit", "The limit of requests in flight to the upstream now (UPSTREAM_CONCURRENCY, or found from its latency).",
			func(s gate.Snapshot) int { return s.Limit }),
	)
}

// watchLog exports dropped, the count of log lines the log writer dropped (Options.DroppedLines),
// when there is one (main always logs through a logging.Writer; tests often do not).
func (m *metrics) watchLog(dropped func() uint64) {
	if dropped == nil {
		return
	}
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "hfgate_log_dropped_lines_total",
		Help: "Log lines dropped because stderr was not read fast enough (access lines first; see docs/configuration.md).",
	}, func() float64 { return float64(dropped()) }))
}

// newMetrics registers the collectors. child is the supervisor's status, or nil when hfgate
// supervises no process (then no restart counter is exported).
func newMetrics(readiness *health.Tracker, child func() supervise.Status) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hfgate_requests_total",
			Help: "Requests answered, by status code, method and kind (plain, stream, websocket).",
		}, []string{"code", "method", "kind"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hfgate_request_duration_seconds",
			Help:    "Time from the request's arrival to the end of its answer, by kind (plain, stream, websocket).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600},
		}, []string{"kind"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hfgate_requests_in_flight",
			Help: "Requests being answered now, open streams and WebSockets included.",
		}),
		ttfb: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hfgate_upstream_time_to_first_byte_seconds",
			Help:    "Time from sending a request to the upstream to receiving its response headers.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}),
	}
	m.queueTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "hfgate_queue_seconds",
		Help:    "Time requests waited in line for the upstream, by outcome (admitted, or the refusal: not_held, timed_out, overflow, client_gone, gave_up, busy, edge_cut).",
		Buckets: []float64{.001, .01, .05, .1, .25, .5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 60},
	}, []string{"outcome"})
	m.queueOutcomes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hfgate_queue_outcomes_total",
		Help: "Requests that asked the line in front of the upstream, by outcome (admitted, not_held, timed_out, overflow, client_gone, gave_up, busy, edge_cut).",
	}, []string{"outcome"})
	m.replays = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "hfgate_replays_total",
		Help: "Requests sent to the upstream a second time because the first attempt never reached it.",
	})
	m.reg.MustRegister(m.queueTime, m.queueOutcomes, m.replays)
	m.reg.MustRegister(m.requests, m.duration, m.inFlight, m.ttfb,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "hfgate_upstream_up",
			Help: "1 when the upstream is ready and requests are forwarded, else 0.",
		}, func() float64 {
			if readiness.IsReady() {
				return 1
			}
			return 0
		}),
		stateCollector{readiness},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	if child != nil {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "hfgate_upstream_restarts_total",
			Help: "Restarts of the supervised upstream process (UPSTREAM_CMD) since hfgate started.",
		}, func() float64 { return float64(child().Restarts) }))
	}
	return m
}

// stateCollector exports hfgate_upstream_state{state="..."}: 1 for the current state, 0 for
// the others, read at scrape time.
type stateCollector struct{ r *health.Tracker }

var stateDesc = prometheus.NewDesc("hfgate_upstream_state",
	"The gateway's view of the upstream: 1 for the current state, 0 for the others (see docs/states.md).",
	[]string{"state"}, nil)

func (c stateCollector) Describe(ch chan<- *prometheus.Desc) { ch <- stateDesc }

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	current := c.r.State()
	for _, s := range health.States() {
		v := 0.0
		if s == current {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(stateDesc, prometheus.GaugeValue, v, string(s))
	}
}

// middleware counts and times every request. It is the outermost middleware, so it sees the
// final status (the access log has already rendered any error) and the whole duration.
func (m *metrics) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		method := methodLabel(c.Request().Method)
		m.inFlight.Inc()
		defer func() {
			m.inFlight.Dec()
			resp := c.Response()
			kind := kindPlain
			switch {
			case resp.Status == http.StatusSwitchingProtocols:
				kind = kindWebSocket
			case flightFrom(c.Request().Context()).isStream():
				kind = kindStream
			}
			m.requests.WithLabelValues(strconv.Itoa(resp.Status), method, kind).Inc()
			m.duration.WithLabelValues(kind).Observe(time.Since(start).Seconds())
		}()
		return next(c)
	}
}

// methodLabel bounds the method label to the standard methods: a client may send any token as
// a method, and each would be a new series.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "OTHER"
}

// serveMetrics binds addr and serves /metrics on it until the returned stop func is called.
func (m *metrics) serveMetrics(addr string, logger *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:            slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	}))
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("metrics server stopped", "err", err)
		}
	}()
	logger.Info("metrics listening", "addr", ln.Addr().String(), "path", "/metrics")
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if srv.Shutdown(ctx) != nil {
			_ = srv.Close()
		}
		<-done
	}, nil
}
