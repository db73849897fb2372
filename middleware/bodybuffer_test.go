package middleware

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
)

// inMemoryType is the type of the body BodyBuffer hands on, one that net/http's Transport
// recognises as in memory (isKnownInMemoryReader: an io.NopCloser around a *bytes.Reader).
var inMemoryType = reflect.TypeOf(io.NopCloser(bytes.NewReader(nil)))

// bodySeen is what the handler behind BodyBuffer saw of a request.
type bodySeen struct {
	body             string
	contentLength    int64
	transferEncoding []string
	inMemory         bool
	getBody          string // what GetBody returned; "-" when GetBody is nil
	original         bool   // the body is the one the server gave, not replaced
	expect           string // the Expect header
}

// bodyBufferServer runs BodyLimit(maxBody) and BodyBuffer(cfg) in front of a handler that
// reports what it saw on seen, on a real server (read deadlines need a real connection). Each
// request's context error after the chain is reported on ended (nil: not canceled). before, when
// set, runs first in the handler (the body still unread); it may answer, else the handler
// answers 200.
func bodyBufferServer(t *testing.T, maxBody int64, cfg BodyBufferConfig, before echo.HandlerFunc) (srv *httptest.Server, seen chan bodySeen, ended chan error) {
	t.Helper()
	seen, ended = make(chan bodySeen, 1), make(chan error, 1)
	e := echo.New()
	var originalBody atomic.Value
	e.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			err := next(c)
			ended <- c.Request().Context().Err()
			return err
		}
	})
	e.Use(BodyLimit(BodyLimitConfig{Limit: maxBody}))
	e.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			originalBody.Store(c.Request().Body)
			return next(c)
		}
	})
	e.Use(BodyBuffer(cfg))
	e.Any("/*", func(c echo.Context) error {
		if before != nil {
			if err := before(c); err != nil {
				return err
			}
		}
		r := c.Request()
		s := bodySeen{
			contentLength:    r.ContentLength,
			transferEncoding: r.TransferEncoding,
			inMemory:         reflect.TypeOf(r.Body) == inMemoryType,
			getBody:          "-",
			original:         r.Body == originalBody.Load(),
			expect:           r.Header.Get("Expect"),
		}
		if r.GetBody != nil {
			rc, err := r.GetBody()
			if err != nil {
				t.Errorf("GetBody: %v", err)
			} else {
				b, _ := io.ReadAll(rc)
				s.getBody = string(b)
			}
		}
		b, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("handler: read body: %v", err)
		}
		s.body = string(b)
		seen <- s
		if c.Response().Committed {
			return nil
		}
		return c.NoContent(http.StatusOK)
	})
	srv = httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return srv, seen, ended
}

