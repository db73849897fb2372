package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/hfgate/hfgate/config"
	"github.com/hfgate/hfgate/gateway/health"
	"github.com/hfgate/hfgate/logging"
	"github.com/hfgate/hfgate/logging/logtest"
)

// --- harness ---------------------------------------------------------------------------------

// dialGate refuses upstream connections while closed, like a port nobody listens on yet.
type dialGate struct {
	mu   sync.Mutex
	open bool
}

func (g *dialGate) set(open bool) {
	g.mu.Lock()
	g.open = open
	g.mu.Unlock()
}

func (g *dialGate) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	g.mu.Lock()
	open := g.open
	g.mu.Unlock()
	if !open {
		return nil, &net.OpError{Op: "dial", Net: network, Err: syscall.ECONNREFUSED}
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

type testGateway struct {
	URL    string
	g      *Gateway
	logs   *logtest.Sink
	gate   *dialGate
	cancel context.CancelFunc
	done   chan error
}

// startGateway runs a gateway in front of upstream with the given extra environment. The
// upstream is reachable at once when open is true.
func startGateway(t *testing.T, upstream *httptest.Server, environ map[string]string, open bool) *testGateway {
	t.Helper()
	return startGatewayWith(t, upstream, environ, open, Options{})
}

// startGatewayWith is startGateway with options; Logger, DialContext and ProbeInterval are
// the harness's own.
func startGatewayWith(t *testing.T, upstream *httptest.Server, environ map[string]string, open bool, opts Options) *testGateway {
	t.Helper()
	env := map[string]string{"UPSTREAM_URL": upstream.URL, "HOST": "127.0.0.1"}
	for k, v := range environ {
		env[k] = v
	}
	cfg, err := config.Load(env)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	logs := logtest.NewSink()
	logger := logging.New(logs, logging.Options{Format: "json", Level: slog.LevelDebug, Secrets: cfg.Secrets})
	gate := &dialGate{open: open}
	opts.Logger, opts.DialContext, opts.ProbeInterval = logger, gate.dial, 20*time.Millisecond
	g, err := New(cfg, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tg := &testGateway{URL: "http://" + ln.Addr().String(), g: g, logs: logs, gate: gate, cancel: cancel, done: make(chan error, 1)}
	go func() { tg.done <- g.Serve(ctx, ln) }()
	t.Cleanup(func() {
		tg.stop(t)
		out := logs.String()
		if strings.ContainsRune(out, 0x1b) {
			t.Errorf("log contains an ESC byte:\n%s", out)
		}
		for _, s := range cfg.Secrets {
			if strings.Contains(out, s) {
				t.Errorf("log contains a secret value")
			}
		}
	})
	return tg
}

func (tg *testGateway) stop(t *testing.T) {
	t.Helper()
	tg.cancel()
	select {
	case err := <-tg.done:
		if err != nil {
			t.Errorf("Serve returned %v, want nil", err)
		}
		tg.done <- nil // later calls return at once
	case <-time.After(15 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
}

func (tg *testGateway) waitReady(t *testing.T) {
	t.Helper()
	tg.logs.Wait(t, "upstream state", func(r map[string]any) bool { return r["to"] == "ready" })
}

// upstream is a test backend with the routes the tests need.
type upstream struct {
	*httptest.Server
	release chan struct{} // closed to let /sse finish
	mu      sync.Mutex
	lastReq *http.Request // the last request other than a health check
}

func newUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{release: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"method": r.Method, "path": r.URL.Path, "query": r.URL.RawQuery, "host": r.Host,
			"header": r.Header, "body_len": len(body),
		})
	})
	mux.HandleFunc("/cors", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-Id", "upstream-"+r.Header.Get("X-Request-Id"))
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Header().Set("Access-Control-Allow-Credentials", "true")
		w.Header().Set("Access-Control-Expose-Headers", "X-Upstream")
		_, _ = io.WriteString(w, "ok")
	})
	mux.HandleFunc("/sse", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: one\n\n")
		http.NewResponseController(w).Flush()
		select {
		case <-u.release:
		case <-r.Context().Done():
			return
		}
		_, _ = io.WriteString(w, "data: two\n\n")
	})
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, append([]byte("echo: "), msg...)); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("/drop", func(w http.ResponseWriter, r *http.Request) {
		// Read the request, then close the connection without an answer.
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})
	mux.HandleFunc("/hints", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</app.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Set("Trailer", "X-Checksum")
		_, _ = io.WriteString(w, "body")
		w.Header().Set("X-Checksum", "abc")
	})
	// Every request but the prober's is recorded.
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" {
			u.mu.Lock()
			u.lastReq = r.Clone(context.Background())
			u.mu.Unlock()
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		u.CloseClientConnections()
		u.Close()
	})
	return u
}

