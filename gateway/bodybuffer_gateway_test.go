package gateway

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// connCountingUpstream is an upstream that counts the connections made to it and the requests
// other than health checks, and answers /echo with what it received of the body.
type connCountingUpstream struct {
	*httptest.Server
	opened   atomic.Int64
	requests atomic.Int64
}

// upstreamEcho is /echo's answer.
type upstreamEcho struct {
	ContentLength    int64    `json:"content_length"`
	TransferEncoding []string `json:"transfer_encoding"`
	Body             string   `json:"body"`
}

func newConnCountingUpstream(t *testing.T) *connCountingUpstream {
	t.Helper()
	u := &connCountingUpstream{}
	u.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			return
		}
		u.requests.Add(1)
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		_ = json.NewEncoder(w).Encode(upstreamEcho{ContentLength: r.ContentLength, TransferEncoding: r.TransferEncoding, Body: string(b)})
	}))
	u.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			u.opened.Add(1)
		}
	}
	u.Start()
	t.Cleanup(func() {
		u.CloseClientConnections()
		u.Close()
	})
	return u
}

// sendPartialBody opens a connection to the gateway and sends a POST's headers and only the
// first half of its body.
func sendPartialBody(t *testing.T, gatewayURL string, body string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(gatewayURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second)) // a safety net, not the test
	head := fmt.Sprintf("POST /echo HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(body))
	if _, err := io.WriteString(conn, head+body[:len(body)/2]); err != nil {
		t.Fatal(err)
	}
	return conn
}

// TestSlowBodiesOpenNoUpstreamConnection: 50 clients that send their headers and half a small
// body tie up no upstream connection (without BodyBuffer, each would hold one), a normal request
// meanwhile is answered, and each stalled body gets the gateway's 408 JSON once
// BODY_READ_TIMEOUT has passed, with the connection closed.
func TestSlowBodiesOpenNoUpstreamConnection(t *testing.T) {
	t.Parallel()
	up := newConnCountingUpstream(t)
	tg := startGateway(t, up.Server, map[string]string{"BODY_READ_TIMEOUT": "1s"}, true)
	tg.waitReady(t)
	before := up.opened.Load() // the prober's

	const slow = 50
	conns := make([]net.Conn, slow)
	for i := range conns {
		conns[i] = sendPartialBody(t, tg.URL, `{"message":"a message that takes its time"}`)
	}

	resp, body := do(t, http.MethodPost, tg.URL+"/echo", nil, strings.NewReader(`{"message":"hi"}`))
	var echoed upstreamEcho
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &echoed) != nil || echoed.Body != `{"message":"hi"}` {
		t.Fatalf("normal request: got %d %s, want 200 with its body echoed", resp.StatusCode, body)
	}

	for i, conn := range conns {
		br := bufio.NewReader(conn)
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("slow client %d: read answer: %v", i, err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusRequestTimeout {
			t.Fatalf("slow client %d: got %d %s, want 408", i, res.StatusCode, b)
		}
		if m := decode(t, b); m["error"] == nil || m["request_id"] != res.Header.Get("X-Request-Id") {
			t.Errorf("slow client %d: 408 body %s, want the fixed JSON error with the request ID", i, b)
		}
		if !res.Close {
			t.Errorf("slow client %d: 408 without Connection: close", i)
		}
		if _, err := br.ReadByte(); err != io.EOF {
			t.Errorf("slow client %d: after the 408 read got %v, want EOF (connection closed)", i, err)
		}
	}

	if n := up.requests.Load(); n != 1 {
		t.Errorf("requests that reached the upstream: got %d, want 1 (the normal one)", n)
	}
	if recs := tg.logs.Records(t, "request"); len(recs) < 1 {
		t.Errorf("no access lines")
	} else {
		n408 := 0
		for _, r := range recs {
			if r["status"] == float64(http.StatusRequestTimeout) {
				n408++
			}
		}
		if n408 != slow {
			t.Errorf("access lines with status 408: %d, want %d (a stalled body is not a client that left)", n408, slow)
		}
	}
	if n := up.opened.Load() - before; n > 1 {
		t.Errorf("upstream connections opened while %d bodies were slow: got %d, want at most 1 (the normal request's)", slow, n)
	}
}

// TestBodyShapesReachUpstream: a small body, also a chunked one, reaches the upstream with a
// Content-Length; a chunked body beyond BUFFER_BODY_BYTES streams on chunked, intact; a chunked
// request's connection still ends after the answer (the smuggling rule in requests.go).
func TestBodyShapesReachUpstream(t *testing.T) {
	t.Parallel()
	up := newConnCountingUpstream(t)
	tg := startGateway(t, up.Server, map[string]string{"BUFFER_BODY_BYTES": "1KiB"}, true)
	tg.waitReady(t)
	small := `{"message":"hello"}`
	long := strings.Repeat("0123456789", 1000)
	tests := []struct {
		name      string
		body      string
		chunked   bool
		wantCL    int64
		wantTE    []string
		wantClose bool
	}{
		{name: "small", body: small, wantCL: int64(len(small))},
		{name: "small chunked", body: small, chunked: true, wantCL: int64(len(small)), wantClose: true},
		{name: "long chunked", body: long, chunked: true, wantCL: -1, wantTE: []string{"chunked"}, wantClose: true},
		{name: "long with Content-Length", body: long, wantCL: int64(len(long))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader = strings.NewReader(tt.body)
			if tt.chunked {
				body = io.MultiReader(body) // hides the length: sent chunked
			}
			resp, b := do(t, http.MethodPost, tg.URL+"/echo", nil, body)
			var got upstreamEcho
			if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &got) != nil {
				t.Fatalf("got %d %s, want 200 from the upstream", resp.StatusCode, b)
			}
			if got.Body != tt.body || got.ContentLength != tt.wantCL || fmt.Sprint(got.TransferEncoding) != fmt.Sprint(tt.wantTE) {
				t.Errorf("upstream got %d bytes, Content-Length %d, Transfer-Encoding %v; want %d bytes, %d, %v",
					len(got.Body), got.ContentLength, got.TransferEncoding, len(tt.body), tt.wantCL, tt.wantTE)
			}
			if resp.Close != tt.wantClose {
				t.Errorf("connection closed after the answer: got %v, want %v", resp.Close, tt.wantClose)
			}
		})
	}
}
