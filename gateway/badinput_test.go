package gateway

// Bad input and attack shapes sent as raw bytes to a running gateway: oversized and malformed
// requests, request smuggling shapes, absolute-URI and CONNECT requests, path tricks,
// slowloris. docs/reliability.md lists what each gets and why.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// recordingUpstream answers every request with a JSON echo of what it received and records
// each request line (method and escaped path) other than the prober's.
type recordingUpstream struct {
	*httptest.Server
	mu   sync.Mutex
	seen []seenRequest
}

type seenRequest struct {
	Method, URI, Host string
	BodyLen           int
	ContentLength     []string
}

func newRecordingUpstream(t *testing.T) *recordingUpstream {
	t.Helper()
	u := &recordingUpstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			return
		}
		body, _ := io.ReadAll(r.Body)
		s := seenRequest{Method: r.Method, URI: r.RequestURI, Host: r.Host, BodyLen: len(body), ContentLength: r.Header.Values("Content-Length")}
		u.mu.Lock()
		u.seen = append(u.seen, s)
		u.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s)
	}))
	t.Cleanup(u.Close)
	return u
}

// take returns the requests seen since the last call, except those to /late: requests
// whose arrival at the upstream races the test's next step.
func (u *recordingUpstream) take() []seenRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	var s []seenRequest
	for _, r := range u.seen {
		if r.URI != "/late" {
			s = append(s, r)
		}
	}
	u.seen = nil
	return s
}

// rawExchange writes raw to a new connection and reads every response until the server
// closes the connection or goes quiet for quiet. It reports whether the server closed it.
func rawExchange(t *testing.T, addr, raw string, quiet time.Duration) (resps []*http.Response, bodies [][]byte, closed bool) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Written beside the reading: a server that refuses an oversized head answers and closes
	// before it has read all of it, and a blocked writer would never see that answer.
	go func() { _, _ = io.WriteString(conn, raw) }()
	br := bufio.NewReader(conn)
	for {
		// The first answer may take a while on a busy machine; only after it does a quiet
		// period mean that no further answer is coming.
		wait := quiet
		if len(resps) == 0 {
			wait = max(quiet, 5*time.Second)
		}
		_ = conn.SetReadDeadline(time.Now().Add(wait))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return resps, bodies, false
			}
			return resps, bodies, true // EOF or reset: the server closed the connection
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		resps, bodies = append(resps, resp), append(bodies, b)
	}
}

// checkFixedErrorBody asserts a gateway error answer: JSON with an error message and the
// request ID, and nothing internal.
func checkFixedErrorBody(t *testing.T, resp *http.Response, body []byte, upstreamAddr string) {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q, want JSON", ct)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil || m["error"] == nil {
		t.Errorf("body = %q, want a JSON object with error", body)
	}
	checkNoInternals(t, string(body), upstreamAddr)
}

// internalMarkers are strings that would betray an internal address, a Go error or a stack.
var internalMarkers = []string{"127.0.0.1", "localhost", "dial ", "tcp ", "EOF", "goroutine ", ".go:", "panic", "net/http", "connection refused", "i/o timeout"}

func checkNoInternals(t *testing.T, body, upstreamAddr string) {
	t.Helper()
	for _, m := range append(slices.Clone(internalMarkers), upstreamAddr) {
		if m != "" && strings.Contains(body, m) {
			t.Errorf("answer body leaks %q: %s", m, body)
		}
	}
}

