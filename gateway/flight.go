package gateway

import (
	"context"
	"net/http/httptrace"
	"time"

	"github.com/hfgate/hfgate/gateway/clientip"
	"github.com/hfgate/hfgate/gateway/gate"
)

// flight is the per-request record: what the gateway decided about one request beyond
// net/http, decided once and read by every part that needs it: the client address (rewrite and
// the access log), the hold deadline, how long it was held, whether it was replayed, whether
// its answer is an event stream (the metrics), and which upstream connections its attempts were
// given. It is made where the request enters (Gateway.ServeHTTP) and is the request's context
// itself (one allocation for the record and the context value), so everything below finds it.
type flight struct {
	context.Context
	client      clientip.Client // resolved at arrival (clientip.Resolve)
	arrived     time.Time       // its place in the line in front of the upstream; a replay keeps it
	deadline    time.Time       // the latest it may be admitted (HOLD_TIMEOUT after arrival)
	wantsStream bool            // it asks for an event stream or a WebSocket (wantsStream)

	// Written by the request's own goroutine (the handler, then RoundTrip, Transport's GotConn
	// hook and ModifyResponse on it), read by the access log after the handler returned.
	slot     *gate.Slot    // its place among the requests in flight; nil until admitted
	queued   time.Duration // time in line, over all its attempts
	replayed bool
	stream   bool // the upstream answered with an event stream
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
func newFlight(parent context.Context, client clientip.Client, arrived, deadline time.Time) *flight {
	f := &flight{Context: parent, client: client, arrived: arrived, deadline: deadline}
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

// flightFrom returns the request's flight, or nil for a request that did not enter through
// Gateway.ServeHTTP (unit tests of the proxy alone).
func flightFrom(ctx context.Context) *flight {
	f, _ := ctx.Value(flightKey{}).(*flight)
	return f
}

// isStream reports whether the upstream answered the request with an event stream; false for a
// nil flight.
func (f *flight) isStream() bool { return f != nil && f.stream }

// done gives back the request's slot, if it was admitted.
func (f *flight) done() {
	if f.slot != nil {
		f.slot.Done()
	}
}
