package gateway

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hfgate/hfgate/gateway/clientip"
	"github.com/hfgate/hfgate/gateway/gate"
	"github.com/hfgate/hfgate/gateway/health"
	"golang.org/x/sys/unix"
)

// countingUpstream wraps newUpstream's routes and counts the requests to each path that reached
// it (health checks apart).
func countingUpstream(t *testing.T) (*upstream, *atomic.Int64) {
	t.Helper()
	up := newUpstream(t)
	var n atomic.Int64
	inner := up.Config.Handler
	up.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" {
			n.Add(1)
		}
		inner.ServeHTTP(w, r)
	})
	return up, &n
}

// upDies makes the upstream look dead: new connections are refused and open ones are closed.
func upDies(tg *testGateway, up *upstream) {
	tg.gate.set(false)
	up.CloseClientConnections()
}

// TestReplayRefusedPOST: a POST whose connection is refused after the upstream was ready is held
// and sent, body and all, once the upstream is back; the upstream sees it once.
func TestReplayRefusedPOST(t *testing.T) {
	t.Parallel()
	up, reached := countingUpstream(t)
	tg := startGateway(t, up.Server, nil, true)
	tg.waitReady(t)
	upDies(tg, up)

	done := make(chan *http.Response, 1)
	go func() {
		res, err := http.Post(tg.URL+"/echo", "application/json", strings.NewReader(`{"message":"hello"}`))
		if err != nil {
			t.Errorf("POST: %v", err)
		}
		done <- res
	}()
	tg.logs.Wait(t, "upstream unreachable; holding the request to send it again", nil)
	tg.gate.set(true) // back
	res := <-done
	if res == nil {
		return
	}
	body := readBody(t, res)
	if res.StatusCode != http.StatusOK || !strings.Contains(body, `"method":"POST"`) || !strings.Contains(body, `"body_len":19`) {
		t.Fatalf("got %d %s, want 200 with the POST's 19-byte body", res.StatusCode, body)
	}
	if n := reached.Load(); n != 1 {
		t.Errorf("upstream saw %d requests, want 1", n)
	}
	rec := tg.logs.Wait(t, "request", func(r map[string]any) bool { return r["path"] == "/echo" })
	if rec["replayed"] != true || rec["queued"] == nil {
		t.Errorf("access line %v, want replayed=true and a queued duration", rec)
	}
}

// TestNoReplayOnceSent: a request that reached the upstream before its connection broke is not
// sent again: it gets the 503. (A GET would be: Go's Transport sends an idempotent request again
// when a reused connection breaks before the answer; hfgate keeps that, and adds nothing to it.)
func TestNoReplayOnceSent(t *testing.T) {
	t.Parallel()
	up, reached := countingUpstream(t)
	tg := startGateway(t, up.Server, nil, true)
	tg.waitReady(t)
	res, err := http.Post(tg.URL+"/drop", "application/json", strings.NewReader(`{"message":"crash"}`))
	if err != nil {
		t.Fatal(err)
	}
	readBody(t, res)
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" {
		t.Errorf("got %d (Retry-After %q), want 503 with Retry-After", res.StatusCode, res.Header.Get("Retry-After"))
	}
	if n := reached.Load(); n != 1 {
		t.Errorf("upstream saw %d requests, want 1 (no replay of a request that reached it)", n)
	}
}

