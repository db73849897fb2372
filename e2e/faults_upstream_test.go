package e2e

// Upstream misbehaviour, end to end: the real hfgate binary in front of fakeUpstream. Each
// case checks the client's answer, that no body the gateway wrote carries an internal
// address or Go error text, and that the gateway still answers afterwards and exits 0.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// checkJSONError checks one of the gateway's own error answers.
func checkJSONError(t *testing.T, what string, r reply, want ...int) {
	t.Helper()
	ok := false
	for _, w := range want {
		ok = ok || r.status == w
	}
	if !ok {
		t.Errorf("%s: got %s, want status in %v", what, r, want)
		return
	}
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil || m["error"] == nil || m["request_id"] != r.header.Get("X-Request-ID") {
		t.Errorf("%s: body %s, want the JSON error shape with the request ID", what, r.body)
	}
	if r.status == http.StatusServiceUnavailable {
		if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 {
			t.Errorf("%s: Retry-After %q, want whole seconds", what, r.header.Get("Retry-After"))
		}
	}
	checkGatewayBody(t, what, r.body)
}

// stillServing checks the gateway is alive and forwarding, then stops it and expects exit 0.
func stillServing(t *testing.T, g *hfgateProc, ctxTimeout time.Duration) {
	t.Helper()
	ctx := testContext(t, ctxTimeout)
	if r := g.mustRequest(ctx, http.MethodGet, "/healthz", ""); r.status != http.StatusOK {
		t.Errorf("GET /healthz afterwards: got %s, want 200", r)
	}
	if code := g.stop(ctx); code != 0 {
		t.Errorf("exit code after SIGTERM: got %d, want 0", code)
	}
	if n := g.logs.count(func(l logLine) bool { return strings.Contains(l.raw, "goroutine ") || strings.Contains(l.raw, "panic") }); n > 0 {
		t.Errorf("got %d log lines with a panic or stack trace, want none", n)
	}
}

