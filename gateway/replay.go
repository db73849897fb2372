package gateway

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hfgate/hfgate/gateway/health"
	"github.com/hfgate/hfgate/middleware"
)

// flight is what the gateway knows about one forwarded request beyond net/http: its hold
// deadline, how long it was held, whether it was replayed, and which upstream connections its
// attempts were given. It is the request's context itself (one allocation for the record and the
// context value), so the replaying transport and the access log find it.
type flight struct {
	context.Context
	deadline time.Time // the hold deadline, from arrival; a replay keeps it

	// Written by the request's own goroutine (the handler, then RoundTrip and Transport's
	// GotConn hook on it), read by the access log after the handler returned.
	held     time.Duration
	replayed bool
	trace    httptrace.ClientTrace
	conns    [2]connMark // the connections of the attempts so far
	attempts int         // GotConn calls: Transport retries on a reused connection inside one RoundTrip
}

// connMark is a connection an attempt was given and how much had been written to it by then;
// peerClosed says the upstream had already closed it (see meteredConn.peerClosed).
type connMark struct {
	conn       *meteredConn
	written    int64
	peerClosed bool
}

type flightKey struct{}

// newFlight returns a request's flight; use its withTrace as the request's context.
func newFlight(parent context.Context, deadline time.Time) *flight {
	f := &flight{Context: parent, deadline: deadline}
	f.trace.GotConn = f.gotConn
	return f
}

// withTrace is the context to give the request: the flight, with its GotConn hook installed.
func (f *flight) withTrace() context.Context { return httptrace.WithClientTrace(f, &f.trace) }

// Value returns the flight itself for flightKey and asks the parent otherwise.
func (f *flight) Value(key any) any {
	if key == (flightKey{}) {
		return f
	}
	return f.Context.Value(key)
}

func (f *flight) gotConn(info httptrace.GotConnInfo) {
	if f.attempts < len(f.conns) {
		mc, _ := info.Conn.(*meteredConn)
		mark := connMark{conn: mc}
		if mc != nil {
			mark.written = mc.written.Load()
			// Only a reused connection can have been closed by the upstream already; the
			// check is one non-blocking syscall.
			mark.peerClosed = info.Reused && mc.peerClosed()
		}
		f.conns[f.attempts] = mark
	}
	f.attempts++
}

// mayHaveReached reports whether any byte of the request may have gone to the upstream: some
// connection it was given was written to after that, and had not been closed by the upstream
// before. A connection that is not a meteredConn, or more attempts than recorded, count as
// reached.
func (f *flight) mayHaveReached() bool {
	if f.attempts > len(f.conns) {
		return true
	}
	for _, m := range f.conns[:f.attempts] {
		if m.conn == nil || !m.peerClosed && m.conn.written.Load() > m.written {
			return true
		}
	}
	return false
}

// flightFrom returns the request's flight, or nil when it has none (holding off).
func flightFrom(ctx context.Context) *flight {
	f, _ := ctx.Value(flightKey{}).(*flight)
	return f
}

// replayTransport sends a request once more, when its first attempt never reached the upstream,
// after holding it until the restarted upstream is ready (within the request's hold deadline).
//
// "Never reached" means no byte of the request went to any upstream socket: the connection
// attempt was refused or reset (a dial error, no connection at all), or every connection its
// attempts were given (the flight's GotConn marks) broke before anything more was written to it.
// Anything else may have reached the upstream and is never replayed, whatever its method: a
// request that crashed the upstream would crash the fresh one too, and a POST /chat that reached
// it may already have cost an LLM call. Transport's own retry (a request on a reused connection
// that broke before anything was written, or an idempotent one whose reused connection broke
// before an answer) stays as it is: it runs inside next, and a request it sent once is never
// sent again here.
//
// Only requests whose body can be sent again are replayed: no body, a body in memory (GetBody,
// set by the body buffer middleware), or a streamed body of which nothing was read yet.
type replayTransport struct {
	next      http.RoundTripper
	hold      *holdQueue
	readiness *health.Tracker
	logger    *slog.Logger
	onReplay  func() // metrics; nil = none
	closeIdle func() // closes the pool's idle connections; nil = none
}