func (u *upstream) last() *http.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.lastReq
}

func do(t *testing.T, method, url string, header http.Header, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp, b
}

// openFirstEvent opens the upstream's /sse stream through the gateway and reads its first
// event, which the upstream sends before it blocks. The rest is left to the caller.
func openFirstEvent(t *testing.T, url string) *bufio.Reader {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	r := bufio.NewReader(resp.Body)
	if line, err := r.ReadString('\n'); line != "data: one\n" {
		t.Fatalf("first line = %q, %v; want the first event", line, err)
	}
	return r
}

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("body is not JSON: %q", b)
	}
	return m
}

// checkNotReady asserts the fixed shape of a not-ready answer.
func checkNotReady(t *testing.T, resp *http.Response, body []byte, wantState string) map[string]any {
	t.Helper()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status = %d, want 503; body %s", resp.StatusCode, body)
	}
	ra, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || ra < 1 || ra > 30 {
		t.Errorf("Retry-After = %q, want whole seconds in 1..30", resp.Header.Get("Retry-After"))
	}
	if got := resp.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}
	m := decode(t, body)
	if m["state"] != wantState {
		t.Errorf("state = %v, want %s", m["state"], wantState)
	}
	if m["retry_after"] != float64(ra) {
		t.Errorf("retry_after = %v, want %d (the header)", m["retry_after"], ra)
	}
	if m["error"] == "" || m["error"] == nil {
		t.Errorf("error message missing")
	}
	if id := resp.Header.Get("X-Request-Id"); id == "" || m["request_id"] != id {
		t.Errorf("request_id = %v, want the X-Request-ID header %q", m["request_id"], id)
	}
	if strings.Contains(string(body), "127.0.0.1") || strings.Contains(string(body), "refused") {
		t.Errorf("body leaks internals: %s", body)
	}
	return m
}

// --- tests -----------------------------------------------------------------------------------

