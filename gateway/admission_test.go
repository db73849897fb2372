package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

// The line in front of the upstream as clients see it (admission.go, package gate): the busy
// answers, the event-stream answers an EventSource reconnects from, hfgate's own routes that
// never wait, a waiter that leaves, the access line's queued= and the metrics.

// workUpstream is newUpstream plus /work, a request the upstream holds until the test releases
// it (or its client leaves), as a busy backend holds one. It counts the /work requests that
// reached it and announces each.
type workUpstream struct {
	*upstream
	arrived chan struct{} // one value per /work request that reached the upstream
	release chan struct{} // one value lets one /work request answer; closing it lets all
	reached atomic.Int64
}

func newWorkUpstream(t *testing.T) *workUpstream {
	t.Helper()
	u := &workUpstream{upstream: newUpstream(t), arrived: make(chan struct{}, 64), release: make(chan struct{})}
	inner := u.Config.Handler
	u.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/work" {
			inner.ServeHTTP(w, r)
			return
		}
		u.reached.Add(1)
		u.arrived <- struct{}{}
		select {
		case <-u.release:
			_, _ = io.WriteString(w, "done")
		case <-r.Context().Done():
		}
	})
	return u
}

// awaitArrival waits for the next /work request to reach the upstream.
func (u *workUpstream) awaitArrival(t *testing.T) {
	t.Helper()
	select {
	case <-u.arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("no /work request reached the upstream within 10s")
	}
}

// result is the answer to a request sent in the background.
type result struct {
	resp *http.Response
	body []byte
	err  error
}

// send sends a request in the background; its result arrives on the channel.
func send(ctx context.Context, method, url string, header http.Header) <-chan result {
	ch := make(chan result, 1)
	go func() {
		req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader("{}"))
		if err != nil {
			ch <- result{err: err}
			return
		}
		for k, v := range header {
			req.Header[k] = v
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		ch <- result{resp: resp, body: b, err: err}
	}()
	return ch
}

// awaitResult waits for a background request's answer and checks its status.
func awaitResult(t *testing.T, ch <-chan result, wantStatus int) result {
	t.Helper()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("request failed: %v", r.err)
		}
		if r.resp.StatusCode != wantStatus {
			t.Fatalf("status = %d, want %d; body %s", r.resp.StatusCode, wantStatus, r.body)
		}
		return r
	case <-time.After(15 * time.Second):
		t.Fatal("no answer within 15s")
		panic("unreachable")
	}
}

// awaitLine polls the gate until in flight and waiting are as given. The gate announces no
// entry into its line, so this is the one wait here that polls (bounded).
func awaitLine(t *testing.T, tg *testGateway, inFlight, waiting int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := tg.g.admission.gate.Snapshot()
		if s.InFlight == inFlight && s.Waiting == waiting {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("line: %d in flight, %d waiting; want %d and %d", s.InFlight, s.Waiting, inFlight, waiting)
		}
		time.Sleep(time.Millisecond)
	}
}

// busyBody is the JSON of a busy answer.
type busyBody struct {
	Error      string `json:"error"`
	State      string `json:"state"`
	Reason     string `json:"reason"`
	RetryAfter int    `json:"retry_after"`
	RequestID  string `json:"request_id"`
	Queue      *struct {
		InFlight int  `json:"in_flight"`
		Waiting  int  `json:"waiting"`
		Limit    int  `json:"limit"`
		Adaptive bool `json:"adaptive"`
	} `json:"queue"`
}

