package gateway

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/hfgate/hfgate/config"
	"github.com/hfgate/hfgate/gateway/health"
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

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %d %v", resp.StatusCode, err)
	}
	return string(b)
}

// hasSample reports whether the exposition holds the sample line exactly (name{labels} value).
func hasSample(body, sample string) bool {
	return strings.Contains("\n"+body, "\n"+sample+"\n")
}

// waitSample scrapes until the sample appears. A request is counted after its answer has been
// sent, so the client can be a moment ahead of the counters; nothing announces the increment,
// hence the polling (bounded).
func waitSample(t *testing.T, url string, samples ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		body := scrape(t, url)
		missing := ""
		for _, s := range samples {
			if !hasSample(body, s) {
				missing = s
				break
			}
		}
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics never showed %q; last scrape:\n%s", missing, body)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestMetrics walks a gateway from cold to ready through plain requests, an event stream and
// a WebSocket, and checks what its metrics listener reports at each step.
func TestMetrics(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	tg := startGateway(t, up.Server, map[string]string{"METRICS_ADDR": "127.0.0.1:0"}, false)
	url := tg.metricsURL(t)

	// Cold: not up, starting, and a turned-away request counted as a plain 503.
	body := scrape(t, url)
	for _, s := range []string{
		"hfgate_upstream_up 0",
		`hfgate_upstream_state{state="starting"} 1`,
		`hfgate_upstream_state{state="ready"} 0`,
		`hfgate_upstream_state{state="draining"} 0`,
	} {
		if !hasSample(body, s) {
			t.Errorf("cold scrape lacks %q:\n%s", s, body)
		}
	}
	if strings.Contains(body, "hfgate_upstream_restarts_total") {
		t.Error("restarts exported without a supervised process")
	}
	resp, _ := do(t, http.MethodPost, tg.URL+"/echo", nil, strings.NewReader("{}"))
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("POST /echo while cold: got %d, want 503", resp.StatusCode)
	}
	waitSample(t, url, `hfgate_requests_total{code="503",kind="plain",method="POST"} 1`)

	// Ready: forwarded requests of each kind.
	tg.gate.set(true)
	tg.waitReady(t)
	waitSample(t, url, "hfgate_upstream_up 1", `hfgate_upstream_state{state="ready"} 1`, `hfgate_upstream_state{state="starting"} 0`)
	if resp, _ := do(t, http.MethodGet, tg.URL+"/echo", nil, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /echo: got %d, want 200", resp.StatusCode)
	}
	do(t, "BREW", tg.URL+"/echo", nil, nil) // an odd method is counted as OTHER

	r := openFirstEvent(t, tg.URL+"/sse")
	waitSample(t, url, "hfgate_requests_in_flight 1") // the open stream
	close(up.release)
	if rest, err := io.ReadAll(r); err != nil || string(rest) != "\ndata: two\n\n" {
		t.Fatalf("stream rest = %q, %v", rest, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(tg.URL, "http")+"/ws", nil)
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

	waitSample(t, url,
		`hfgate_requests_total{code="200",kind="plain",method="GET"} 1`,
		`hfgate_requests_total{code="200",kind="plain",method="OTHER"} 1`,
		`hfgate_requests_total{code="200",kind="stream",method="GET"} 1`,
		`hfgate_requests_total{code="101",kind="websocket",method="GET"} 1`,
		`hfgate_request_duration_seconds_count{kind="plain"} 3`,
		`hfgate_request_duration_seconds_count{kind="stream"} 1`,
		`hfgate_request_duration_seconds_count{kind="websocket"} 1`,
		"hfgate_requests_in_flight 0",
		// Four requests reached the upstream; the health checks are not counted.
		"hfgate_upstream_time_to_first_byte_seconds_count 4",
	)

	// The listener lives and dies with Serve.
	addr := strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/metrics")
	tg.stop(t)
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Error("the metrics listener still accepts connections after Serve returned")
	}
}

// TestMetricsRestarts: with a supervised child that keeps exiting, the restart counter counts.
func TestMetricsRestarts(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	tg := startGatewayWith(t, up.Server, map[string]string{
		"METRICS_ADDR": "127.0.0.1:0",
		"UPSTREAM_CMD": "/bin/sh -c 'exit 3'",
	}, false, Options{})
	url := tg.metricsURL(t)
	waitSample(t, url, "hfgate_upstream_restarts_total 1")
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
	if got := droppedMetric(t, m); got != 3 {
		t.Errorf("hfgate_log_dropped_lines_total: got %v, want 3", got)
	}
	plain := newMetrics(health.NewTracker(health.TrackerOptions{Logger: slog.New(slog.DiscardHandler)}), nil)
	plain.watchLog(nil)
	if got := droppedMetric(t, plain); got != -1 {
		t.Errorf("hfgate_log_dropped_lines_total without DroppedLines: got %v, want none", got)
	}
}

// droppedMetric gathers hfgate_log_dropped_lines_total, or -1 when it is not registered.
func droppedMetric(t *testing.T, m *metrics) float64 {
	t.Helper()
	families, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "hfgate_log_dropped_lines_total" {
			return f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return -1
}

// recordsHandler keeps every record logged through it.
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
	g.Readiness().MarkReady()
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
