package e2e

// fakeUpstream is a scriptable upstream for fault injection: a raw TCP server that reads
// HTTP/1.1 requests and, per path, answers properly or misbehaves in a way the real example
// backend cannot be made to (headers that never come, a body or an event stream cut in the
// middle, a health check that fails on demand, a listener that refuses and later accepts).

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

type fakeUpstream struct {
	t    *testing.T
	addr string // 127.0.0.1:PORT, reserved even while not listening
	// healthStatus is what /health answers.
	healthStatus atomic.Int32
	// blackhole: accept connections and never read from or answer them.
	blackhole atomic.Bool

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
	done  chan struct{} // closed at clean-up: ends the handlers that hang
	wg    sync.WaitGroup
}

// newFakeUpstream reserves a port; listen starts serving on it.
func newFakeUpstream(t *testing.T) *fakeUpstream {
	t.Helper()
	f := &fakeUpstream{t: t, addr: fmt.Sprintf("127.0.0.1:%d", freePort(t)), conns: map[net.Conn]struct{}{}, done: make(chan struct{})}
	f.healthStatus.Store(http.StatusOK)
	t.Cleanup(f.close)
	return f
}

func (f *fakeUpstream) url() string { return "http://" + f.addr }

// listen starts accepting on the reserved port (until then, connections are refused).
func (f *fakeUpstream) listen() {
	f.t.Helper()
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		f.t.Fatalf("fake upstream: listen %s: %v", f.addr, err)
	}
	f.mu.Lock()
	f.ln = ln
	f.mu.Unlock()
	f.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			f.conns[c] = struct{}{}
			f.mu.Unlock()
			f.wg.Go(func() { f.serve(c) })
		}
	})
}

func (f *fakeUpstream) close() {
	f.mu.Lock()
	select {
	case <-f.done:
	default:
		close(f.done)
	}
	if f.ln != nil {
		f.ln.Close()
	}
	for c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

func (f *fakeUpstream) forget(c net.Conn) {
	c.Close()
	f.mu.Lock()
	delete(f.conns, c)
	f.mu.Unlock()
}

func (f *fakeUpstream) serve(c net.Conn) {
	defer f.forget(c)
	if f.blackhole.Load() {
		select {
		case <-f.done:
		case <-waitClosed(c):
		}
		return
	}
	br := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, req.Body)
		if !f.answer(c, req) {
			return
		}
	}
}

// waitClosed returns a channel closed once the peer closes c (reads are discarded).
func waitClosed(c net.Conn) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, c)
		close(ch)
	}()
	return ch
}

// answer writes the scripted answer for req; false ends the connection.
func (f *fakeUpstream) answer(c net.Conn, req *http.Request) bool {
	writeAll := func(s string) bool {
		_, err := io.WriteString(c, s)
		return err == nil
	}
	switch req.URL.Path {
	case "/health":
		code := int(f.healthStatus.Load())
		return writeAll(fmt.Sprintf("HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}", code, http.StatusText(code)))
	case "/ok":
		return writeAll("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"ok\":true}")
	case "/slow-headers":
		// Headers never come: the gateway's UPSTREAM_TIMEOUT must answer for it.
		select {
		case <-f.done:
		case <-waitClosed(c):
		}
		return false
	case "/cut-body":
		// Promise 100 bytes, send 10, hang up.
		writeAll("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"partial\":")
		return false
	case "/cut-stream":
		// One whole event, half of the next, then hang up.
		writeAll("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n" +
			chunk("data: {\"token\":\"one\"}\n\n") + chunk("data: {\"tok"))
		return false
	case "/garbage":
		writeAll("this is not HTTP\r\n\r\n")
		return false
	case "/leak":
		// An upstream error page naming internal things: passed through as the upstream's
		// answer (it is the application's to word), never made by the gateway.
		return writeAll("HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\noops!")
	default:
		return writeAll("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
	}
}

func chunk(s string) string {
	return fmt.Sprintf("%x\r\n%s\r\n", len(s), s)
}

// startGatewayFor runs hfgate in front of a fake upstream, with no child process.
func startGatewayFor(t *testing.T, upstreamURL string, env map[string]string) *hfgateProc {
	t.Helper()
	full := map[string]string{"UPSTREAM_URL": upstreamURL, "UPSTREAM_CMD": "", "LOG_FORMAT": "json"}
	for k, v := range env {
		full[k] = v
	}
	return startGateway(t, full)
}

// internalMarkers betray an internal address, a Go error or a stack trace in a body the
// gateway wrote.
var internalMarkers = []string{"127.0.0.1", "localhost", "::1", "dial ", "tcp ", "EOF", "goroutine ", ".go:", "panic", "net/http", "refused", "timeout awaiting", "no such host", ".invalid"}

// checkGatewayBody fails the test when body carries an internal marker or extra.
func checkGatewayBody(t *testing.T, what string, body []byte, extra ...string) {
	t.Helper()
	for _, m := range append(append([]string(nil), internalMarkers...), extra...) {
		if m != "" && strings.Contains(string(body), m) {
			t.Errorf("%s: body leaks %q: %s", what, m, body)
		}
	}
}

// dropConns closes the connections open now, so the gateway's next requests dial anew.
func (f *fakeUpstream) dropConns() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for c := range f.conns {
		c.Close()
	}
}