// checkBusyJSON asserts the busy 503: whole-second Retry-After (1..120) equal to retry_after,
// the state (ready: busy is not an outage), the reason, the request ID, the line's state, and,
// with origin set, CORS headers that let a page read Retry-After.
func checkBusyJSON(t *testing.T, r result, reason, origin string) busyBody {
	t.Helper()
	if r.resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status = %d, want 503; body %s", r.resp.StatusCode, r.body)
	}
	if ct := r.resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q, want JSON", ct)
	}
	ra, err := strconv.Atoi(r.resp.Header.Get("Retry-After"))
	if err != nil || ra < 1 || ra > 120 {
		t.Errorf("Retry-After = %q, want whole seconds in 1..120", r.resp.Header.Get("Retry-After"))
	}
	var b busyBody
	if err := json.Unmarshal(r.body, &b); err != nil {
		t.Fatalf("body is not JSON: %s", r.body)
	}
	checkBusyBody(t, b, reason, ra, r.resp.Header.Get("X-Request-Id"))
	if origin != "" {
		if got := r.resp.Header.Get("Access-Control-Allow-Origin"); got != origin {
			t.Errorf("Access-Control-Allow-Origin = %q, want %q", got, origin)
		}
		expose := strings.ToLower(strings.Join(r.resp.Header.Values("Access-Control-Expose-Headers"), ","))
		if !strings.Contains(expose, "retry-after") {
			t.Errorf("Access-Control-Expose-Headers = %q, want Retry-After", expose)
		}
	}
	return b
}

func checkBusyBody(t *testing.T, b busyBody, reason string, retryAfter int, requestID string) {
	t.Helper()
	if b.State != "ready" || b.Reason != reason || b.Error == "" {
		t.Errorf("body state %q reason %q error %q, want ready, %s and a message", b.State, b.Reason, b.Error, reason)
	}
	if b.RetryAfter != retryAfter {
		t.Errorf("retry_after = %d, want %d (the header)", b.RetryAfter, retryAfter)
	}
	if requestID == "" || b.RequestID != requestID {
		t.Errorf("request_id = %q, want the X-Request-ID header %q", b.RequestID, requestID)
	}
	if b.Queue == nil || b.Queue.Limit < 1 {
		t.Errorf("queue = %+v, want the line's state with its limit", b.Queue)
	}
}

// checkRetryStream asserts the answer an EventSource reconnects from: 200 text/event-stream
// holding exactly one event (retry: Retry-After in ms, the named event, the JSON as data), then
// the end of the stream. It returns the event's data.
func checkRetryStream(t *testing.T, r result, event string) []byte {
	t.Helper()
	if r.resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d, want 200 (an EventSource fails for good on any other); body %s", r.resp.StatusCode, r.body)
	}
	if ct := r.resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type = %q, want text/event-stream", ct)
	}
	ra, err := strconv.Atoi(r.resp.Header.Get("Retry-After"))
	if err != nil || ra < 1 {
		t.Fatalf("Retry-After = %q, want whole seconds", r.resp.Header.Get("Retry-After"))
	}
	// r.body was read to EOF: the stream ended after this one event.
	sc := bufio.NewScanner(strings.NewReader(string(r.body)))
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) != 4 || lines[3] != "" {
		t.Fatalf("stream = %q, want retry, event and data lines, a blank line, then the end", r.body)
	}
	if want := "retry: " + strconv.Itoa(ra*1000); lines[0] != want {
		t.Errorf("line 1 = %q, want %q (Retry-After in ms)", lines[0], want)
	}
	if want := "event: " + event; lines[1] != want {
		t.Errorf("line 2 = %q, want %q", lines[1], want)
	}
	data, ok := strings.CutPrefix(lines[2], "data: ")
	if !ok || !json.Valid([]byte(data)) {
		t.Fatalf("line 3 = %q, want data: and JSON", lines[2])
	}
	var m struct {
		RetryAfter int    `json:"retry_after"`
		RequestID  string `json:"request_id"`
	}
	_ = json.Unmarshal([]byte(data), &m)
	if m.RetryAfter != ra {
		t.Errorf("data retry_after = %d, want %d (the header)", m.RetryAfter, ra)
	}
	if id := r.resp.Header.Get("X-Request-Id"); id == "" || m.RequestID != id {
		t.Errorf("data request_id = %q, want the X-Request-ID header %q", m.RequestID, id)
	}
	return []byte(data)
}

// accessLine returns the access line of the request with the given ID.
func accessLine(t *testing.T, tg *testGateway, r result) map[string]any {
	t.Helper()
	id := r.resp.Header.Get("X-Request-Id")
	return tg.logs.Wait(t, "request", func(m map[string]any) bool { return m["request_id"] == id })
}

// queuedOf returns the access line's queued= (how long the request waited in line), and
// whether it has one.
func queuedOf(line map[string]any) (time.Duration, bool) {
	v, ok := line["queued"].(float64) // slog's JSON writes a duration in nanoseconds
	return time.Duration(v), ok
}