func TestBodyBuffer(t *testing.T) {
	t.Parallel()
	const limit = 1 << 10
	small := strings.Repeat("s", 200)
	atLimit := strings.Repeat("l", limit)
	large := strings.Repeat("0123456789", 3*limit/10+7) // several buffers' worth
	tests := []struct {
		name    string
		method  string
		body    string
		chunked bool // send the body chunked (no Content-Length)
		expect  bool // send Expect: 100-continue
		maxBody int64

		wantStatus int
		want       *bodySeen // nil: the handler must not run
	}{
		{name: "small with Content-Length is read whole", method: "POST", body: small, wantStatus: 200,
			want: &bodySeen{body: small, contentLength: 200, inMemory: true, getBody: small}},
		{name: "small chunked goes on with a Content-Length", method: "POST", body: small, chunked: true, wantStatus: 200,
			want: &bodySeen{body: small, contentLength: 200, inMemory: true, getBody: small}},
		{name: "100-continue is met here", method: "POST", body: small, expect: true, wantStatus: 200,
			want: &bodySeen{body: small, contentLength: 200, inMemory: true, getBody: small}},
		{name: "100-continue of a streamed body goes on", method: "POST", body: large, expect: true, wantStatus: 200,
			want: &bodySeen{body: large, contentLength: int64(len(large)), getBody: "-", original: true, expect: "100-continue"}},
		{name: "chunked at the limit is read whole", method: "PUT", body: atLimit, chunked: true, wantStatus: 200,
			want: &bodySeen{body: atLimit, contentLength: limit, inMemory: true, getBody: atLimit}},
		{name: "Content-Length at the limit is read whole", method: "POST", body: atLimit, wantStatus: 200,
			want: &bodySeen{body: atLimit, contentLength: limit, inMemory: true, getBody: atLimit}},
		{name: "chunked over the limit streams intact", method: "POST", body: large, chunked: true, wantStatus: 200,
			want: &bodySeen{body: large, contentLength: -1, transferEncoding: []string{"chunked"}, getBody: "-"}},
		{name: "Content-Length over the limit streams untouched", method: "POST", body: large, wantStatus: 200,
			want: &bodySeen{body: large, contentLength: int64(len(large)), getBody: "-", original: true}},
		{name: "empty chunked body becomes no body", method: "POST", body: "", chunked: true, wantStatus: 200,
			want: &bodySeen{getBody: ""}},
		{name: "GET without a body is untouched", method: "GET", wantStatus: 200,
			want: &bodySeen{getBody: "-", original: true}},
		{name: "chunked over MAX_BODY_BYTES is 413", method: "POST", body: atLimit, chunked: true, maxBody: limit / 2, wantStatus: 413},
		{name: "Content-Length over MAX_BODY_BYTES is 413", method: "POST", body: atLimit, maxBody: limit / 2, wantStatus: 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, seen, _ := bodyBufferServer(t, tt.maxBody, BodyBufferConfig{Limit: limit, Timeout: 5 * time.Second}, nil)
			var body io.Reader
			if tt.body != "" || tt.chunked {
				body = strings.NewReader(tt.body)
				if tt.chunked {
					body = io.MultiReader(body) // hides the length: the client sends it chunked
				}
			}
			req, err := http.NewRequestWithContext(t.Context(), tt.method, srv.URL+"/x", body)
			if err != nil {
				t.Fatal(err)
			}
			if tt.expect {
				req.Header.Set("Expect", "100-continue")
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatalf("%s: %v", tt.method, err)
			}
			respBody, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status: got %d, want %d (%s)", resp.StatusCode, tt.wantStatus, respBody)
			}
			if tt.want == nil {
				select {
				case s := <-seen:
					t.Errorf("handler ran with %+v, want it not to run", s)
				default:
				}
				return
			}
			if got := <-seen; !reflect.DeepEqual(got, *tt.want) {
				t.Errorf("handler saw\n%+v\nwant\n%+v", got, *tt.want)
			}
		})
	}
}

// TestBodyBufferTransportOneWrite: the body BodyBuffer hands on lets http.Transport send the
// headers and the body in one write, and GetBody lets it send the request again.
func TestBodyBufferTransportOneWrite(t *testing.T) {
	t.Parallel()
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(w, r.Body)
	}))
	t.Cleanup(sink.Close)
	var writes atomic.Int64
	transport := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		return writeCounter{Conn: c, n: &writes}, err
	}}
	t.Cleanup(transport.CloseIdleConnections)
	srv, _, _ := bodyBufferServer(t, 0, BodyBufferConfig{}, func(c echo.Context) error {
		r := c.Request()
		out, err := http.NewRequestWithContext(r.Context(), r.Method, sink.URL, nil)
		if err != nil {
			return err
		}
		if out.Body, err = r.GetBody(); err != nil {
			return err
		}
		out.ContentLength = r.ContentLength
		res, err := transport.RoundTrip(out)
		if err != nil {
			return err
		}
		defer res.Body.Close()
		return c.Stream(res.StatusCode, "text/plain", res.Body)
	})
	payload := `{"message":"hello"}`
	resp, err := srv.Client().Post(srv.URL+"/chat", "application/json", strings.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(got) != payload {
		t.Fatalf("echoed body: got %q, want %q", got, payload)
	}
	if n := writes.Load(); n != 1 {
		t.Errorf("writes to the upstream connection: got %d, want 1 (headers and body together)", n)
	}
}

