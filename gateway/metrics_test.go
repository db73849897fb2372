package gateway

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/hfgate/hfgate/config"
	"github.com/hfgate/hfgate/gateway/health"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

// metricsURL returns the /metrics URL of a gateway started with METRICS_ADDR=127.0.0.1:0.
func (tg *testGateway) metricsURL(t *testing.T) string {
	t.Helper()
	rec := tg.logs.Wait(t, "metrics listening", nil)
	addr, _ := rec["addr"].(string)
	if addr == "" {
		t.Fatalf("metrics listening line without addr: %v", rec)
	}
	return "http://" + addr + "/metrics"
}

// front serves the gateway's handler on a server of the test's own, which sends each request's
// path on served once the handler has returned. The metrics middleware counts a request as the
// handler returns, a moment after the client has its answer: a test receives from served, then
// reads the counters, instead of polling them.
func (tg *testGateway) front(t *testing.T) (url string, served <-chan string) {
	t.Helper()
	ch := make(chan string, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tg.g.ServeHTTP(w, r)
		ch <- r.URL.Path
	}))
	t.Cleanup(srv.Close)
	return srv.URL, ch
}

// awaitServed waits until the gateway's handler has returned from a request for path.
func awaitServed(t *testing.T, served <-chan string, path string) {
	t.Helper()
	select {
	case got := <-served:
		if got != path {
			t.Fatalf("served %s, want %s", got, path)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the gateway's handler never returned from %s", path)
	}
}

// upstreamExposition is what /metrics shows of hfgate_upstream_up and hfgate_upstream_state in
// state, for testutil's comparisons.
func upstreamExposition(state health.State) io.Reader {
	var b strings.Builder
	up := 0
	if state == health.Ready {
		up = 1
	}
	fmt.Fprintf(&b, "# HELP hfgate_upstream_up 1 when the upstream is ready and requests are forwarded, else 0.\n"+
		"# TYPE hfgate_upstream_up gauge\nhfgate_upstream_up %d\n", up)
	b.WriteString("# HELP hfgate_upstream_state The gateway's view of the upstream: 1 for the current state, 0 for the others (see docs/states.md).\n" +
		"# TYPE hfgate_upstream_state gauge\n")
	for _, s := range health.States() {
		v := 0
		if s == state {
			v = 1
		}
		fmt.Fprintf(&b, "hfgate_upstream_state{state=%q} %d\n", s, v)
	}
	return strings.NewReader(b.String())
}

// sampleCount is how many observations a histogram (or one series of a vector) holds.
func sampleCount(t *testing.T, h prometheus.Observer) uint64 {
	t.Helper()
	var m dto.Metric
	if err := h.(prometheus.Metric).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount()
}

// TestMetrics walks a gateway from cold to ready through plain requests, an event stream and
// a WebSocket, and checks what its metrics report at each step: the upstream's state as its
// listener exposes it, the request counters as the middleware left them once each handler
// returned.
func TestMetrics(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	tg := startGateway(t, up.Server, map[string]string{"METRICS_ADDR": "127.0.0.1:0"}, false)
	url := tg.metricsURL(t)
	front, served := tg.front(t)
	m := tg.g.metrics

	// Cold: not up, starting, no restart counter, and a turned-away request counted as a
	// plain 503.
	if err := testutil.ScrapeAndCompare(url, upstreamExposition(health.Starting),
		"hfgate_upstream_up", "hfgate_upstream_state", "hfgate_upstream_restarts_total"); err != nil {
		t.Errorf("cold scrape: %v", err)
	}
	resp, _ := do(t, http.MethodPost, front+"/echo", nil, strings.NewReader("{}"))
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("POST /echo while cold: got %d, want 503", resp.StatusCode)
	}
	awaitServed(t, served, "/echo")
	if got := testutil.ToFloat64(m.requests.WithLabelValues("503", "POST", kindPlain)); got != 1 {
		t.Errorf(`hfgate_requests_total{code="503",kind="plain",method="POST"}: got %v, want 1`, got)
	}

	// Ready (the state changes before its log line): forwarded requests of each kind.
	tg.gate.set(true)
	tg.waitReady(t)
	if err := testutil.ScrapeAndCompare(url, upstreamExposition(health.Ready), "hfgate_upstream_up", "hfgate_upstream_state"); err != nil {
		t.Errorf("ready scrape: %v", err)
	}
	if resp, _ := do(t, http.MethodGet, front+"/echo", nil, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /echo: got %d, want 200", resp.StatusCode)
	}
	awaitServed(t, served, "/echo")
	do(t, "BREW", front+"/echo", nil, nil) // an odd method is counted as OTHER
	awaitServed(t, served, "/echo")

	r := openFirstEvent(t, front+"/sse")
	if got := testutil.ToFloat64(m.inFlight); got != 1 { // the open stream
		t.Errorf("hfgate_requests_in_flight with a stream open: got %v, want 1", got)
	}
	close(up.release)
	if rest, err := io.ReadAll(r); err != nil || string(rest) != "\ndata: two\n\n" {
		t.Fatalf("stream rest = %q, %v", rest, err)
	}
	awaitServed(t, served, "/sse")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(front, "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ws.Write(ctx, websocket.MessageText, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := ws.Read(ctx); err != nil || string(msg) != "echo: hi" {
		t.Fatalf("ws read = %q, %v", msg, err)
	}
	ws.Close(websocket.StatusNormalClosure, "")
	awaitServed(t, served, "/ws")

	for _, c := range []struct {
		labels []string // code, method, kind
		want   float64
	}{
		{[]string{"200", "GET", kindPlain}, 1},
		{[]string{"200", "OTHER", kindPlain}, 1},
		{[]string{"200", "GET", kindStream}, 1},
		{[]string{"101", "GET", kindWebSocket}, 1},
	} {
		if got := testutil.ToFloat64(m.requests.WithLabelValues(c.labels...)); got != c.want {
			t.Errorf("hfgate_requests_total%q: got %v, want %v", c.labels, got, c.want)
		}
	}
	for kind, want := range map[string]uint64{kindPlain: 3, kindStream: 1, kindWebSocket: 1} {
		if got := sampleCount(t, m.duration.WithLabelValues(kind)); got != want {
			t.Errorf("hfgate_request_duration_seconds_count{kind=%q}: got %d, want %d", kind, got, want)
		}
	}
	if got := testutil.ToFloat64(m.inFlight); got != 0 {
		t.Errorf("hfgate_requests_in_flight after every request: got %v, want 0", got)
	}
	// Four requests reached the upstream; the health checks are not counted.
	if got := sampleCount(t, m.ttfb); got != 4 {
		t.Errorf("hfgate_upstream_time_to_first_byte_seconds_count: got %d, want 4", got)
	}

	// The listener lives and dies with Serve.
	addr := strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/metrics")
	tg.stop(t)
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Error("the metrics listener still accepts connections after Serve returned")
	}
}