var (
	acceptStream = http.Header{"Accept": {"text/event-stream"}}
	// eventSource is what a browser's EventSource sends (the HTML and Fetch standards; seen
	// from Chromium): the only request that gets the stream answer.
	eventSource = http.Header{"Accept": {"text/event-stream"}, "Cache-Control": {"no-cache"}}
	acceptJSON  = http.Header{"Accept": {"application/json"}}
)

// TestBusyAnswers: with one slot, a request that waits out HOLD_TIMEOUT behind a busy upstream
// gets the busy 503 at its deadline; once an answer has shown how long the upstream takes, a
// request that could not be admitted in time is refused at once (reason busy, no time in line).
// A GET asking for an event stream gets the same answer as a stream an EventSource reconnects
// from; JSON and fetch clients (and a POST, which EventSource never sends) keep the 503.
// Refusing is logged once when it starts and once when it stops, and the metrics count it.
func TestBusyAnswers(t *testing.T) {
	t.Parallel()
	const origin = "https://app.example"
	up := newWorkUpstream(t)
	tg := startGateway(t, up.Server, map[string]string{
		"UPSTREAM_CONCURRENCY": "1",
		"HOLD_TIMEOUT":         "200ms",
		"CORS_ALLOW_ORIGINS":   origin,
		"METRICS_ADDR":         "127.0.0.1:0",
	}, true)
	tg.waitReady(t)
	ctx := t.Context()
	withOrigin := func(h http.Header) http.Header {
		h = h.Clone()
		h.Set("Origin", origin)
		return h
	}

	// A takes the one slot; B waits behind it until its deadline.
	a := send(ctx, http.MethodPost, tg.URL+"/work", nil)
	up.awaitArrival(t)
	b := awaitResult(t, send(ctx, http.MethodPost, tg.URL+"/work", withOrigin(acceptJSON)), http.StatusServiceUnavailable)
	checkBusyJSON(t, b, "timed_out", origin)
	// Its time in line runs from its entry into the line, a moment after the arrival its
	// deadline counts from: most of HOLD_TIMEOUT, not the 0 of an early refusal.
	if q, ok := queuedOf(accessLine(t, tg, b)); !ok || q < 150*time.Millisecond {
		t.Errorf("B's access line queued=%v (%v), want about HOLD_TIMEOUT (200ms)", q, ok)
	}
	tg.logs.Wait(t, "upstream busy: refusing requests that would wait too long", nil)

	// A's answer: the upstream takes longer than a request may wait. Refusing stops.
	up.release <- struct{}{}
	awaitResult(t, a, http.StatusOK)
	stop := tg.logs.Wait(t, "upstream caught up: refusing stopped", nil)
	if stop["refused"] != 1.0 || stop["timed_out"] != 1.0 {
		t.Errorf("refusing stopped with %v, want refused=1 timed_out=1", stop)
	}

	// A2 takes the slot; what comes next is refused at once.
	a2 := send(ctx, http.MethodPost, tg.URL+"/work", nil)
	up.awaitArrival(t)
	c := awaitResult(t, send(ctx, http.MethodPost, tg.URL+"/work", withOrigin(acceptJSON)), http.StatusServiceUnavailable)
	cb := checkBusyJSON(t, c, "busy", origin)
	if cb.Queue.InFlight != 1 || cb.Queue.Limit != 1 || cb.Queue.Adaptive {
		t.Errorf("queue = %+v, want 1 in flight, limit 1, fixed", *cb.Queue)
	}
	if q, ok := queuedOf(accessLine(t, tg, c)); ok {
		t.Errorf("C's access line queued=%v, want none: refused at once, not after a wait", q)
	}

	t.Run("EventSource gets a stream to reconnect from", func(t *testing.T) {
		d := awaitResult(t, send(ctx, http.MethodGet, tg.URL+"/work", withOrigin(eventSource)), http.StatusOK)
		data := checkRetryStream(t, d, "busy")
		var db busyBody
		_ = json.Unmarshal(data, &db)
		checkBusyBody(t, db, "busy", db.RetryAfter, d.resp.Header.Get("X-Request-Id"))
		if got := d.resp.Header.Get("Access-Control-Allow-Origin"); got != origin {
			t.Errorf("Access-Control-Allow-Origin = %q, want %q", got, origin)
		}
	})
	t.Run("fetch and JSON clients keep the 503", func(t *testing.T) {
		for _, h := range []http.Header{nil, acceptJSON, acceptStream} {
			checkBusyJSON(t, awaitResult(t, send(ctx, http.MethodGet, tg.URL+"/work", h), http.StatusServiceUnavailable), "busy", "")
		}
		// A POST asking for a stream (fetch-based SSE clients) is not an EventSource.
		checkBusyJSON(t, awaitResult(t, send(ctx, http.MethodPost, tg.URL+"/work", acceptStream), http.StatusServiceUnavailable), "busy", "")
	})

	up.release <- struct{}{}
	awaitResult(t, a2, http.StatusOK)
	if n := up.reached.Load(); n != 2 {
		t.Errorf("upstream saw %d /work requests, want 2 (A and A2; the refused ones never reached it)", n)
	}
	if n := len(tg.logs.Records(t, "upstream busy: refusing requests that would wait too long")); n != 2 {
		t.Errorf("%d refusing-started lines, want 2 (one per episode, not one per request)", n)
	}

	// The metrics: outcomes by reason, and the early refusals waited 0 s.
	reg := tg.g.metrics.reg
	for o, want := range map[string]float64{"admitted": 2, "timed_out": 1, "busy": 6} {
		if got := testutil.ToFloat64(tg.g.metrics.queueOutcomes.WithLabelValues(o)); got != want {
			t.Errorf("hfgate_queue_outcomes_total{outcome=%q} = %v, want %v", o, got, want)
		}
	}
	if h := metric(t, reg, "hfgate_queue_seconds", "outcome", "busy").GetHistogram(); h.GetSampleCount() != 6 || h.GetSampleSum() != 0 {
		t.Errorf("hfgate_queue_seconds{outcome=busy} count %d sum %v, want 6 and 0", h.GetSampleCount(), h.GetSampleSum())
	}
	if h := metric(t, reg, "hfgate_queue_seconds", "outcome", "timed_out").GetHistogram(); h.GetSampleSum() < 0.15 {
		t.Errorf("hfgate_queue_seconds{outcome=timed_out} sum %v, want about HOLD_TIMEOUT (0.2)", h.GetSampleSum())
	}
}