// writeCounter counts the Write calls on a connection.
type writeCounter struct {
	net.Conn
	n *atomic.Int64
}

func (c writeCounter) Write(p []byte) (int, error) {
	c.n.Add(1)
	return c.Conn.Write(p)
}

// TestBodyBufferIncomplete sends a body of which only a part arrives, on a raw connection, and
// lets the short Timeout pass: a stalled body is answered 408 JSON and the connection closed; a
// client that leaves ends the request (its context canceled). The handler never runs.
func TestBodyBufferIncomplete(t *testing.T) {
	t.Parallel()
	const timeout = 200 * time.Millisecond
	tests := []struct {
		name    string
		head    string // request line and headers, without the blank line
		part    string // the part of the body that is sent
		leave   bool   // the client closes its side after the part
		want408 bool
	}{
		{name: "stalled body is 408", head: "POST /chat HTTP/1.1\r\nHost: x\r\nContent-Length: 100",
			part: `{"message":"half`, want408: true},
		{name: "stalled chunked body is 408", head: "POST /chat HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked",
			part: "10\r\n{\"message\":", want408: true},
		{name: "stalled before any byte is 408", head: "POST /chat HTTP/1.1\r\nHost: x\r\nContent-Length: 100",
			want408: true},
		{name: "client gone mid-body", head: "POST /chat HTTP/1.1\r\nHost: x\r\nContent-Length: 100",
			part: `{"message":"half`, leave: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, seen, ended := bodyBufferServer(t, 0, BodyBufferConfig{Timeout: timeout}, nil)
			conn, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second)) // a safety net, not the test
			if _, err := io.WriteString(conn, tt.head+"\r\n\r\n"+tt.part); err != nil {
				t.Fatal(err)
			}
			if tt.leave {
				_ = conn.(*net.TCPConn).CloseWrite()
			}
			br := bufio.NewReader(conn)
			if tt.want408 {
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatalf("read answer: %v", err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				var m map[string]any
				if resp.StatusCode != http.StatusRequestTimeout || json.Unmarshal(b, &m) != nil || m["message"] == nil {
					t.Errorf("answer: got %d %q, want 408 with a JSON message", resp.StatusCode, b)
				}
				if !resp.Close {
					t.Errorf("Connection: close missing on the 408; header %v", resp.Header)
				}
				if _, err := br.ReadByte(); err != io.EOF {
					t.Errorf("after the 408: read got %v, want EOF (connection closed)", err)
				}
			}
			if err := <-ended; tt.leave && !errors.Is(err, context.Canceled) {
				t.Errorf("request context after the chain: got %v, want canceled (logged 499)", err)
			}
			select {
			case s := <-seen:
				t.Errorf("handler ran with %+v, want it not to run", s)
			default:
			}
		})
	}
}

// TestBodyBufferDeadlineLifted: once the body is read, or its first Limit+1 bytes, the read
// deadline is gone: a handler that waits past the Timeout keeps its context and reads the rest of
// a long chunked body, and the connection serves another request. (net/http lifts the deadline
// itself when a body ends; the rest of a long one is BodyBuffer's to free.)
func TestBodyBufferDeadlineLifted(t *testing.T) {
	t.Parallel()
	const timeout, limit = 100 * time.Millisecond, 1 << 10
	long := strings.Repeat("0123456789", 64*limit/10) // well beyond the server's 4 KiB read buffer
	tests := []struct {
		name    string
		body    string
		chunked bool
	}{
		{name: "read whole", body: `{"message":"hi"}`},
		{name: "long chunked, streamed", body: long, chunked: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, seen, ended := bodyBufferServer(t, 0, BodyBufferConfig{Limit: limit, Timeout: timeout}, func(c echo.Context) error {
				select {
				case <-c.Request().Context().Done():
					return c.NoContent(http.StatusServiceUnavailable)
				case <-time.After(3 * timeout): // the behaviour under test: time passes beyond Timeout
					return nil
				}
			})
			client := srv.Client()
			for i := range 2 {
				var body io.Reader = strings.NewReader(tt.body)
				if tt.chunked {
					body = io.MultiReader(body)
				}
				resp, err := client.Post(srv.URL+"/chat", "application/json", body)
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("request %d: got %d, want 200 (context kept past the body's Timeout)", i, resp.StatusCode)
				}
				if s := <-seen; s.body != tt.body {
					t.Errorf("request %d: handler read %d bytes, want the whole %d", i, len(s.body), len(tt.body))
				}
				if err := <-ended; err != nil {
					t.Errorf("request %d: context after the chain: %v, want not canceled", i, err)
				}
			}
		})
	}
}