func TestFaultUpstreamMisbehaves(t *testing.T) {
	t.Parallel()

	t.Run("slow headers get 504 at UPSTREAM_TIMEOUT", func(t *testing.T) {
		t.Parallel()
		ctx, g := readyOnFake(t, map[string]string{"UPSTREAM_TIMEOUT": "1s"})
		start := time.Now()
		r := g.mustRequest(ctx, http.MethodGet, "/slow-headers", "")
		took := time.Since(start)
		checkJSONError(t, "slow headers", r, http.StatusGatewayTimeout)
		if took < time.Second || took > 3*time.Second {
			t.Errorf("504 after %v, want about the 1s UPSTREAM_TIMEOUT", took)
		}
		if r := g.mustRequest(ctx, http.MethodGet, "/ok", ""); r.status != http.StatusOK {
			t.Errorf("next request: got %s, want 200 (a slow answer is not a dead upstream)", r)
		}
		stillServing(t, g, 15*time.Second)
	})

	t.Run("body cut in the middle is not passed off as whole", func(t *testing.T) {
		t.Parallel()
		ctx, g := readyOnFake(t, nil)
		// The gateway aborts the connection: the client sees a failed request (no answer, or
		// a short body), never a short answer framed as whole.
		r, err := g.request(ctx, http.MethodGet, "/cut-body", "")
		if err == nil {
			t.Errorf("reading a cut body: got %s and no error, want the connection aborted", r)
		}
		if r := g.mustRequest(ctx, http.MethodGet, "/ok", ""); r.status != http.StatusOK {
			t.Errorf("next request: got %s, want 200", r)
		}
		stillServing(t, g, 15*time.Second)
	})

	t.Run("event stream cut mid-event ends cleanly", func(t *testing.T) {
		t.Parallel()
		ctx, g := readyOnFake(t, nil)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, g.base+"/cut-stream", nil)
		withPlantedSecrets(req)
		resp, err := g.client.Do(req)
		if err != nil {
			t.Fatalf("GET /cut-stream: %v", err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Errorf("reading the cut stream: got %v, want a clean end (browsers report an aborted stream as a network error)", err)
		}
		// The half event after it is dropped: the stream ends at an event boundary.
		if want := "data: {\"token\":\"one\"}\n\n"; string(body) != want {
			t.Errorf("got body %q, want exactly the whole first event %q", body, want)
		}
		if r := g.mustRequest(ctx, http.MethodGet, "/ok", ""); r.status != http.StatusOK && r.status != http.StatusServiceUnavailable {
			t.Errorf("next request: got %s, want 200 or 503 (the prober is asked to look again)", r)
		}
		stillServing(t, g, 15*time.Second)
	})

	t.Run("connection accepted but never answered", func(t *testing.T) {
		t.Parallel()
		ctx := testContext(t, 40*time.Second)
		f := newFakeUpstream(t)
		f.listen()
		g := startGatewayFor(t, f.url(), map[string]string{"UPSTREAM_TIMEOUT": "1s"})
		g.awaitReady(ctx, 20*time.Millisecond)
		f.blackhole.Store(true)
		f.dropConns()
		for i := range 3 {
			start := time.Now()
			r := g.mustRequest(ctx, http.MethodPost, "/ok", `{}`)
			checkJSONError(t, "black hole #"+strconv.Itoa(i+1), r, http.StatusGatewayTimeout, http.StatusServiceUnavailable)
			if took := time.Since(start); took > 3*time.Second {
				t.Errorf("answer after %v, want within about the 1s UPSTREAM_TIMEOUT", took)
			}
		}
		f.blackhole.Store(false)
		f.dropConns()
		stillServing(t, g, 15*time.Second)
	})

	t.Run("health path answering 500 turns the gateway not ready, then ready again", func(t *testing.T) {
		t.Parallel()
		ctx := testContext(t, 40*time.Second)
		f := newFakeUpstream(t)
		f.listen()
		g := startGatewayFor(t, f.url(), nil)
		g.awaitReady(ctx, 20*time.Millisecond)
		f.healthStatus.Store(http.StatusInternalServerError)
		// While ready, the prober looks every 5 s; it needs a few failures in a row.
		g.awaitLog(ctx, 1, "state unavailable", func(l logLine) bool {
			return l.msg() == "upstream state" && l.attr("to") == "unavailable"
		})
		r := g.mustRequest(ctx, http.MethodPost, "/ok", `{}`)
		checkNotReady(t, r, "unavailable")
		checkGatewayBody(t, "not ready", r.body)
		f.healthStatus.Store(http.StatusOK)
		g.awaitReady(ctx, 20*time.Millisecond)
		if r := g.mustRequest(ctx, http.MethodGet, "/ok", ""); r.status != http.StatusOK {
			t.Errorf("after recovery: got %s, want 200", r)
		}
		stillServing(t, g, 15*time.Second)
	})

	t.Run("upstream that refuses, then accepts", func(t *testing.T) {
		t.Parallel()
		ctx := testContext(t, 30*time.Second)
		f := newFakeUpstream(t) // not listening yet: connections are refused
		g := startGatewayFor(t, f.url(), nil)
		g.awaitPort(ctx)
		for range 3 {
			r := g.mustRequest(ctx, http.MethodPost, "/ok", `{}`)
			checkNotReady(t, r, "starting")
			checkGatewayBody(t, "refused", r.body)
		}
		f.listen()
		g.awaitReady(ctx, 20*time.Millisecond)
		if r := g.mustRequest(ctx, http.MethodGet, "/ok", ""); r.status != http.StatusOK {
			t.Errorf("once accepting: got %s, want 200", r)
		}
		stillServing(t, g, 15*time.Second)
	})

	t.Run("UPSTREAM_URL host that does not resolve", func(t *testing.T) {
		t.Parallel()
		ctx := testContext(t, 30*time.Second)
		// With a password in the URL, planted: it must reach neither a body nor the log.
		g := startGatewayFor(t, "http://user:"+plant("urlpw-"+randomHex(t, 8))+"@upstream-e2e.invalid:8000", nil)
		g.awaitPort(ctx)
		for range 3 {
			r := g.mustRequest(ctx, http.MethodPost, "/chat", `{}`)
			checkNotReady(t, r, "starting", "unavailable")
			checkGatewayBody(t, "unresolvable", r.body)
		}
		if r := g.mustRequest(ctx, http.MethodGet, "/ready", ""); r.status != http.StatusServiceUnavailable {
			t.Errorf("GET /ready: got %s, want 503", r)
		}
		stillServing(t, g, 15*time.Second)
	})

	t.Run("an answer that is not HTTP gets 502", func(t *testing.T) {
		t.Parallel()
		ctx, g := readyOnFake(t, nil)
		r := g.mustRequest(ctx, http.MethodGet, "/garbage", "")
		checkJSONError(t, "garbage", r, http.StatusBadGateway)
		// The upstream's own 500 is its answer to give, passed through unchanged.
		if r := g.mustRequest(ctx, http.MethodGet, "/leak", ""); r.status != http.StatusInternalServerError || string(r.body) != "oops!" {
			t.Errorf("upstream 500: got %s, want it passed through", r)
		}
		stillServing(t, g, 15*time.Second)
	})
}

// readyOnFake starts a gateway (with env added) in front of a new fake upstream that listens
// from the start, and returns once the gateway is ready, with a 30 s context for the test.
func readyOnFake(t *testing.T, env map[string]string) (context.Context, *hfgateProc) {
	t.Helper()
	ctx := testContext(t, 30*time.Second)
	f := newFakeUpstream(t)
	f.listen()
	g := startGatewayFor(t, f.url(), env)
	g.awaitReady(ctx, 20*time.Millisecond)
	return ctx, g
}