// metric returns the gathered sample of name with the given label pair (none: the only one).
func metric(t *testing.T, reg prometheus.Gatherer, name string, label ...string) *dto.Metric {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if len(label) == 0 {
				return m
			}
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label[0] && lp.GetValue() == label[1] {
					return m
				}
			}
		}
	}
	t.Fatalf("no sample %s%v", name, label)
	return nil
}

// TestBurstMetrics: twenty requests at once at an upstream with two slots and a line of five:
// thirteen are refused at once (overflow), seven are answered once it answers, five of them
// after a wait their access lines show; the metrics show the line while it is full and the
// outcomes after, and refusing is logged once each way with the episode's counts.
func TestBurstMetrics(t *testing.T) {
	t.Parallel()
	const burst, limit, line = 20, 2, 5
	up := newWorkUpstream(t)
	tg := startGateway(t, up.Server, map[string]string{
		"UPSTREAM_CONCURRENCY": strconv.Itoa(limit),
		"HOLD_MAX":             strconv.Itoa(line),
		"HOLD_TIMEOUT":         "30s",
		"METRICS_ADDR":         "127.0.0.1:0",
	}, true)
	tg.waitReady(t)
	results := make(chan result, burst)
	for range burst {
		go func() { results <- <-send(t.Context(), http.MethodPost, tg.URL+"/work", nil) }()
	}
	// Nothing is answered yet, so the first limit+line take the slots and the line, and the
	// rest are refused at once.
	for range burst - limit - line {
		checkBusyJSON(t, awaitResult(t, results, http.StatusServiceUnavailable), "overflow", "")
	}
	reg := tg.g.metrics.reg
	gauges := func(queued, inFlight float64) {
		t.Helper()
		for name, want := range map[string]float64{
			"hfgate_queued_requests":            queued,
			"hfgate_upstream_in_flight":         inFlight,
			"hfgate_upstream_concurrency_limit": limit,
		} {
			if got := metric(t, reg, name).GetGauge().GetValue(); got != want {
				t.Errorf("%s = %v, want %v", name, got, want)
			}
		}
	}
	gauges(line, limit)

	close(up.release)
	waited := 0
	for range limit + line {
		r := awaitResult(t, results, http.StatusOK)
		if q, ok := queuedOf(accessLine(t, tg, r)); ok && q > 0 {
			waited++
		}
	}
	if waited != line {
		t.Errorf("%d access lines with queued=, want %d (those that waited in line)", waited, line)
	}
	stop := tg.logs.Wait(t, "upstream caught up: refusing stopped", nil)
	if stop["refused"] != float64(burst-limit-line) || stop["overflow"] != float64(burst-limit-line) || stop["admitted"] != float64(line) {
		t.Errorf("refusing stopped with %v, want refused=overflow=%d admitted=%d", stop, burst-limit-line, line)
	}
	if n := len(tg.logs.Records(t, "upstream busy: refusing requests that would wait too long")); n != 1 {
		t.Errorf("%d refusing-started lines, want 1", n)
	}
	gauges(0, 0)
	for o, want := range map[string]uint64{"admitted": limit + line, "overflow": burst - limit - line} {
		h := metric(t, reg, "hfgate_queue_seconds", "outcome", o).GetHistogram()
		if got := testutil.ToFloat64(tg.g.metrics.queueOutcomes.WithLabelValues(o)); got != float64(want) || h.GetSampleCount() != want {
			t.Errorf("outcome %s: counted %v, timed %d; want %d", o, got, h.GetSampleCount(), want)
		}
	}
	if n := up.reached.Load(); n != limit+line {
		t.Errorf("upstream saw %d requests, want %d", n, limit+line)
	}
}