func TestBadInputRawRequests(t *testing.T) {
	t.Parallel()
	up := newRecordingUpstream(t)
	tg := startGateway(t, up.Server, map[string]string{"MAX_BODY_BYTES": "1KiB"}, true)
	tg.waitReady(t)
	addr := strings.TrimPrefix(tg.URL, "http://")
	upHost := strings.TrimPrefix(up.URL, "http://")

	const h = "Host: space.example\r\n"
	// Just over the 64 KiB (plus Go's 4 KiB slack) limit: much more, and the server's reset
	// of the unread rest can overtake its answer.
	manyHeaders := strings.Repeat("X-A: b\r\n", 9000)
	tests := []struct {
		name string
		raw  string
		// want is the status of each answer on the connection, in order.
		want []int
		// forwarded is the request line (method, URI) the upstream must see, in order; none
		// for a request that must not reach it.
		forwarded []string
		// jsonError: the (first) answer is one of the gateway's fixed JSON errors.
		jsonError bool
		// closed: the server must close the connection after the last answer.
		closed bool
		check  func(t *testing.T, seen []seenRequest)
	}{
		{name: "garbage request line", raw: "NOT A REQUEST\r\n\r\n", want: []int{400}, closed: true},
		{name: "HTTP/2 preface on HTTP/1", raw: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", want: []int{404}, jsonError: true},
		{name: "oversized header", raw: "GET /x HTTP/1.1\r\n" + h + "X-Big: " + strings.Repeat("a", 70<<10) + "\r\n\r\n", want: []int{431}, closed: true},
		{name: "too many headers", raw: "GET /x HTTP/1.1\r\n" + h + manyHeaders + "\r\n", want: []int{431}, closed: true},
		{name: "NUL in path", raw: "GET /a\x00b HTTP/1.1\r\n" + h + "\r\n", want: []int{400}, closed: true},
		{name: "control byte in query", raw: "GET /a?\x01 HTTP/1.1\r\n" + h + "\r\n", want: []int{400}, closed: true},
		{name: "bad percent escape", raw: "GET /%zz HTTP/1.1\r\n" + h + "\r\n", want: []int{400}, closed: true},
		{name: "missing Host", raw: "GET /x HTTP/1.1\r\n\r\n", want: []int{400}, closed: true},
		{name: "two Host headers", raw: "GET /x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", want: []int{400}, closed: true},
		// RFC 9112 section 5.2: reject, or replace the fold with a space before forwarding. Go
		// does the latter.
		{name: "obsolete line folding is unfolded", raw: "GET /x HTTP/1.1\r\n" + h + "X-A: b\r\n folded\r\n\r\n", want: []int{200}, forwarded: []string{"GET /x"}},
		{name: "space in header name", raw: "GET /x HTTP/1.1\r\n" + h + "Bad Name: v\r\n\r\n", want: []int{400}, closed: true},
		{
			name: "differing Content-Length headers",
			raw:  "POST /x HTTP/1.1\r\n" + h + "Content-Length: 4\r\nContent-Length: 5\r\n\r\nabcde",
			want: []int{400}, closed: true,
		},
		{
			name: "Content-Length in a comma list",
			raw:  "POST /x HTTP/1.1\r\n" + h + "Content-Length: 4, 5\r\n\r\nabcde",
			want: []int{400}, closed: true,
		},
		{
			name: "identical Content-Length headers are folded into one",
			raw:  "POST /x HTTP/1.1\r\n" + h + "Content-Length: 4\r\nContent-Length: 4\r\n\r\nabcd",
			want: []int{200}, forwarded: []string{"POST /x"},
			check: func(t *testing.T, seen []seenRequest) {
				if len(seen) == 1 && (seen[0].BodyLen != 4 || len(seen[0].ContentLength) != 1) {
					t.Errorf("upstream saw body %d bytes, Content-Length %q; want 4 and one header", seen[0].BodyLen, seen[0].ContentLength)
				}
			},
		},
		{
			// CL.TE: a front proxy that believes Content-Length would take the smuggled request
			// for body bytes; here the chunked body ends at "0", and the rest must not be read
			// as a request of its own.
			name: "Content-Length with Transfer-Encoding: the smuggled request is never read",
			raw: "POST /x HTTP/1.1\r\n" + h + "Content-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n" +
				"0\r\n\r\nGET /smuggled HTTP/1.1\r\n" + h + "\r\n",
			want: []int{200}, forwarded: []string{"POST /x"}, closed: true,
		},
		{
			name: "chunked body alone also ends the connection",
			raw:  "POST /x HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /second HTTP/1.1\r\n" + h + "\r\n",
			want: []int{200}, forwarded: []string{"POST /x"}, closed: true,
		},
		{name: "Transfer-Encoding list", raw: "POST /x HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", want: []int{501}, closed: true},
		{name: "Transfer-Encoding unknown", raw: "POST /x HTTP/1.1\r\n" + h + "Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", want: []int{501}, closed: true},
		{name: "two Transfer-Encoding headers", raw: "POST /x HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", want: []int{501}, closed: true},
		{
			name: "body over MAX_BODY_BYTES refused before it is sent",
			// The body is never written: the answer must come from the header alone.
			raw:  "POST /x HTTP/1.1\r\n" + h + "Content-Length: 104857600\r\n\r\n",
			want: []int{413}, jsonError: true,
		},
		{
			// The head of the body may or may not reach the upstream before the limit trips:
			// /late is left out of what the upstream saw.
			name: "chunked body over MAX_BODY_BYTES",
			raw:  "POST /late HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n800\r\n" + strings.Repeat("x", 2048) + "\r\n0\r\n\r\n",
			want: []int{413}, jsonError: true, closed: true,
		},
		{
			name: "absolute URI naming another host goes to the upstream only",
			raw:  "GET http://evil.example:8080/x?q=1 HTTP/1.1\r\nHost: evil.example:8080\r\n\r\n",
			want: []int{200}, forwarded: []string{"GET /x?q=1"},
			check: func(t *testing.T, seen []seenRequest) {
				if len(seen) == 1 && seen[0].Host != upHost {
					t.Errorf("upstream saw Host %q, want its own %q", seen[0].Host, upHost)
				}
			},
		},
		{
			name: "absolute URI with user info",
			raw:  "GET http://user:pw@evil.example/x HTTP/1.1\r\n" + h + "\r\n",
			want: []int{200}, forwarded: []string{"GET /x"},
		},
		{
			name: "Host header naming another host",
			raw:  "GET /x HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n",
			want: []int{200}, forwarded: []string{"GET /x"},
			check: func(t *testing.T, seen []seenRequest) {
				if len(seen) == 1 && seen[0].Host != upHost {
					t.Errorf("upstream saw Host %q, want its own %q", seen[0].Host, upHost)
				}
			},
		},
		{name: "CONNECT in authority form", raw: "CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n", want: []int{404}, jsonError: true},
		{name: "CONNECT with a path", raw: "CONNECT /x HTTP/1.1\r\n" + h + "\r\n", want: []int{405}, jsonError: true},
		{name: "TRACE", raw: "TRACE /x HTTP/1.1\r\n" + h + "Cookie: s=1\r\n\r\n", want: []int{405}, jsonError: true},
		{name: "asterisk form", raw: "GET * HTTP/1.1\r\n" + h + "\r\n", want: []int{404}, jsonError: true},
		{name: "dot-dot segment", raw: "GET /ready/../x HTTP/1.1\r\n" + h + "\r\n", want: []int{400}, jsonError: true},
		{name: "dot segment", raw: "GET /a/./b HTTP/1.1\r\n" + h + "\r\n", want: []int{400}, jsonError: true},
		{name: "trailing dot-dot", raw: "GET /a/.. HTTP/1.1\r\n" + h + "\r\n", want: []int{400}, jsonError: true},
		{name: "percent-encoded dot-dot", raw: "GET /a/%2e%2E/x HTTP/1.1\r\n" + h + "\r\n", want: []int{400}, jsonError: true},
		{name: "percent-encoded slashes around dot-dot", raw: "GET /a%2f..%2Fx HTTP/1.1\r\n" + h + "\r\n", want: []int{400}, jsonError: true},
		{name: "dots inside a segment are plain names", raw: "GET /.well-known/a..b/... HTTP/1.1\r\n" + h + "\r\n", want: []int{200}, forwarded: []string{"GET /.well-known/a..b/..."}},
		{name: "double slash is forwarded as sent", raw: "GET //ready HTTP/1.1\r\n" + h + "\r\n", want: []int{200}, forwarded: []string{"GET //ready"}},
		{name: "trailing slash is not the gateway's route", raw: "GET /ready/ HTTP/1.1\r\n" + h + "\r\n", want: []int{200}, forwarded: []string{"GET /ready/"}},
		{
			name: "percent-encoded /ready is the gateway's",
			raw:  "GET /%72eady HTTP/1.1\r\n" + h + "\r\n",
			want: []int{200},
		},
		{name: "percent-encoded /healthz is the gateway's", raw: "GET /%68ealthz HTTP/1.1\r\n" + h + "\r\n", want: []int{200}},
		{name: "POST to percent-encoded /ready", raw: "POST /%72eady HTTP/1.1\r\n" + h + "Content-Length: 0\r\n\r\n", want: []int{405}, jsonError: true},
	}
	// Not parallel: each case reads what the upstream saw since the previous one.
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up.take()
			resps, bodies, closed := rawExchange(t, addr, tt.raw, 300*time.Millisecond)
			var got []int
			for _, r := range resps {
				got = append(got, r.StatusCode)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("statuses = %v, want %v (bodies %q)", got, tt.want, bodies)
			}
			if tt.closed && !closed {
				t.Errorf("connection left open, want it closed after the answer")
			}
			if tt.jsonError {
				checkFixedErrorBody(t, resps[0], bodies[0], upHost)
			}
			seen := up.take()
			var lines []string
			for _, s := range seen {
				lines = append(lines, s.Method+" "+s.URI)
			}
			if !slices.Equal(lines, tt.forwarded) {
				t.Errorf("upstream saw %q, want %q", lines, tt.forwarded)
			}
			if tt.check != nil {
				tt.check(t, seen)
			}
		})
	}
}