// TestHoldPastDeadline: a request held while the upstream stays down gets, at its deadline, the
// 503 with Retry-After and CORS (not a 504: it never reached the upstream).
func TestHoldPastDeadline(t *testing.T) {
	t.Parallel()
	up, reached := countingUpstream(t)
	tg := startGateway(t, up.Server, map[string]string{"HOLD_TIMEOUT": "300ms", "CORS_ALLOW_ORIGINS": "https://app.example"}, true)
	tg.waitReady(t)
	upDies(tg, up)
	req, _ := http.NewRequest(http.MethodPost, tg.URL+"/echo", strings.NewReader("hi"))
	req.Header.Set("Origin", "https://app.example")
	start := time.Now()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	readBody(t, res)
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" ||
		res.Header.Get("Access-Control-Allow-Origin") != "https://app.example" {
		t.Errorf("got %d, Retry-After %q, ACAO %q; want 503 with both", res.StatusCode, res.Header.Get("Retry-After"), res.Header.Get("Access-Control-Allow-Origin"))
	}
	if took < 300*time.Millisecond {
		t.Errorf("answered after %v, before the 300ms hold deadline", took)
	}
	if n := reached.Load(); n != 0 {
		t.Errorf("upstream saw %d requests, want 0", n)
	}
	rec := tg.logs.Wait(t, "request", func(r map[string]any) bool { return r["path"] == "/echo" })
	if rec["status"] != float64(503) || rec["queued"] == nil {
		t.Errorf("access line %v, want status 503 with a queued duration", rec)
	}
}

// TestNotHeld: the first cold start (no start-up seen yet) and HOLD_TIMEOUT=0 answer at once,
// and nothing is held.
func TestNotHeld(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		environ map[string]string
		ready   bool
	}{
		{"first cold start", nil, false},
		{"holding off", map[string]string{"HOLD_TIMEOUT": "0"}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			up, _ := countingUpstream(t)
			tg := startGateway(t, up.Server, tt.environ, tt.ready)
			if tt.ready {
				tg.waitReady(t)
				upDies(tg, up)
			}
			res, err := http.Post(tg.URL+"/echo", "text/plain", strings.NewReader("hi"))
			if err != nil {
				t.Fatal(err)
			}
			readBody(t, res)
			if res.StatusCode != http.StatusServiceUnavailable {
				t.Errorf("got %d, want 503", res.StatusCode)
			}
			rec := tg.logs.Wait(t, "request", func(r map[string]any) bool { return r["path"] == "/echo" })
			if _, ok := rec["queued"]; ok {
				t.Errorf("access line %v: queued, want answered at once", rec)
			}
			if n := tg.g.admission.gate.Snapshot().Waiting; n != 0 {
				t.Errorf("waiting = %d, want 0", n)
			}
		})
	}
}

func readBody(t *testing.T, res *http.Response) string {
	t.Helper()
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return string(b)
}

// TestMeteredConnPeerClosed: a connection whose peer has closed it is seen as closed before
// anything is written to it; an open one is not, nor one with data waiting, and the check takes
// nothing from the reader.
func TestMeteredConnPeerClosed(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	c, err := meteredDialer((&net.Dialer{}).DialContext)(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	mc := c.(*meteredConn)
	peer := <-accepted
	if mc.peerClosed() {
		t.Error("open connection reported closed")
	}
	if _, err := peer.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	awaitReadable(t, mc, unix.POLLIN)
	if mc.peerClosed() {
		t.Error("connection with data waiting reported closed")
	}
	b := make([]byte, 1)
	if _, err := io.ReadFull(mc, b); err != nil || b[0] != 'x' {
		t.Fatalf("read %q, %v; want the peer's byte (the check must not take it)", b, err)
	}
	peer.Close()
	// POLLIN: the end of the stream is readable (POLLRDHUP would say so too, on Linux only).
	awaitReadable(t, mc, unix.POLLIN)
	if !mc.peerClosed() {
		t.Error("closed connection not reported closed")
	}
}

// awaitReadable blocks until the connection's socket has events (the kernel's own wait).
func awaitReadable(t *testing.T, mc *meteredConn, events int16) {
	t.Helper()
	var perr error
	if err := mc.raw.Control(func(fd uintptr) {
		_, perr = unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: events}}, 5000)
	}); err != nil || perr != nil {
		t.Fatalf("poll: %v %v", err, perr)
	}
}