// TestOwnRoutesNeverQueue: while the slot is taken and the line full, /ready and /healthz are
// answered at once, and /ready shows the line; a waiter whose client leaves is taken out of the
// line at once (not at its deadline) and nothing is forwarded for it.
func TestOwnRoutesNeverQueue(t *testing.T) {
	t.Parallel()
	up := newWorkUpstream(t)
	tg := startGateway(t, up.Server, map[string]string{
		"UPSTREAM_CONCURRENCY": "1",
		"HOLD_MAX":             "1",
		"HOLD_TIMEOUT":         "60s",
	}, true)
	tg.waitReady(t)
	a := send(t.Context(), http.MethodPost, tg.URL+"/work", nil)
	up.awaitArrival(t)
	leave, cancel := context.WithCancel(t.Context())
	b := send(leave, http.MethodPost, tg.URL+"/work", nil)
	awaitLine(t, tg, 1, 1)

	// The line is full: the next request is refused, hfgate's own routes are answered.
	checkBusyJSON(t, awaitResult(t, send(t.Context(), http.MethodPost, tg.URL+"/work", nil), http.StatusServiceUnavailable), "overflow", "")
	for _, path := range []string{"/healthz", "/ready"} {
		r := awaitResult(t, send(t.Context(), http.MethodGet, tg.URL+path, nil), http.StatusOK)
		if q, ok := queuedOf(accessLine(t, tg, r)); ok {
			t.Errorf("%s waited %v in line", path, q)
		}
		if path != "/ready" {
			continue
		}
		var rb struct {
			Ready bool           `json:"ready"`
			Queue map[string]any `json:"queue"`
		}
		if err := json.Unmarshal(r.body, &rb); err != nil {
			t.Fatalf("/ready body %s: %v", r.body, err)
		}
		want := map[string]any{"in_flight": 1.0, "waiting": 1.0, "limit": 1.0, "adaptive": false, "open_streams": 0.0, "estimated_wait_seconds": 0.0}
		for k, v := range want {
			if rb.Queue[k] != v {
				t.Errorf("/ready queue.%s = %v, want %v (queue %v)", k, rb.Queue[k], v, rb.Queue)
			}
		}
		if !rb.Ready {
			t.Error("/ready says not ready while the upstream is only busy")
		}
	}

	// B's client leaves: it is out of the line at once and answered 499 in the log.
	cancel()
	if r := <-b; r.err == nil {
		t.Fatalf("B got %d, want its request cancelled", r.resp.StatusCode)
	}
	line := tg.logs.Wait(t, "request", func(m map[string]any) bool { return m["status"] == 499.0 })
	if q, ok := queuedOf(line); !ok || q >= 30*time.Second {
		t.Errorf("B's access line queued=%v (%v), want the time until it left, not its deadline", q, ok)
	}
	if s := tg.g.admission.gate.Snapshot(); s.Waiting != 0 {
		t.Errorf("after B left, %d waiting, want 0", s.Waiting)
	}
	up.release <- struct{}{}
	awaitResult(t, a, http.StatusOK)
	// The line goes on in order: had B been left in it, it would have reached the upstream
	// before this request.
	awaitResult(t, send(t.Context(), http.MethodGet, tg.URL+"/echo", nil), http.StatusOK)
	if n := up.reached.Load(); n != 1 {
		t.Errorf("upstream saw %d /work requests, want 1 (nothing for the client that left)", n)
	}
}

