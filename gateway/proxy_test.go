package gateway

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/hfgate/hfgate/gateway/health"
)

func TestIsEventStream(t *testing.T) {
	tests := []struct {
		name, contentType string
		want              bool
	}{
		{name: "plain", contentType: "text/event-stream", want: true},
		{name: "charset", contentType: "text/event-stream; charset=utf-8", want: true},
		{name: "any case", contentType: "Text/Event-Stream;charset=UTF-8", want: true},
		{name: "leading space", contentType: " text/event-stream", want: true},
		{name: "space before parameters", contentType: "text/event-stream ; charset=utf-8", want: true},
		{name: "json", contentType: "application/json"},
		{name: "empty"},
		{name: "longer type", contentType: "text/event-streams"},
		{name: "prefix only", contentType: "text/event"},
		{name: "malformed parameters", contentType: "text/event-stream; =x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := isEventStream(tt.contentType); got != tt.want {
				t.Errorf("isEventStream(%q): got %v, want %v", tt.contentType, got, tt.want)
			}
		})
	}
}

func BenchmarkIsEventStream(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if isEventStream("application/json") {
			b.Fatal("application/json is not an event stream")
		}
	}
}

// writeCounter counts the writes on the upstream connections it dials.
type writeCounter struct {
	mu     sync.Mutex
	writes [][]byte
}

func (wc *writeCounter) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &countedConn{Conn: c, wc: wc}, nil
}

type countedConn struct {
	net.Conn
	wc *writeCounter
}

func (c *countedConn) Write(p []byte) (int, error) {
	c.wc.mu.Lock()
	c.wc.writes = append(c.wc.writes, append([]byte(nil), p...))
	c.wc.mu.Unlock()
	return c.Conn.Write(p)
}

// TestSmallBodyOneWrite: a request whose body was read whole (GetBody set, as the body buffer
// middleware does) goes upstream in one write, headers and body together; a streamed body
// still goes as it comes.
func TestSmallBodyOneWrite(t *testing.T) {
	t.Parallel()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	defer up.Close()
	target, _ := url.Parse(up.URL)
	for _, tt := range []struct {
		name   string
		whole  bool
		writes int
	}{
		{"read whole", true, 1},
		{"streamed", false, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var wc writeCounter
			p := newProxy(proxyConfig{
				Target:    target,
				Transport: newUpstreamTransport(wc.dial, 0),
				Readiness: health.NewTracker(health.TrackerOptions{Logger: slog.New(slog.DiscardHandler), Now: time.Now}),
				Logger:    slog.New(slog.DiscardHandler),
				Answers:   &answers{},
			})
			body := []byte(`{"message":"hello"}`)
			in := httptest.NewRequest(http.MethodPost, "/chat", nil)
			in.ContentLength = int64(len(body))
			in.Body = io.NopCloser(struct{ io.Reader }{bytes.NewReader(body)}) // not known in memory
			if tt.whole {
				in.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
			}
			rec := httptest.NewRecorder()
			p.rp.ServeHTTP(rec, in)
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d", rec.Code)
			}
			wc.mu.Lock()
			defer wc.mu.Unlock()
			if len(wc.writes) != tt.writes || !bytes.HasSuffix(wc.writes[len(wc.writes)-1], body) {
				t.Errorf("%d writes upstream (%q), want %d ending with the body", len(wc.writes), wc.writes, tt.writes)
			}
		})
	}
}