func TestColdStartThenReady(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	tg := startGateway(t, up.Server, nil, false)

	resp, body := do(t, "POST", tg.URL+"/echo", nil, strings.NewReader("{}"))
	checkNotReady(t, resp, body, "starting")

	resp, body = do(t, "GET", tg.URL+"/", http.Header{"Accept": {"text/html,application/xhtml+xml"}}, nil)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(string(body), "starting") || !strings.Contains(string(body), `http-equiv="refresh"`) {
		t.Errorf("GET / (browser) while cold = %d %q %q, want 200 self-refreshing HTML", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	resp, body = do(t, "GET", tg.URL+"/", nil, nil)
	if resp.StatusCode != 200 || decode(t, body)["state"] != "starting" {
		t.Errorf("GET / (API) while cold = %d %s, want 200 JSON with the state", resp.StatusCode, body)
	}
	resp, _ = do(t, "HEAD", tg.URL+"/", nil, nil)
	if resp.StatusCode != 200 {
		t.Errorf("HEAD / while cold = %d, want 200", resp.StatusCode)
	}
	resp, body = do(t, "GET", tg.URL+"/ready", nil, nil)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || decode(t, body)["state"] != "starting" {
		t.Errorf("/ready while cold = %d %s, want 503 + Retry-After", resp.StatusCode, body)
	}
	resp, _ = do(t, "GET", tg.URL+"/healthz", nil, nil)
	if resp.StatusCode != 200 {
		t.Errorf("/healthz = %d, want 200", resp.StatusCode)
	}

	tg.gate.set(true)
	tg.waitReady(t)
	resp, body = do(t, "POST", tg.URL+"/echo?x=1", nil, strings.NewReader("hello"))
	if resp.StatusCode != 200 {
		t.Fatalf("after ready: status %d %s, want 200", resp.StatusCode, body)
	}
	if m := decode(t, body); m["path"] != "/echo" || m["query"] != "x=1" || m["body_len"] != float64(5) {
		t.Errorf("upstream saw %v, want path /echo, query x=1, 5 body bytes", m)
	}
	resp, body = do(t, "GET", tg.URL+"/ready", nil, nil)
	if m := decode(t, body); resp.StatusCode != 200 || m["state"] != "ready" || m["upstream"] != nil || strings.Contains(string(body), up.Listener.Addr().String()) {
		t.Errorf("/ready when ready = %d %s", resp.StatusCode, body)
	}
	rec := tg.logs.Wait(t, "upstream state", func(r map[string]any) bool { return r["to"] == "ready" })
	if rec["from"] != "starting" || rec["came_up_in"] == nil {
		t.Errorf("transition log = %v, want from starting with came_up_in", rec)
	}
	// Once ready, "/" is the upstream's.
	resp, _ = do(t, "GET", tg.URL+"/", nil, nil)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET / when ready = %d, want the upstream's 404", resp.StatusCode)
	}
}

func TestOwnRoutes(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	tg := startGateway(t, up.Server, nil, true)
	tg.waitReady(t)
	tests := []struct {
		method, path string
		want         int
	}{
		{"GET", "/healthz", 200},
		{"HEAD", "/healthz", 200},
		{"GET", "/ready", 200},
		{"HEAD", "/ready", 200},
		{"POST", "/ready", 405},
		{"DELETE", "/healthz", 405},
	}
	for _, tt := range tests {
		resp, body := do(t, tt.method, tg.URL+tt.path, nil, nil)
		if resp.StatusCode != tt.want {
			t.Errorf("%s %s = %d, want %d", tt.method, tt.path, resp.StatusCode, tt.want)
		}
		if tt.want == 405 && (resp.Header.Get("Allow") != "GET, HEAD" || decode(t, body)["error"] == nil) {
			t.Errorf("%s %s: Allow %q body %s, want GET, HEAD and a JSON error", tt.method, tt.path, resp.Header.Get("Allow"), body)
		}
	}
	if up.last() != nil {
		t.Errorf("a gateway route reached the upstream: %s %s", up.last().Method, up.last().URL.Path)
	}
}

func TestPassiveDetectionFlipsAtOnce(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	tg := startGateway(t, up.Server, nil, true)
	tg.waitReady(t)
	// The upstream dies: nothing listens any more.
	tg.gate.set(false)
	up.CloseClientConnections()
	resp, body := do(t, "GET", tg.URL+"/echo", nil, nil)
	checkNotReady(t, resp, body, "unavailable")
	if got := tg.g.Readiness().State(); got != health.Unavailable {
		t.Errorf("state after a refused request = %q, want unavailable", got)
	}
	// Later requests are answered without trying the upstream.
	resp, body = do(t, "GET", tg.URL+"/echo", nil, nil)
	checkNotReady(t, resp, body, "unavailable")
	// And it comes back.
	tg.gate.set(true)
	tg.logs.Wait(t, "upstream state", func(r map[string]any) bool { return r["from"] == "unavailable" && r["to"] == "ready" })
}

// A connection that breaks before the answer gets the client a 503 with Retry-After, but
// does not on its own turn a live upstream away from everyone.
func TestConnectionLostBeforeAnswer(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	tg := startGateway(t, up.Server, nil, true)
	tg.waitReady(t)
	resp, body := do(t, "POST", tg.URL+"/drop", nil, strings.NewReader("payload"))
	checkNotReady(t, resp, body, "unavailable")
	tg.logs.Wait(t, "upstream connection lost", nil)
	if !tg.g.Readiness().IsReady() {
		t.Error("one lost connection turned a live upstream unavailable")
	}
	resp, _ = do(t, "GET", tg.URL+"/echo", nil, nil)
	if resp.StatusCode != 200 {
		t.Errorf("next request = %d, want 200", resp.StatusCode)
	}
}

func TestEventStreamIsNotBuffered(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	tg := startGateway(t, up.Server, nil, true)
	tg.waitReady(t)
	resp, err := http.Get(tg.URL + "/sse")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if got := resp.Header.Get("X-Accel-Buffering"); got != "no" {
		t.Errorf("X-Accel-Buffering = %q, want no", got)
	}
	r := bufio.NewReader(resp.Body)
	// The upstream is blocked after its first event: reading it proves nothing buffers it.
	line, err := r.ReadString('\n')
	if err != nil || line != "data: one\n" {
		t.Fatalf("first line = %q, %v; want the first event before the upstream continues", line, err)
	}
	close(up.release)
	rest, err := io.ReadAll(r)
	if err != nil || string(rest) != "\ndata: two\n\n" {
		t.Errorf("rest = %q, %v", rest, err)
	}
}

func TestWebSocketEcho(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	tg := startGateway(t, up.Server, nil, true)
	tg.waitReady(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(tg.URL, "http")+"/ws", nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.CloseNow()
	for _, msg := range []string{"hello", "again"} {
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_, got, err := c.Read(ctx)
		if err != nil || string(got) != "echo: "+msg {
			t.Fatalf("read = %q, %v; want %q", got, err, "echo: "+msg)
		}
	}
	_ = c.Close(websocket.StatusNormalClosure, "")
	rec := tg.logs.Wait(t, "request", func(r map[string]any) bool { return r["path"] == "/ws" })
	if rec["status"] != float64(101) {
		t.Errorf("access log status for the WebSocket = %v, want 101", rec["status"])
	}
}

// A browser-style handshake with "Connection: keep-alive, Upgrade" (Firefox sends it).
func TestWebSocketUpgradeWithKeepAliveToken(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	tg := startGateway(t, up.Server, nil, true)
	tg.waitReady(t)
	conn, err := net.Dial("tcp", strings.TrimPrefix(tg.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	tp := textproto.NewReader(bufio.NewReader(conn))
	status, err := tp.ReadLine()
	if err != nil || !strings.HasPrefix(status, "HTTP/1.1 101") {
		t.Fatalf("status line = %q, %v; want 101", status, err)
	}
	h, err := tp.ReadMIMEHeader()
	if err != nil || h.Get("Sec-Websocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Errorf("accept = %q, %v", h.Get("Sec-Websocket-Accept"), err)
	}
}

func TestCORS(t *testing.T) {
	t.Parallel()
	const origin = "https://app.example.com"
	up := newUpstream(t)
	tg := startGateway(t, up.Server, map[string]string{
		"CORS_ALLOW_ORIGINS": " https://app.example.com , https://other.example.com",
		"MAX_BODY_BYTES":     "16",
		"UPSTREAM_TIMEOUT":   "300ms",
	}, false)
	preflight := http.Header{"Origin": {origin}, "Access-Control-Request-Method": {"POST"}, "Access-Control-Request-Headers": {"content-type"}}

	checkCORS := func(t *testing.T, what string, resp *http.Response) {
		t.Helper()
		if got := resp.Header.Values("Access-Control-Allow-Origin"); len(got) != 1 || got[0] != origin {
			t.Errorf("%s: Access-Control-Allow-Origin = %q, want exactly [%s]", what, got, origin)
		}
		expose := strings.ToLower(strings.Join(resp.Header.Values("Access-Control-Expose-Headers"), ","))
		if !strings.Contains(expose, "retry-after") || !strings.Contains(expose, "x-request-id") {
			t.Errorf("%s: Access-Control-Expose-Headers = %q, want Retry-After and X-Request-ID", what, expose)
		}
		if !strings.Contains(strings.Join(resp.Header.Values("Vary"), ","), "Origin") {
			t.Errorf("%s: Vary = %q, want Origin", what, resp.Header.Values("Vary"))
		}
	}

	// Cold: the preflight is answered by the gateway, the request gets a 503 the page can read.
	resp, _ := do(t, "OPTIONS", tg.URL+"/echo", preflight, nil)
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != origin ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "POST") ||
		!strings.Contains(strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers")), "content-type") {
		t.Errorf("cold preflight = %d %v, want 204 with allow headers", resp.StatusCode, resp.Header)
	}
	resp, _ = do(t, "POST", tg.URL+"/echo", http.Header{"Origin": {origin}}, nil)
	if resp.StatusCode != 503 {
		t.Errorf("cold POST = %d, want 503", resp.StatusCode)
	}
	checkCORS(t, "503", resp)
	// A preflight from an origin not allowed is not the gateway's to answer.
	resp, _ = do(t, "OPTIONS", tg.URL+"/echo", http.Header{"Origin": {"https://evil.example"}, "Access-Control-Request-Method": {"POST"}}, nil)
	if resp.StatusCode != 503 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("disallowed preflight while cold = %d ACAO %q, want forwarded (503) without ACAO", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}

	tg.gate.set(true)
	tg.waitReady(t)
	// The upstream's own CORS headers are replaced, never added to.
	resp, _ = do(t, "GET", tg.URL+"/cors", http.Header{"Origin": {origin}}, nil)
	checkCORS(t, "200 from an upstream with its own CORS", resp)
	if got := resp.Header.Values("X-Request-Id"); len(got) != 1 || strings.HasPrefix(got[0], "upstream-") {
		t.Errorf("X-Request-ID = %q, want exactly the gateway's", got)
	}
	if got := resp.Header.Values("Access-Control-Allow-Credentials"); len(got) != 0 {
		t.Errorf("upstream's Access-Control-Allow-Credentials leaked through: %q", got)
	}
	resp, _ = do(t, "POST", tg.URL+"/echo", http.Header{"Origin": {origin}}, strings.NewReader(strings.Repeat("x", 17)))
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body = %d, want 413", resp.StatusCode)
	}
	checkCORS(t, "413", resp)
	resp, _ = do(t, "GET", tg.URL+"/slow", http.Header{"Origin": {origin}}, nil)
	if resp.StatusCode != http.StatusGatewayTimeout {
		t.Errorf("slow upstream = %d, want 504", resp.StatusCode)
	}
	checkCORS(t, "504", resp)
	resp, _ = do(t, "GET", tg.URL+"/cors", http.Header{"Origin": {"https://evil.example"}}, nil)
	if got := resp.Header.Values("Access-Control-Allow-Origin"); len(got) != 0 {
		t.Errorf("disallowed origin got Access-Control-Allow-Origin %q", got)
	}
	// OPTIONS that is not a preflight goes to the upstream.
	resp, _ = do(t, "OPTIONS", tg.URL+"/echo", http.Header{"Origin": {origin}}, nil)
	if resp.StatusCode != 200 || up.last().Method != "OPTIONS" {
		t.Errorf("plain OPTIONS = %d, want forwarded", resp.StatusCode)
	}
}

func TestNoCORSHeadersWhenOff(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	tg := startGateway(t, up.Server, nil, true)
	tg.waitReady(t)
	resp, _ := do(t, "GET", tg.URL+"/cors", http.Header{"Origin": {"https://app.example.com"}}, nil)
	for k := range resp.Header {
		if strings.HasPrefix(k, "Access-Control-") {
			t.Errorf("CORS off, yet %s: %q", k, resp.Header.Values(k))
		}
	}
	resp, _ = do(t, "OPTIONS", tg.URL+"/echo", http.Header{"Origin": {"https://app.example.com"}, "Access-Control-Request-Method": {"POST"}}, nil)
	if resp.StatusCode != 200 || up.last().Method != "OPTIONS" {
		t.Errorf("preflight with CORS off = %d, want forwarded to the upstream", resp.StatusCode)
	}
}

func TestRequestID(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	tg := startGateway(t, up.Server, nil, true)
	tg.waitReady(t)
	tests := []struct {
		name string
		sent string
		keep bool
	}{
		{"kept", "req-123.abc", true},
		{"generated", "", false},
		{"too long replaced", strings.Repeat("a", 200), false},
		{"bad characters replaced", "a b<script>", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.sent != "" {
				h.Set("X-Request-ID", tt.sent)
			}
			resp, _ := do(t, "GET", tg.URL+"/echo", h, nil)
			got := resp.Header.Get("X-Request-Id")
			if tt.keep && got != tt.sent {
				t.Errorf("X-Request-ID = %q, want %q kept", got, tt.sent)
			}
			if !tt.keep && (got == "" || got == tt.sent) {
				t.Errorf("X-Request-ID = %q, want a generated one", got)
			}
			if upstreamSaw := up.last().Header.Get("X-Request-Id"); upstreamSaw != got {
				t.Errorf("upstream saw %q, client got %q", upstreamSaw, got)
			}
		})
	}
}

func TestForwardedHeaders(t *testing.T) {
	t.Parallel()
	spoof := http.Header{
		"X-Forwarded-For":   {"203.0.113.7"},
		"X-Forwarded-Proto": {"https"},
		"X-Forwarded-Host":  {"owner-space.hf.space"},
		"X-Real-Ip":         {"198.51.100.66"},
		"Authorization":     {"Bearer token-abc"},
		"Cookie":            {"session=xyz"},
	}
	tests := []struct {
		name      string
		trusted   string
		wantFor   string
		wantProto string
		wantHost  func(gatewayHost string) string
	}{
		// The rightmost X-Forwarded-For entry is the resolved client: the trusted peer is not appended.
		{"trusted peer: client resolved, Proto/Host kept", "127.0.0.0/8", "203.0.113.7", "https", func(string) string { return "owner-space.hf.space" }},
		{"untrusted peer: replaced", "", "127.0.0.1", "http", func(h string) string { return h }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			up := newUpstream(t)
			tg := startGateway(t, up.Server, map[string]string{"TRUSTED_PROXIES": tt.trusted}, true)
			tg.waitReady(t)
			do(t, "GET", tg.URL+"/echo", spoof, nil)
			got := up.last()
			if v := got.Header.Get("X-Forwarded-For"); v != tt.wantFor {
				t.Errorf("X-Forwarded-For = %q, want %q", v, tt.wantFor)
			}
			if v := got.Header.Values("X-Real-Ip"); len(v) != 1 || v[0] != tt.wantFor {
				t.Errorf("X-Real-IP = %q, want [%q] (the resolved client, set afresh)", v, tt.wantFor)
			}
			if v := got.Header.Get("X-Forwarded-Proto"); v != tt.wantProto {
				t.Errorf("X-Forwarded-Proto = %q, want %q", v, tt.wantProto)
			}
			gwHost := strings.TrimPrefix(tg.URL, "http://")
			if v := got.Header.Get("X-Forwarded-Host"); v != tt.wantHost(gwHost) {
				t.Errorf("X-Forwarded-Host = %q, want %q", v, tt.wantHost(gwHost))
			}
			if got.Host != strings.TrimPrefix(up.URL, "http://") {
				t.Errorf("Host = %q, want the upstream's own %q", got.Host, strings.TrimPrefix(up.URL, "http://"))
			}
			if got.Header.Get("Authorization") != "Bearer token-abc" || got.Header.Get("Cookie") != "session=xyz" {
				t.Errorf("Authorization/Cookie not passed untouched: %q %q", got.Header.Get("Authorization"), got.Header.Get("Cookie"))
			}
		})
	}
}