// TestMetricsRestarts: with a supervised child that exits once, then stays up, the restart
// counter counts the one restart (awaited in the log: the status counts it before the line).
func TestMetricsRestarts(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	ran := filepath.Join(t.TempDir(), "ran")
	tg := startGatewayWith(t, up.Server, map[string]string{
		"METRICS_ADDR": "127.0.0.1:0",
		"UPSTREAM_CMD": fmt.Sprintf("/bin/sh -c 'if [ -e %[1]s ]; then exec sleep 1000; fi; touch %[1]s; exit 3'", ran),
	}, false, Options{})
	url := tg.metricsURL(t)
	tg.logs.Wait(t, "upstream started", func(r map[string]any) bool { return r["restarts"] == float64(1) })
	want := "# HELP hfgate_upstream_restarts_total Restarts of the supervised upstream process (UPSTREAM_CMD) since hfgate started.\n" +
		"# TYPE hfgate_upstream_restarts_total counter\nhfgate_upstream_restarts_total 1\n"
	if err := testutil.ScrapeAndCompare(url, strings.NewReader(want), "hfgate_upstream_restarts_total"); err != nil {
		t.Error(err)
	}
}

// TestMetricsOffByDefault: without METRICS_ADDR there is no listener and no wrapped transport
// (and, with g.metrics nil, routes installs no middleware).
func TestMetricsOffByDefault(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	tg := startGateway(t, up.Server, nil, true)
	tg.waitReady(t)
	if tg.g.metrics != nil {
		t.Error("metrics built without METRICS_ADDR")
	}
	replay, ok := tg.g.proxy.rp.Transport.(*replayTransport)
	if !ok {
		t.Fatalf("proxy transport is %T, want *replayTransport", tg.g.proxy.rp.Transport)
	}
	if _, ok := replay.next.(*http.Transport); !ok {
		t.Errorf("replay's transport is %T without METRICS_ADDR, want the bare *http.Transport", replay.next)
	}
	if recs := tg.logs.Records(t, "metrics listening"); len(recs) != 0 {
		t.Errorf("a metrics listener was started: %v", recs)
	}
}