// TestOwnRoutesWhateverTheSpelling: the gateway's /ready answers percent-encoded spellings of
// its path too (a decoded-path check in forward), with its own JSON.
func TestOwnRoutesWhateverTheSpelling(t *testing.T) {
	t.Parallel()
	up := newRecordingUpstream(t)
	tg := startGateway(t, up.Server, nil, true)
	tg.waitReady(t)
	resp, body := do(t, "GET", tg.URL+"/%72ead%79", nil, nil)
	if resp.StatusCode != 200 || decode(t, body)["state"] != "ready" {
		t.Errorf("GET /%%72ead%%79 = %d %s, want the gateway's /ready", resp.StatusCode, body)
	}
	if seen := up.take(); len(seen) != 0 {
		t.Errorf("upstream saw %v, want nothing", seen)
	}
}

func TestHasDotSegment(t *testing.T) {
	tests := []struct {
		path string
		want bool
	}{
		{"/", false}, {"", false}, {"/a/b", false}, {"/.well-known", false}, {"/a..b", false}, {"/...", false},
		{"/..a", false}, {"/a/.b/c", false},
		{"/.", true}, {"/..", true}, {"/a/.", true}, {"/a/..", true}, {"/a/./b", true}, {"/a/../b", true},
		{"/.well-known/../x", true}, {"//..//", true},
	}
	for _, tt := range tests {
		if got := hasDotSegment(tt.path); got != tt.want {
			t.Errorf("hasDotSegment(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}
}

// TestSlowlorisDoesNotDelayOthers: 500 connections that dribble their headers a byte at a
// time do not hold up a normal request by more than a second. (ReadHeaderTimeout, 10 s, ends
// each of them; Go serves every connection on its own goroutine, so they cost memory, not
// turns.)
func TestSlowlorisDoesNotDelayOthers(t *testing.T) {
	t.Parallel()
	up := newRecordingUpstream(t)
	tg := startGateway(t, up.Server, nil, true)
	tg.waitReady(t)
	addr := strings.TrimPrefix(tg.URL, "http://")

	const slow = 500
	conns := make([]net.Conn, 0, slow)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for range slow {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial slow connection %d: %v", len(conns)+1, err)
		}
		conns = append(conns, c)
		if _, err := io.WriteString(c, "GET /x HTTP/1.1\r\nHost: x\r\nX-Slow: "); err != nil {
			t.Fatalf("write: %v", err)
		}
	}
	// Keep dribbling while the normal requests run: one byte per connection per round.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var rounds atomic.Int64
	dribbled := make(chan struct{})
	go func() {
		defer close(dribbled)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			for _, c := range conns {
				_ = c.SetWriteDeadline(time.Now().Add(time.Second))
				_, _ = c.Write([]byte("a"))
			}
			rounds.Add(1)
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()

	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}, Timeout: 5 * time.Second}
	// Normal requests one after another while at least 10 rounds of dribbling pass (about
	// half a second), 20 to 400 of them.
	var worst time.Duration
	normal := 0
	for i := 0; i < 400 && (i < 20 || rounds.Load() < 10); i++ {
		normal++
		start := time.Now()
		resp, err := client.Get(tg.URL + fmt.Sprintf("/x?i=%d", i))
		if err != nil {
			t.Fatalf("normal request %d: %v", i, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("normal request %d: status %d", i, resp.StatusCode)
		}
		worst = max(worst, time.Since(start))
	}
	cancel()
	<-dribbled
	if worst > time.Second {
		t.Errorf("slowest normal request took %v beside %d slowloris connections, want at most 1s", worst, slow)
	}
	if got := len(up.take()); got != normal {
		t.Errorf("upstream saw %d requests, want the %d normal ones (no partial slowloris request)", got, normal)
	}
	t.Logf("%d normal requests beside %d dribbling connections (%d rounds): slowest %v", normal, slow, rounds.Load(), worst.Round(time.Microsecond))
}