// fakeUpstream is a scriptable upstream for fault injection: a raw TCP server that reads
// HTTP/1.1 requests and, per path, answers properly or misbehaves in a way the real example
// backend cannot be made to (headers that never come, a body or an event stream cut in the
// middle, a health check that fails on demand, a listener that refuses and later accepts).
type fakeUpstream struct {
	t    *testing.T
	addr string // 127.0.0.1:PORT, reserved even while not listening
	// healthStatus is what /health answers.
	healthStatus atomic.Int32
	// blackhole: accept connections and never read from or answer them.
	blackhole atomic.Bool

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
	done  chan struct{} // closed at clean-up: ends the handlers that hang
	wg    sync.WaitGroup
}

// newFakeUpstream reserves a port; listen starts serving on it.
func newFakeUpstream(t *testing.T) *fakeUpstream {
	t.Helper()
	f := &fakeUpstream{t: t, addr: fmt.Sprintf("127.0.0.1:%d", freePort(t)), conns: map[net.Conn]struct{}{}, done: make(chan struct{})}
	f.healthStatus.Store(http.StatusOK)
	t.Cleanup(f.close)
	return f
}

func (f *fakeUpstream) url() string { return "http://" + f.addr }

// listen starts accepting on the reserved port (until then, connections are refused).
func (f *fakeUpstream) listen() {
	f.t.Helper()
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		f.t.Fatalf("fake upstream: listen %s: %v", f.addr, err)
	}
	f.mu.Lock()
	f.ln = ln
	f.mu.Unlock()
	f.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			f.conns[c] = struct{}{}
			f.mu.Unlock()
			f.wg.Go(func() { f.serve(c) })
		}
	})
}

func (f *fakeUpstream) close() {
	f.mu.Lock()
	select {
	case <-f.done:
	default:
		close(f.done)
	}
	if f.ln != nil {
		f.ln.Close()
	}
	for c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

func (f *fakeUpstream) forget(c net.Conn) {
	c.Close()
	f.mu.Lock()
	delete(f.conns, c)
	f.mu.Unlock()
}

func (f *fakeUpstream) serve(c net.Conn) {
	defer f.forget(c)
	if f.blackhole.Load() {
		select {
		case <-f.done:
		case <-waitClosed(c):
		}
		return
	}
	br := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, req.Body)
		if !f.answer(c, req) {
			return
		}
	}
}

// waitClosed returns a channel closed once the peer closes c (reads are discarded).
func waitClosed(c net.Conn) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, c)
		close(ch)
	}()
	return ch
}

// answer writes the scripted answer for req; false ends the connection.
func (f *fakeUpstream) answer(c net.Conn, req *http.Request) bool {
	writeAll := func(s string) bool {
		_, err := io.WriteString(c, s)
		return err == nil
	}
	switch req.URL.Path {
	case "/health":
		code := int(f.healthStatus.Load())
		return writeAll(fmt.Sprintf("HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}", code, http.StatusText(code)))
	case "/ok":
		return writeAll("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"ok\":true}")
	case "/slow-headers":
		// Headers never come: the gateway's UPSTREAM_TIMEOUT must answer for it.
		select {
		case <-f.done:
		case <-waitClosed(c):
		}
		return false
	case "/cut-body":
		// Promise 100 bytes, send 10, hang up.
		writeAll("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"partial\":")
		return false
	case "/cut-stream":
		// One whole event, half of the next, then hang up.
		writeAll("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n" +
			chunk("data: {\"token\":\"one\"}\n\n") + chunk("data: {\"tok"))
		return false
	case "/garbage":
		writeAll("this is not HTTP\r\n\r\n")
		return false
	case "/leak":
		// An upstream error page naming internal things: passed through as the upstream's
		// answer (it is the application's to word), never made by the gateway.
		return writeAll("HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\noops!")
	default:
		return writeAll("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
	}
}

func chunk(s string) string {
	return fmt.Sprintf("%x\r\n%s\r\n", len(s), s)
}

// internalMarkers betray an internal address, a Go error or a stack trace in a body the
// gateway wrote.
var internalMarkers = []string{"127.0.0.1", "localhost", "::1", "dial ", "tcp ", "EOF", "goroutine ", ".go:", "panic", "net/http", "refused", "timeout awaiting", "no such host", ".invalid"}

// checkGatewayBody fails the test when body carries an internal marker or extra.
func checkGatewayBody(t *testing.T, what string, body []byte, extra ...string) {
	t.Helper()
	for _, m := range append(append([]string(nil), internalMarkers...), extra...) {
		if m != "" && strings.Contains(string(body), m) {
			t.Errorf("%s: body leaks %q: %s", what, m, body)
		}
	}
}

// dropConns closes the connections open now, so the gateway's next requests dial anew.
func (f *fakeUpstream) dropConns() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for c := range f.conns {
		c.Close()
	}
}