func TestUpstreamTimeoutIs504JSON(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	tg := startGateway(t, up.Server, map[string]string{"UPSTREAM_TIMEOUT": "200ms"}, true)
	tg.waitReady(t)
	resp, body := do(t, "GET", tg.URL+"/slow", nil, nil)
	if resp.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("status = %d, want 504", resp.StatusCode)
	}
	if m := decode(t, body); m["error"] == nil || m["request_id"] != resp.Header.Get("X-Request-Id") {
		t.Errorf("body = %s, want error and request_id", body)
	}
	// A slow answer is not a dead upstream.
	if !tg.g.Readiness().IsReady() {
		t.Error("a timeout turned the upstream not ready")
	}
}

func TestBodyLimit(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	tg := startGateway(t, up.Server, map[string]string{"MAX_BODY_BYTES": "1KiB"}, true)
	tg.waitReady(t)
	tests := []struct {
		name    string
		body    io.Reader
		want    int
		chunked bool
	}{
		{"under", strings.NewReader(strings.Repeat("x", 1024)), 200, false},
		{"over with Content-Length", strings.NewReader(strings.Repeat("x", 1025)), 413, false},
		{"over, chunked", io.MultiReader(strings.NewReader(strings.Repeat("x", 4096))), 413, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, "POST", tg.URL+"/echo", nil, tt.body)
			if resp.StatusCode != tt.want {
				t.Errorf("status = %d, want %d (%s)", resp.StatusCode, tt.want, body)
			}
			if tt.want == 413 && decode(t, body)["error"] == nil {
				t.Errorf("413 body = %s, want JSON error", body)
			}
		})
	}
}