func TestMethodLabel(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"GET": "GET", "POST": "POST", "OPTIONS": "OPTIONS", "get": "OTHER", "BREW": "OTHER", "": "OTHER"} {
		if got := methodLabel(in); got != want {
			t.Errorf("methodLabel(%q) = %q, want %q", in, got, want)
		}
	}
}

// BenchmarkProxySmallJSONMetrics is BenchmarkProxySmallJSON (log=info) with METRICS_ADDR set:
// the cost of the metrics middleware and the timed transport. (The listener is not started:
// the handler is served directly.) Compare with BenchmarkProxySmallJSON/log=info.
func BenchmarkProxySmallJSONMetrics(b *testing.B) {
	up := newBenchUpstream(b)
	gw := newBenchGateway(b, up.URL, map[string]string{"METRICS_ADDR": "127.0.0.1:0"}, slog.LevelInfo, true)
	c := newBenchClient(b)
	b.ReportAllocs()
	for b.Loop() {
		benchPost(b, c, gw.URL+"/chat", nil, http.StatusOK)
	}
}

// TestLogDroppedMetric: hfgate_log_dropped_lines_total follows Options.DroppedLines, and is
// absent without it.
func TestLogDroppedMetric(t *testing.T) {
	t.Parallel()
	var dropped atomic.Uint64
	m := newMetrics(health.NewTracker(health.TrackerOptions{Logger: slog.New(slog.DiscardHandler)}), nil)
	m.watchLog(dropped.Load)
	dropped.Store(3)
	want := "# HELP hfgate_log_dropped_lines_total Log lines dropped because stderr was not read fast enough (access lines first; see docs/configuration.md).\n" +
		"# TYPE hfgate_log_dropped_lines_total counter\nhfgate_log_dropped_lines_total 3\n"
	if err := testutil.GatherAndCompare(m.reg, strings.NewReader(want), "hfgate_log_dropped_lines_total"); err != nil {
		t.Error(err)
	}
	plain := newMetrics(health.NewTracker(health.TrackerOptions{Logger: slog.New(slog.DiscardHandler)}), nil)
	plain.watchLog(nil)
	if n, err := testutil.GatherAndCount(plain.reg, "hfgate_log_dropped_lines_total"); err != nil || n != 0 {
		t.Errorf("hfgate_log_dropped_lines_total without DroppedLines: got %d series (%v), want none", n, err)
	}
}

// recordsHandler keeps every record logged through it. Not logtest.Sink: AccessLine reads the
// slog.Record itself, which a JSON line no longer is.
type recordsHandler struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *recordsHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordsHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *recordsHandler) WithGroup(string) slog.Handler            { return h }
func (h *recordsHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r)
	return nil
}

// TestAccessLineIsTheAccessLog: the predicate main gives the log writer (logging.Options.
// Droppable) picks the gateway's access lines and none of its other records.
func TestAccessLineIsTheAccessLog(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	h := &recordsHandler{}
	cfg, err := config.Load(map[string]string{"UPSTREAM_URL": up.URL})
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(cfg, Options{Logger: slog.New(h)})
	if err != nil {
		t.Fatal(err)
	}
	g.readiness.MarkReady()
	for _, path := range []string{"/healthz", "/echo"} {
		rec := httptest.NewRecorder()
		g.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	access := 0
	for _, r := range h.records {
		if AccessLine(r) != (r.Message == "request") {
			t.Errorf("AccessLine(%q) = %v", r.Message, AccessLine(r))
		}
		if AccessLine(r) {
			access++
		}
	}
	if access != 2 || len(h.records) <= access {
		t.Errorf("%d access lines among %d records, want 2 among more", access, len(h.records))
	}
}
