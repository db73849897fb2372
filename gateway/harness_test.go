package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/hfgate/hfgate/config"
	"github.com/hfgate/hfgate/gateway/clientip"
	"github.com/hfgate/hfgate/logging/logtest"
)

// The gateway package's one test harness: a gateway on a loopback port in front of a test
// upstream, with a dial gate that plays an upstream not listening yet, and the helpers the
// tests share.

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
	gate := &dialGate{open: open}
	opts.Logger, opts.DialContext, opts.ProbeInterval = logs.Logger(cfg.Secrets...), gate.dial, 20*time.Millisecond
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

// entered returns r as Gateway.ServeHTTP hands it on, with its flight (the client resolved
// against trusted), for a test that drives the proxy alone.
func entered(r *http.Request, trusted []netip.Prefix) *http.Request {
	f := newFlight(r.Context(), clientip.Resolve(r.RemoteAddr, r.Header["X-Forwarded-For"], trusted), time.Now(), time.Time{})
	return r.WithContext(f.withTrace())
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