func TestClientGoneIsLogged499(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	tg := startGateway(t, up.Server, nil, true)
	tg.waitReady(t)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", tg.URL+"/sse?token=hunter2", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(resp.Body).ReadString('\n')
	if line != "data: one\n" {
		t.Fatalf("first line %q", line)
	}
	cancel()
	resp.Body.Close()
	rec := tg.logs.Wait(t, "request", func(r map[string]any) bool { return r["path"] == "/sse" })
	if rec["status"] != float64(499) {
		t.Errorf("access log status = %v, want 499", rec["status"])
	}
	if strings.Contains(tg.logs.String(), "hunter2") {
		t.Error("the query string reached the log")
	}
}

func TestInformationalAndTrailersPass(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	tg := startGateway(t, up.Server, nil, true)
	tg.waitReady(t)
	var got1xx []int
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		got1xx = append(got1xx, code)
		return nil
	}}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", tg.URL+"/hints", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "body" {
		t.Errorf("final answer = %d %q, want 200 body", resp.StatusCode, body)
	}
	if len(got1xx) != 1 || got1xx[0] != http.StatusEarlyHints {
		t.Errorf("1xx seen = %v, want [103]", got1xx)
	}
	if got := resp.Trailer.Get("X-Checksum"); got != "abc" {
		t.Errorf("trailer X-Checksum = %q, want abc", got)
	}
}