func (t *replayTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	f := flightFrom(req.Context())
	if f == nil || f.replayed {
		return t.next.RoundTrip(req)
	}
	var streamed *unreadBody
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		// Transport closes the body when the attempt fails; keep it readable for the replay.
		streamed = &unreadBody{ReadCloser: req.Body}
		req = req.WithContext(req.Context()) // a shallow copy, whose Body may be replaced
		req.Body = streamed
	}
	res, err := t.next.RoundTrip(req)
	// Every attempt that never reached the upstream is followed by a hold and another attempt,
	// until one reaches it or the hold ends (deadline, client gone, upstream not expected back).
	// An attempt on a connection the dead upstream had closed leaves the state ready (nothing
	// proves the upstream down yet), so its hold ends at once; the next attempt dials afresh and
	// is refused, which marks the upstream unreachable, and that hold lasts until it is back.
	// Each loop needs a fresh "never reached" verdict, so nothing is ever sent twice.
	for attempt := 1; t.replayable(req, f, streamed, err) && attempt <= maxReplays; attempt++ {
		if err = t.holdAfter(req, f, err); err != nil {
			return nil, err
		}
		res, err = t.resend(req, f, streamed)
	}
	return res, err
}

// maxReplays bounds the attempts after the first. Each one follows a wait in the hold queue and
// a fresh dial, so the bound only matters for an upstream that accepts the health check but
// refuses every request; the hold deadline bounds the time in any case.
const maxReplays = 4

// replayable reports whether the attempt that ended with err may be sent again: it failed, no
// byte of it reached the upstream, the client is still there, and its body can be sent again.
func (t *replayTransport) replayable(req *http.Request, f *flight, streamed *unreadBody, err error) bool {
	return err != nil && !f.mayHaveReached() && req.Context().Err() == nil && (streamed == nil || !streamed.read) &&
		req.Header.Get("Expect") == "" // headers may have gone ahead of a 100-continue body
}

// holdAfter records a failed attempt that never reached the upstream and holds the request
// until the upstream is ready and its turn comes. It returns nil when the request may be sent
// again, and the attempt's error otherwise.
func (t *replayTransport) holdAfter(req *http.Request, f *flight, err error) error {
	if isDialError(err) {
		t.readiness.MarkUnreachable()
	} else {
		// A connection the upstream had closed (a crash, or an idle keep-alive timeout). Its
		// pooled siblings are likely stale too: the next attempt dials afresh.
		t.readiness.Poke()
		if t.closeIdle != nil {
			t.closeIdle()
		}
	}
	t.logger.Warn("upstream unreachable; holding the request to send it again",
		"request_id", req.Header.Get(middleware.HeaderRequestID), "err", err)
	outcome, held := t.hold.wait(req.Context(), f.deadline)
	f.held += held
	if outcome != holdForwarded {
		return err
	}
	return nil
}

// resend sends the request again with a fresh body and fresh connection marks.
func (t *replayTransport) resend(req *http.Request, f *flight, streamed *unreadBody) (*http.Response, error) {
	again := req.WithContext(req.Context()) // a shallow copy, for the fresh Body
	switch {
	case req.GetBody != nil:
		body, err := req.GetBody()
		if err != nil {
			return nil, err
		}
		again.Body = body
	case streamed != nil:
		again.Body = streamed // still shielded: a failed replay may be followed by another
	}
	f.replayed = true
	f.attempts = 0 // the replay's own connection marks start afresh
	if t.onReplay != nil {
		t.onReplay()
	}
	return t.next.RoundTrip(again)
}

// unreadBody shields a streamed request body from Transport's Close on a failed attempt and
// records whether any of it was read (then it cannot be sent again).
type unreadBody struct {
	io.ReadCloser
	read bool // only touched by Transport's writer, before RoundTrip returns
}

func (b *unreadBody) Read(p []byte) (int, error) {
	b.read = true
	return b.ReadCloser.Read(p)
}

// Close does nothing: the server closes the request body when the handler returns.
func (b *unreadBody) Close() error { return nil }

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