// staleThenRefused is an upstream that died: the first attempt goes out on a pooled connection
// it had closed (EOF, nothing reached it, the state still says ready), the next ones are
// refused until back is closed, and then it answers.
type staleThenRefused struct {
	back  chan struct{}
	calls atomic.Int64
}

func (u *staleThenRefused) RoundTrip(req *http.Request) (*http.Response, error) {
	switch n := u.calls.Add(1); {
	case n == 1:
		return nil, io.EOF
	default:
		select {
		case <-u.back:
			return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: req}, nil
		default:
			return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
		}
	}
}

// replayRig is a replayTransport in front of next, with a readiness that has seen the upstream
// come up once (coldStart after start) and a hold queue of timeout.
func replayRig(next http.RoundTripper, timeout, coldStart time.Duration) (*replayTransport, *health.Tracker) {
	logger := slog.New(slog.DiscardHandler)
	a := &admission{timeout: timeout, now: time.Now}
	var err error
	if a.gate, err = gate.New(gate.Options{}); err != nil {
		panic(err)
	}
	a.readiness = health.NewTracker(health.TrackerOptions{Logger: logger, OnChange: a.sync})
	a.sync()
	time.Sleep(coldStart)
	a.readiness.MarkReady()
	return &replayTransport{next: next, admission: a, readiness: a.readiness, logger: logger}, a.readiness
}

// TestReplayHeldUntilBack: a request the gateway decided to hold after a stale connection is
// held until the upstream is back, although the state said ready when it decided (issue 18,
// item 0): the refused second attempt is not answered at once.
func TestReplayHeldUntilBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		up := &staleThenRefused{back: make(chan struct{})}
		rt, r := replayRig(up, 10*time.Second, time.Second)
		start := time.Now()
		f := newFlight(t.Context(), clientip.Client{}, start, start.Add(10*time.Second))
		req := httptest.NewRequestWithContext(f.withTrace(), http.MethodPost, "http://up/chat", nil)
		go func() {
			for r.State() != health.Unavailable {
				<-r.Changed()
			}
			time.Sleep(3 * time.Second) // the restart
			close(up.back)
			r.MarkReady()
		}()
		res, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatalf("RoundTrip: %v, want the answer once the upstream is back", err)
		}
		_ = res.Body.Close()
		if got := time.Since(start); got != 3*time.Second {
			t.Errorf("answered after %v, want 3s (when the upstream came back)", got)
		}
		if !f.replayed || f.queued != 3*time.Second {
			t.Errorf("replayed=%v queued=%v, want true and 3s", f.replayed, f.queued)
		}
		if n := up.calls.Load(); n != 3 {
			t.Errorf("%d attempts, want 3 (stale, refused, answered)", n)
		}
	})
}

// TestReplayHeldUntilDeadline: the same request, when the upstream does not come back, is
// answered at its hold deadline, not at the refused second attempt; also when the upstream's
// first start took longer than the deadline (an outage's length is no estimate of a crash).
func TestReplayHeldUntilDeadline(t *testing.T) {
	for _, coldStart := range []time.Duration{time.Second, 10 * time.Second} {
		t.Run(coldStart.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				up := &staleThenRefused{back: make(chan struct{})}
				rt, _ := replayRig(up, 3*time.Second, coldStart)
				start := time.Now()
				f := newFlight(t.Context(), clientip.Client{}, start, start.Add(3*time.Second))
				req := httptest.NewRequestWithContext(f.withTrace(), http.MethodPost, "http://up/chat", nil)
				if _, err := rt.RoundTrip(req); !isDialError(err) {
					t.Fatalf("RoundTrip error %v, want the refused dial", err)
				}
				if got := time.Since(start); got != 3*time.Second {
					t.Errorf("answered after %v, want the 3s hold deadline", got)
				}
				if n := up.calls.Load(); n != 2 {
					t.Errorf("%d attempts, want 2 (stale, refused)", n)
				}
			})
		})
	}
}
