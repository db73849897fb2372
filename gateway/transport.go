package gateway

import (
	"context"
	"net"
	"net/http"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The upstream's side of a forwarded request is a chain of RoundTrippers, built once by
// newTransport, innermost first:
//
//   - the pooled http.Transport, dialing meteredConns (each counts the bytes written to it, so a
//     failed attempt can tell whether any byte of its request went out; see flight);
//   - timedTransport, the time-to-first-byte metric (only with METRICS_ADDR);
//   - replayTransport, outermost, so that a replay's wait in line is not counted as upstream
//     time.
//
// The prober sends its health checks through the pooled Transport alone: they are not upstream
// traffic, and a failed one is the prober's verdict, never replayed.

// upstreamIdleConns is the pool's bound on idle connections: enough for a burst of concurrent
// requests to find a kept-alive connection each, on a loopback upstream.
const upstreamIdleConns = 256

// newUpstreamTransport is the pooled Transport to the upstream. dial nil is a net.Dialer with a
// 5 s timeout; headerTimeout is UPSTREAM_TIMEOUT (0: none).
func newUpstreamTransport(dial func(ctx context.Context, network, addr string) (net.Conn, error), headerTimeout time.Duration) *http.Transport {
	if dial == nil {
		dial = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	return &http.Transport{
		// Proxy is deliberately nil: HTTP_PROXY in a Space's environment must not capture the
		// loopback upstream.
		Proxy:               nil,
		DialContext:         meteredDialer(dial),
		MaxIdleConns:        upstreamIdleConns,
		MaxIdleConnsPerHost: upstreamIdleConns,
		// Below uvicorn's default keep-alive (5 s), so the gateway closes an idle connection
		// before the upstream does, rather than race it with a request it cannot retry.
		IdleConnTimeout:       4 * time.Second,
		ResponseHeaderTimeout: headerTimeout,
		ExpectContinueTimeout: 1 * time.Second,
		// Bodies pass through as the upstream encoded them.
		DisableCompression: true,
		// HTTP/1.1 to a loopback upstream: uvicorn speaks nothing else, and h2 would only add
		// framing cost here.
		ForceAttemptHTTP2: false,
		// Read/WriteBufferSize stay at net/http's 4 KiB: each upstream connection holds both for
		// its lifetime (an open event stream too), and bodies larger than the buffer bypass it.
	}
}

// newTransport builds the chain above: base is the pooled Transport (the prober's), chain what
// the proxy sends forwarded requests through.
func (g *Gateway) newTransport(dial func(ctx context.Context, network, addr string) (net.Conn, error)) (base *http.Transport, chain http.RoundTripper) {
	base = newUpstreamTransport(dial, g.cfg.UpstreamTimeout)
	chain = base
	replay := &replayTransport{admission: g.admission, readiness: g.readiness, logger: g.logger, closeIdle: base.CloseIdleConnections}
	if g.metrics != nil {
		chain = &timedTransport{next: chain, ttfb: g.metrics.ttfb}
		replay.onReplay = g.metrics.replays.Inc
	}
	replay.next = chain
	return base, replay
}

// meteredConn is an upstream connection that counts the bytes written to it, so that a failed
// attempt can tell (with the flight's GotConn mark) whether any byte of its request went out.
type meteredConn struct {
	net.Conn
	raw     syscall.RawConn // nil when the connection has no file descriptor (tests)
	written atomic.Int64
}

// peerClosed reports whether the upstream has already closed the connection (its FIN is waiting
// to be read): a backend that died, or closed an idle keep-alive connection. What is written to
// such a connection is never read by the backend, though the write itself succeeds: the kernel
// takes the bytes and the peer answers with a reset. Transport hands out such a connection when
// its reader has not yet seen the close, which is likely in the moment a backend is killed. It
// peeks, without blocking and without taking anything from Transport's reader. (A peer that
// half-closed to go on reading would be misread; uvicorn and HTTP/1 backends do not.)
func (c *meteredConn) peerClosed() bool {
	if c.raw == nil {
		return false
	}
	closed := false
	_ = c.raw.Control(func(fd uintptr) {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		closed = n == 0 && err == nil
	})
	return closed
}

func (c *meteredConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.written.Add(int64(n))
	return n, err
}

// meteredDialer wraps dial so that every upstream connection is a meteredConn.
func meteredDialer(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		mc := &meteredConn{Conn: c}
		if sc, ok := c.(syscall.Conn); ok {
			mc.raw, _ = sc.SyscallConn()
		}
		return mc, nil
	}
}

// timedTransport observes the upstream's time to first byte: RoundTrip returns when the
// response headers have arrived.
type timedTransport struct {
	next http.RoundTripper
	ttfb prometheus.Histogram
}

func (t *timedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.next.RoundTrip(r)
	if err == nil {
		t.ttfb.Observe(time.Since(start).Seconds())
	}
	return resp, err
}