// TestBodyBufferWithoutDeadline: where the writer offers no read deadline (a recorder), the
// body is still read whole.
func TestBodyBufferWithoutDeadline(t *testing.T) {
	t.Parallel()
	e := echo.New()
	var got bodySeen
	h := BodyBuffer(BodyBufferConfig{})(func(c echo.Context) error {
		r := c.Request()
		b, _ := io.ReadAll(r.Body)
		got = bodySeen{body: string(b), contentLength: r.ContentLength, inMemory: reflect.TypeOf(r.Body) == inMemoryType}
		return nil
	})
	req := httptest.NewRequest(http.MethodPost, "/chat", io.MultiReader(strings.NewReader("hello")))
	req.ContentLength, req.TransferEncoding = -1, []string{"chunked"}
	if err := h(e.NewContext(req, httptest.NewRecorder())); err != nil {
		t.Fatalf("middleware: %v", err)
	}
	if want := (bodySeen{body: "hello", contentLength: 5, inMemory: true}); !reflect.DeepEqual(got, want) {
		t.Errorf("handler saw %+v, want %+v", got, want)
	}
}

func TestBodyBufferNoBodyNoAllocation(t *testing.T) {
	e := echo.New()
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	c := e.NewContext(req, httptest.NewRecorder())
	h := BodyBuffer(BodyBufferConfig{})(func(echo.Context) error { return nil })
	if n := testing.AllocsPerRun(100, func() { _ = h(c) }); n != 0 {
		t.Errorf("allocations for a GET without a body: got %v, want 0", n)
	}
	if c.Request().Body != http.NoBody {
		t.Errorf("body: got %T, want http.NoBody left alone", c.Request().Body)
	}
}

// deadlineRecorder is a recorder that accepts read deadlines, so that the benchmark pays for
// setting and clearing one as on a real connection (bar the poller's own work).
type deadlineRecorder struct{ *httptest.ResponseRecorder }

func (deadlineRecorder) SetReadDeadline(time.Time) error { return nil }

// rewindBody is a request body that the benchmark rewinds instead of allocating.
type rewindBody struct{ *bytes.Reader }

func (rewindBody) Close() error { return nil }

// BenchmarkBodyBuffer reads a 200-byte JSON POST whole.
//
//	go test -run '^$' -bench BodyBuffer -benchmem ./middleware/
func BenchmarkBodyBuffer(b *testing.B) {
	payload := []byte(fmt.Sprintf(`{"message":%q}`, strings.Repeat("x", 200-len(`{"message":""}`))))
	if len(payload) != 200 {
		b.Fatalf("payload is %d bytes, want 200", len(payload))
	}
	e := echo.New()
	req := httptest.NewRequest(http.MethodPost, "/chat", nil)
	c := e.NewContext(req, deadlineRecorder{httptest.NewRecorder()})
	h := BodyBuffer(BodyBufferConfig{})(func(c echo.Context) error {
		if c.Request().ContentLength != 200 {
			return errors.New("body not read whole")
		}
		return nil
	})
	body := rewindBody{bytes.NewReader(payload)}
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		body.Reset(payload)
		req.Body, req.GetBody, req.ContentLength = body, nil, int64(len(payload))
		if err := h(c); err != nil {
			b.Fatal(err)
		}
	}
}