func TestMalformedRequestsGet4xx(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	tg := startGateway(t, up.Server, nil, true)
	tests := []struct {
		name string
		raw  string
		want string
	}{
		{"garbage request line", "NOT A REQUEST\r\n\r\n", "400"},
		{"huge header", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 128<<10) + "\r\n\r\n", "431"},
		{"bad percent escape", "GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n", "400"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", strings.TrimPrefix(tg.URL, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
			_, _ = io.WriteString(conn, tt.raw)
			status, err := bufio.NewReader(conn).ReadString('\n')
			if err != nil || !strings.Contains(status, " "+tt.want+" ") {
				t.Errorf("status line = %q, %v; want %s", status, err, tt.want)
			}
		})
	}
}

func TestMisconfigured(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	tg := startGateway(t, up.Server, map[string]string{
		"REQUIRED_ENV":   "OPENAI_API_KEY,DATABASE_URL",
		"DATABASE_URL":   "postgres://user:hunter2-secret@db/chat",
		"OPENAI_API_KEY": "",
	}, true)
	rec := tg.logs.Wait(t, "misconfigured: required variables are missing; the upstream is not started", nil)
	if rec["missing"] != "OPENAI_API_KEY" {
		t.Errorf("log missing = %v, want OPENAI_API_KEY", rec["missing"])
	}
	resp, body := do(t, "POST", tg.URL+"/chat", nil, nil)
	m := checkNotReady(t, resp, body, "misconfigured")
	if fmt.Sprint(m["missing"]) != "[OPENAI_API_KEY]" || !strings.Contains(fmt.Sprint(m["hint"]), "Variables and secrets") {
		t.Errorf("body = %s, want the missing name and the hint", body)
	}
	resp, body = do(t, "GET", tg.URL+"/ready", nil, nil)
	if resp.StatusCode != 503 || decode(t, body)["state"] != "misconfigured" {
		t.Errorf("/ready = %d %s", resp.StatusCode, body)
	}
	resp, _ = do(t, "GET", tg.URL+"/healthz", nil, nil)
	if resp.StatusCode != 200 {
		t.Errorf("/healthz = %d, want 200 (liveness must not restart a misconfigured container)", resp.StatusCode)
	}
	if strings.Contains(string(body), "hunter2") {
		t.Error("a secret value reached a response")
	}
	// Even a live upstream is not used.
	if up.last() != nil {
		t.Error("a request reached the upstream while misconfigured")
	}
}