// TestStatusPageWhileHeld: while requests wait in line for a restarted upstream, the status
// page, /ready and /healthz are answered at once, and the held request goes through once the
// upstream is back.
func TestStatusPageWhileHeld(t *testing.T) {
	t.Parallel()
	up := newWorkUpstream(t)
	tg := startGateway(t, up.Server, nil, true)
	tg.waitReady(t)
	upDies(tg, up.upstream)
	held := send(t.Context(), http.MethodPost, tg.URL+"/echo", nil)
	awaitLine(t, tg, 0, 1)

	page := awaitResult(t, send(t.Context(), http.MethodGet, tg.URL+"/", http.Header{"Accept": {"text/html"}}), http.StatusOK)
	if !strings.Contains(string(page.body), "<h1>") || !strings.Contains(string(page.body), "Requests waiting for the service: 1 ") {
		t.Errorf("status page = %s, want the HTML page showing the one request waiting", page.body)
	}
	awaitResult(t, send(t.Context(), http.MethodGet, tg.URL+"/healthz", nil), http.StatusOK)
	r := awaitResult(t, send(t.Context(), http.MethodGet, tg.URL+"/ready", nil), http.StatusServiceUnavailable)
	if !strings.Contains(string(r.body), `"waiting":1`) {
		t.Errorf("/ready = %s, want the line with 1 waiting", r.body)
	}
	tg.gate.set(true)
	if r := awaitResult(t, held, http.StatusOK); !strings.Contains(string(r.body), `"method":"POST"`) {
		t.Errorf("held request answered %s, want the upstream's echo", r.body)
	}
}

// TestEventStreamColdAnswer: during the first cold start (nothing is held: the client's
// countdown starts at once) a GET asking for an event stream gets a 200 stream an EventSource
// reconnects from, with retry: from Retry-After and an "unavailable" event carrying the
// not-ready JSON; other requests keep the 503.
func TestEventStreamColdAnswer(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	tg := startGateway(t, up.Server, nil, false)

	r := awaitResult(t, send(t.Context(), http.MethodGet, tg.URL+"/sse", eventSource), http.StatusOK)
	data := checkRetryStream(t, r, "unavailable")
	var m map[string]any
	_ = json.Unmarshal(data, &m)
	if m["state"] != "starting" || m["error"] == nil {
		t.Errorf("event data %s, want the not-ready JSON in state starting", data)
	}
	if q, ok := queuedOf(accessLine(t, tg, r)); ok {
		t.Errorf("access line queued=%v, want none: a first cold start is answered at once", q)
	}
	for _, tt := range []struct {
		name   string
		method string
		header http.Header
	}{
		{"GET without Accept", http.MethodGet, nil},
		{"GET for JSON", http.MethodGet, acceptJSON},
		{"fetch for a stream", http.MethodGet, acceptStream},
		{"POST for a stream", http.MethodPost, acceptStream},
	} {
		r := awaitResult(t, send(t.Context(), tt.method, tg.URL+"/sse", tt.header), http.StatusServiceUnavailable)
		checkNotReady(t, r.resp, r.body, "starting")
	}
	if s := tg.g.admission.gate.Snapshot(); s.Waiting != 0 {
		t.Errorf("%d waiting, want 0", s.Waiting)
	}
}
