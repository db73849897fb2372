package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hfgate/hfgate/config"
	"github.com/hfgate/hfgate/gateway/health"
)

// TestProxyErrorMapping: every way a request to the upstream can fail maps to one of the
// fixed answers, and none of them carries the error's text.
func TestProxyErrorMapping(t *testing.T) {
	cfg, err := config.Load(map[string]string{"UPSTREAM_URL": "http://127.0.0.1:9"})
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(cfg, Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"refused", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, 503},
		{"unresolvable", &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "x.invalid", IsNotFound: true}}, 503},
		{"reset", fmt.Errorf("read: %w", syscall.ECONNRESET), 503},
		{"broken pipe", fmt.Errorf("write: %w", syscall.EPIPE), 503},
		{"EOF", fmt.Errorf("net/http: Transport failed to read from server: %w", io.EOF), 503},
		{"idle connection closed", errors.New("http: server closed idle connection"), 503},
		{"timeout", &net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}, 504},
		{"body too large", &http.MaxBytesError{Limit: 1}, 413},
		{"malformed answer", errors.New(`malformed HTTP response "this is not HTTP"`), 502},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g.readiness.MarkReady()
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodPost, "/chat", nil).WithContext(context.Background())
			g.proxy.handleError(rec, req, tt.err)
			if rec.Code != tt.want {
				t.Errorf("status = %d, want %d (body %s)", rec.Code, tt.want, rec.Body)
			}
			if b := rec.Body.String(); len(b) == 0 || b[0] != '{' {
				t.Errorf("body = %q, want JSON", b)
			}
			for _, leak := range []string{tt.err.Error(), "127.0.0.1", "x.invalid"} {
				if leak != "" && len(leak) > 3 && strings.Contains(rec.Body.String(), leak) {
					t.Errorf("body %s carries %q", rec.Body, leak)
				}
			}
		})
	}
}

// TestUpstreamCutBeforeBody: an upstream that sends its headers and dies before the first byte
// of its body gets the client the not-ready 503 (with none of the upstream's headers); one
// that dies after some of the body has reached the client gets the connection cut, never a
// short answer passed off as whole.
func TestUpstreamCutBeforeBody(t *testing.T) {
	t.Parallel()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 100\r\nSet-Cookie: upstream=1\r\nX-Upstream: yes\r\n\r\n")
		if r.URL.Path == "/some-body" {
			_, _ = brw.WriteString(strings.Repeat("x", 40))
		}
		_ = brw.Flush()
	}))
	t.Cleanup(up.Close)
	tg := startGateway(t, up, map[string]string{"CORS_ALLOW_ORIGINS": "https://app.example"}, true)
	tg.waitReady(t)

	resp, body := do(t, "GET", tg.URL+"/no-body", http.Header{"Origin": {"https://app.example"}}, nil)
	checkNotReady(t, resp, body, "unavailable")
	for _, h := range []string{"Set-Cookie", "X-Upstream"} {
		if v := resp.Header.Get(h); v != "" {
			t.Errorf("the 503 carries the upstream's %s: %q", h, v)
		}
	}
	if resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" {
		t.Errorf("the 503 lost the gateway's CORS headers: %v", resp.Header)
	}

	resp2, err := http.Get(tg.URL + "/some-body")
	if err == nil {
		b, rerr := io.ReadAll(resp2.Body)
		resp2.Body.Close()
		if rerr == nil {
			t.Errorf("a body cut after 40 of 100 bytes read as whole: %d %q", resp2.StatusCode, b)
		}
	}
}

// chunkReader returns its chunks one Read at a time, then err.
type chunkReader struct {
	chunks []string
	err    error
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.chunks) == 0 {
		return 0, r.err
	}
	n := copy(p, r.chunks[0])
	r.chunks[0] = r.chunks[0][n:]
	if r.chunks[0] == "" {
		r.chunks = r.chunks[1:]
	}
	return n, nil
}

func (r *chunkReader) Close() error { return nil }

// TestEventStreamEndsAtAnEventBoundary: a stream that breaks in the middle of an event ends
// after the last whole event; events split across reads are passed on whole.
func TestEventStreamEndsAtAnEventBoundary(t *testing.T) {
	p := &proxy{logger: slog.New(slog.DiscardHandler), readiness: health.NewTracker(health.TrackerOptions{Logger: slog.New(slog.DiscardHandler), Now: time.Now})}
	tests := []struct {
		name   string
		chunks []string
		err    error
		bufLen int
		want   string
	}{
		{"break mid-event", []string{"data: a\n\n", "data: b\n\ndata: {\"tok"}, syscall.ECONNRESET, 64, "data: a\n\ndata: b\n\n"},
		{"boundary split across reads", []string{"data: a\n", "\ndata: b", "\n\n"}, syscall.ECONNRESET, 64, "data: a\n\ndata: b\n\n"},
		{"CRLF events", []string{"data: a\r\n\r\ndata: b\r\n"}, syscall.ECONNRESET, 64, "data: a\r\n\r\n"},
		{"clean end keeps the upstream's tail", []string{"data: a\n\ndata: b"}, io.EOF, 64, "data: a\n\ndata: b"},
		{"event longer than the buffer passes", []string{strings.Repeat("x", 20), "\n\n"}, syscall.ECONNRESET, 8, strings.Repeat("x", 20) + "\n\n"},
		{"nothing whole", []string{"data: partial"}, syscall.ECONNRESET, 64, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &eventStreamBody{ReadCloser: &chunkReader{chunks: append([]string(nil), tt.chunks...), err: tt.err}, p: p}
			var got []byte
			buf := make([]byte, tt.bufLen)
			for range 100 {
				n, err := b.Read(buf)
				got = append(got, buf[:n]...)
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("Read error %v, want only io.EOF", err)
				}
			}
			if string(got) != tt.want {
				t.Errorf("passed on %q, want %q", got, tt.want)
			}
		})
	}
}