func TestMisconfigurationIsRepeatedInTheLog(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	tg := startGatewayWith(t, up.Server, map[string]string{"REQUIRED_ENV": "OPENAI_API_KEY"}, true, Options{RemindEvery: 5 * time.Millisecond})
	const msg = "misconfigured: required variables are missing; the upstream is not started"
	tg.logs.WaitN(t, msg, 3)
}

func TestGracefulDrainLetsStreamFinish(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	tg := startGateway(t, up.Server, map[string]string{"SHUTDOWN_TIMEOUT": "10s"}, true)
	tg.waitReady(t)
	r := openFirstEvent(t, tg.URL+"/sse")
	tg.cancel() // SIGTERM
	tg.logs.Wait(t, "shutting down: draining requests", nil)
	// New connections are refused once draining.
	if _, err := net.DialTimeout("tcp", strings.TrimPrefix(tg.URL, "http://"), time.Second); err == nil {
		t.Error("a new connection was accepted while draining")
	}
	select {
	case <-tg.done:
		t.Fatal("Serve returned while a stream was still open")
	default:
	}
	close(up.release)
	rest, err := io.ReadAll(r)
	if err != nil || string(rest) != "\ndata: two\n\n" {
		t.Errorf("stream after SIGTERM = %q, %v; want it to finish", rest, err)
	}
	tg.stop(t)
}

