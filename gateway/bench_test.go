package gateway

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hfgate/hfgate/config"
	"github.com/hfgate/hfgate/logging"
)

// The benchmarks below measure the hot path in-process: a keep-alive client, the gateway's
// handler on an httptest server, and an httptest upstream, all on loopback. Allocations are
// those of the whole process (client, gateway and upstream); BenchmarkDirectSmallJSON is the
// same request without the gateway, so the difference is the gateway's share. Run them with
//
//	go test -run '^$' -bench . -benchtime=2s ./gateway/
//
// Figures and caveats are in docs/performance.md.

const benchJSON = `{"reply":"You said: hello. Thanks for chatting!","model":"echo-bot-1"}`

// benchEvents is the number of events BenchmarkEventStream's upstream sends per stream.
const benchEvents = 100

// newBenchUpstream serves a small JSON on /chat and a stream of benchEvents flushed events on
// /chat/stream.
func newBenchUpstream(b *testing.B) *httptest.Server {
	b.Helper()
	body := []byte(benchJSON)
	event := []byte("data: {\"token\": \"tok \"}\n\n")
	mux := http.NewServeMux()
	mux.HandleFunc("/chat", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
	mux.HandleFunc("/chat/stream", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		f := w.(http.Flusher)
		for range benchEvents {
			_, _ = w.Write(event)
			f.Flush()
		}
	})
	srv := httptest.NewServer(mux)
	b.Cleanup(srv.Close)
	return srv
}

// newBenchGateway serves a gateway in front of upstreamURL, logging at level to a discarding
// writer in the default text format (so the access line is still formatted at info). The
// gateway is marked ready unless ready is false; the prober and supervisor do not run.
func newBenchGateway(b *testing.B, upstreamURL string, environ map[string]string, level slog.Level, ready bool) *httptest.Server {
	b.Helper()
	env := map[string]string{"UPSTREAM_URL": upstreamURL, "HOST": "127.0.0.1"}
	for k, v := range environ {
		env[k] = v
	}
	cfg, err := config.Load(env)
	if err != nil {
		b.Fatalf("config: %v", err)
	}
	g, err := New(cfg, Options{Logger: logging.New(io.Discard, logging.Options{Level: level, Secrets: cfg.Secrets})})
	if err != nil {
		b.Fatalf("New: %v", err)
	}
	if ready {
		g.readiness.MarkReady()
	}
	srv := httptest.NewServer(g)
	b.Cleanup(srv.Close)
	return srv
}

// newBenchClient returns a keep-alive client; the benchmarks run one request at a time, so one
// connection is reused throughout.
func newBenchClient(b *testing.B) *http.Client {
	b.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: 4, DisableCompression: true}
	b.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// benchPost sends POST url with a small JSON body and checks the status; it drains and closes
// the response so the connection is reused.
func benchPost(b *testing.B, c *http.Client, url string, header http.Header, want int) {
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"message":"hello"}`))
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := c.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	_ = res.Body.Close()
	if res.StatusCode != want {
		b.Fatalf("status = %d, want %d", res.StatusCode, want)
	}
}

// BenchmarkDirectSmallJSON is the baseline: the same request as BenchmarkProxySmallJSON, sent
// to the upstream without the gateway.
func BenchmarkDirectSmallJSON(b *testing.B) {
	up := newBenchUpstream(b)
	c := newBenchClient(b)
	b.ReportAllocs()
	for b.Loop() {
		benchPost(b, c, up.URL+"/chat", nil, http.StatusOK)
	}
}

// BenchmarkProxySmallJSON is one POST /chat through the gateway to an upstream answering a small
// JSON: request ID, access log, recover, body limit, ReverseProxy. log=info formats the access
// line (to a discarding writer); log=warn skips it, as LOG_LEVEL=warn does.
func BenchmarkProxySmallJSON(b *testing.B) {
	up := newBenchUpstream(b)
	for _, bc := range []struct {
		name  string
		level slog.Level
	}{
		{"log=info", slog.LevelInfo},
		{"log=warn", slog.LevelWarn},
	} {
		b.Run(bc.name, func(b *testing.B) {
			gw := newBenchGateway(b, up.URL, nil, bc.level, true)
			c := newBenchClient(b)
			b.ReportAllocs()
			for b.Loop() {
				benchPost(b, c, gw.URL+"/chat", nil, http.StatusOK)
			}
		})
	}
}

// BenchmarkProxySmallJSONCORS is BenchmarkProxySmallJSON with CORS_ALLOW_ORIGINS set and an
// allowed Origin on every request (the cross-origin frontend's case).
func BenchmarkProxySmallJSONCORS(b *testing.B) {
	up := newBenchUpstream(b)
	gw := newBenchGateway(b, up.URL, map[string]string{"CORS_ALLOW_ORIGINS": "https://example.com"}, slog.LevelInfo, true)
	c := newBenchClient(b)
	h := http.Header{"Origin": {"https://example.com"}}
	// Fail early if CORS is not actually on the path being measured.
	req, _ := http.NewRequest(http.MethodPost, gw.URL+"/chat", strings.NewReader(`{}`))
	req.Header.Set("Origin", "https://example.com")
	res, err := c.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	_ = res.Body.Close()
	if got := res.Header.Get("Access-Control-Allow-Origin"); got != "https://example.com" {
		b.Fatalf("Access-Control-Allow-Origin = %q, want %q", got, "https://example.com")
	}
	b.ReportAllocs()
	for b.Loop() {
		benchPost(b, c, gw.URL+"/chat", h, http.StatusOK)
	}
}

// BenchmarkNotReady503 is the cold answer: the gateway is starting, so it renders the 503 JSON
// with Retry-After itself and the upstream is never contacted.
func BenchmarkNotReady503(b *testing.B) {
	up := newBenchUpstream(b)
	gw := newBenchGateway(b, up.URL, nil, slog.LevelInfo, false)
	c := newBenchClient(b)
	b.ReportAllocs()
	for b.Loop() {
		benchPost(b, c, gw.URL+"/chat", nil, http.StatusServiceUnavailable)
	}
}

// BenchmarkEventStream is one GET /chat/stream through the gateway: the upstream writes and
// flushes benchEvents small events, and the client reads them all. ns/op and allocs/op are per
// stream; ns/event is ns/op divided by benchEvents. The direct sub-benchmark is the baseline.
func BenchmarkEventStream(b *testing.B) {
	up := newBenchUpstream(b)
	for _, bc := range []struct {
		name string
		url  func(b *testing.B) string
	}{
		{"direct", func(*testing.B) string { return up.URL }},
		{"gateway", func(b *testing.B) string { return newBenchGateway(b, up.URL, nil, slog.LevelInfo, true).URL }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			url := bc.url(b) + "/chat/stream"
			c := newBenchClient(b)
			b.ReportAllocs()
			for b.Loop() {
				if n := readStream(b, c, url); n != benchEvents {
					b.Fatalf("got %d events, want %d", n, benchEvents)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchEvents), "ns/event")
		})
	}
}

// readStream GETs an event stream and returns the number of events read.
func readStream(b *testing.B, c *http.Client, url string) int {
	res, err := c.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b.Fatalf("status = %d, want 200", res.StatusCode)
	}
	n := 0
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		if bytes.HasPrefix(sc.Bytes(), []byte("data: ")) {
			n++
		}
	}
	if err := sc.Err(); err != nil {
		b.Fatal(err)
	}
	return n
}
