package gateway

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/hfgate/hfgate/gateway/health"
)

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
	if got := tg.g.readiness.State(); got != health.Unavailable {
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
	if !tg.g.readiness.IsReady() {
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
	if !tg.g.readiness.IsReady() {
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