func TestDrainDeadlineEndsStreamsAndWebSockets(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	tg := startGateway(t, up.Server, map[string]string{"SHUTDOWN_TIMEOUT": "300ms"}, true)
	tg.waitReady(t)
	r := openFirstEvent(t, tg.URL+"/sse")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(tg.URL, "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	tg.cancel()
	// The event stream never ends by itself: at the deadline it is ended cleanly.
	rest, err := io.ReadAll(r)
	if err != nil {
		t.Errorf("stream cut at the drain deadline with %v, want a clean end", err)
	}
	if string(rest) != "\n" {
		t.Errorf("rest = %q", rest)
	}
	_, _, err = ws.Read(ctx)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusGoingAway {
		t.Errorf("WebSocket read after shutdown = %v, want close 1001", err)
	}
	tg.stop(t)
}

// TestGatewayLogsStartupProgress: a gateway whose upstream refuses connections logs progress
// lines naming the refusal, and turns ready once the upstream is reachable.
func TestGatewayLogsStartupProgress(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	tg := startGatewayWith(t, up.Server, nil, false, Options{ProgressEvery: 100 * time.Millisecond})
	rec := tg.logs.Wait(t, "waiting for upstream", nil)
	if rec["state"] != "starting" || rec["last_check"] != "connection refused" {
		t.Errorf("progress line: got state %v, last_check %v; want starting, connection refused", rec["state"], rec["last_check"])
	}
	// Rounded to 100ms, so at least the interval.
	if elapsed, _ := rec["elapsed"].(float64); elapsed < float64(100*time.Millisecond) {
		t.Errorf("progress line: got elapsed %v ns, want at least the 100ms interval", rec["elapsed"])
	}
	tg.gate.set(true)
	tg.waitReady(t)
}
