package gateway

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hfgate/hfgate/gateway/clientip"
	"github.com/hfgate/hfgate/gateway/health"
	"github.com/hfgate/hfgate/middleware"
)

// proxy forwards requests to the upstream. It is built once: one httputil.ReverseProxy, one
// http.Transport, shared by every request.
type proxy struct {
	rp        *httputil.ReverseProxy
	target    *url.URL
	readiness *health.Tracker
	logger    *slog.Logger
	answers   *answers
	conns     *hijackedConns
	now       func() time.Time
	answered  atomic.Int64 // when the upstream last answered a forwarded request (UnixNano)
}

// proxyConfig carries what newProxy needs.
type proxyConfig struct {
	Target    *url.URL
	Transport http.RoundTripper // the chain newTransport builds (a fake in unit tests)
	Readiness *health.Tracker
	Logger    *slog.Logger
	Answers   *answers
	Conns     *hijackedConns
	Now       func() time.Time // the readiness clock; nil = time.Now
}

func newProxy(cfg proxyConfig) *proxy {
	p := &proxy{
		target:    cfg.Target,
		readiness: cfg.Readiness,
		logger:    cfg.Logger,
		answers:   cfg.Answers,
		conns:     cfg.Conns,
		now:       cfg.Now,
	}
	if p.now == nil {
		p.now = time.Now
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite:        p.rewrite,
		Transport:      cfg.Transport,
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.handleError,
		ErrorLog:       slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
		// 16 KiB copy buffers rather than ReverseProxy's 32 KiB: an open event stream holds its
		// buffer for its whole life (1,000 streams, 16 MB less), and chat answers are small;
		// nginx's proxy buffers are 4-8 KiB.
		BufferPool: newBufferPool(16 << 10),
	}
	return p
}

// rewrite sets the upstream URL and the forwarding headers. Host policy: the upstream sees its
// own host (from UPSTREAM_URL) in Host, and the client's in X-Forwarded-Host.
//
// X-Forwarded-For is the chain clientip.Resolve gives: its rightmost entry is the resolved client
// (the trusted hops to its right are dropped, and the gateway does not append the edge), so a
// backend that trusts only its direct peer, the gateway, reports the user. X-Real-IP is that
// same address, always set afresh. X-Forwarded-Proto/Host from a trusted peer (HF's edge, a
// local proxy) are kept; from anyone else they were already removed by ReverseProxy and are
// set afresh, as is X-Forwarded-For (the peer itself).
func (p *proxy) rewrite(pr *httputil.ProxyRequest) {
	pr.SetURL(p.target)
	if pr.Out.GetBody != nil && pr.Out.ContentLength > 0 {
		// A body read whole (middleware.BodyBuffer). ReverseProxy has wrapped it in a reader
		// that hides it is in memory, which makes Transport flush the headers in a write of their
		// own; a fresh in-memory reader lets headers and body go in one write. (Its Close does
		// nothing, which is what ReverseProxy's wrapper was for.)
		if body, err := pr.Out.GetBody(); err == nil {
			pr.Out.Body = body
		}
	}
	client := p.clientOf(pr.In)
	pr.SetXForwarded()
	if client.Addr.IsValid() {
		setSingle(pr.Out.Header, "X-Forwarded-For", client.Chain())
		setSingle(pr.Out.Header, "X-Real-Ip", client.Text)
	} else {
		pr.Out.Header.Del("X-Real-Ip")
	}
	if !client.PeerTrusted {
		return
	}
	if proto := pr.In.Header.Get("X-Forwarded-Proto"); proto == "https" || proto == "http" {
		pr.Out.Header.Set("X-Forwarded-Proto", proto)
	}
	if host := pr.In.Header.Get("X-Forwarded-Host"); host != "" {
		pr.Out.Header.Set("X-Forwarded-Host", host)
	}
}

// lastAnswer is when the upstream last answered a forwarded request (zero before the first):
// the prober does not count a check that timed out meanwhile (health.Prober.LastAnswer).
func (p *proxy) lastAnswer() time.Time {
	if n := p.answered.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// clientOf is the request's client as resolved at its arrival (flight). A request without a
// flight did not enter through Gateway.ServeHTTP (a unit test of the proxy alone): its client
// is unknown, so nothing it sent is trusted and no X-Real-IP is set.
func (p *proxy) clientOf(r *http.Request) clientip.Client {
	if f := flightFrom(r.Context()); f != nil {
		return f.client
	}
	return clientip.Client{}
}

// setSingle sets h[key] to the one value v, reusing the slice already there (the outgoing
// request's own copy, as SetXForwarded or Request.Clone made it) rather than allocating one.
func setSingle(h http.Header, key, v string) {
	if vv := h[key]; len(vv) == 1 {
		vv[0] = v
		return
	}
	h[key] = []string{v}
}

// modifyResponse removes the upstream's CORS and X-Request-ID headers (the gateway owns both,
// and ReverseProxy adds upstream headers to those already set, which would duplicate them) and
// prepares event streams.
func (p *proxy) modifyResponse(res *http.Response) error {
	p.answered.Store(p.now().UnixNano())
	stream := isEventStream(res.Header.Get("Content-Type"))
	if f := flightFrom(res.Request.Context()); f != nil {
		f.stream = stream // decided here, once: the metrics read it
		if f.slot != nil {
			// The backend's work for this request is its time to this first byte; a stream
			// or a WebSocket gives its slot back now (see gate.Slot.FirstByte).
			f.slot.FirstByte(stream || res.StatusCode == http.StatusSwitchingProtocols)
		}
	}
	middleware.StripCORSHeaders(res.Header)
	// The gateway's X-Request-ID is already set (and was sent upstream); an echo of it from
	// the upstream would be added as a second value.
	res.Header.Del(middleware.HeaderRequestID)
	if stream {
		// Tell any buffering proxy in front (nginx and friends) to pass events at once.
		res.Header.Set("X-Accel-Buffering", "no")
		res.Body = &eventStreamBody{ReadCloser: res.Body, p: p, requestID: res.Request.Header.Get(middleware.HeaderRequestID)}
	}
	return nil
}

func isEventStream(contentType string) bool {
	// Fast path without ParseMediaType, which allocates (a parameter map) on every response:
	// only a value starting with the media type, in any case, can name it.
	const mediaType = "text/event-stream"
	contentType = strings.TrimLeft(contentType, " \t")
	if len(contentType) < len(mediaType) || !strings.EqualFold(contentType[:len(mediaType)], mediaType) {
		return false
	}
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == mediaType
}

// eventStreamBody ends an event stream cleanly when the upstream breaks it (a crash, a kill, a
// shutdown deadline). Events are self-delimiting, so a client that sees a clean end has lost
// nothing it could parse; an aborted connection, which ReverseProxy would produce, looks like a
// network failure to a browser. Other bodies keep ReverseProxy's abort: cutting them short
// cleanly would pass a truncated document off as whole.
//
// To end at an event boundary, bytes after the last complete event of a read are held back until
// the event is complete (upstreams normally write whole events, so usually nothing is held);
// an event longer than the copy buffer is passed on as it comes.
type eventStreamBody struct {
	io.ReadCloser
	p         *proxy
	requestID string
	held      []byte // the start of an event not yet complete, to go before the next read
}

func (b *eventStreamBody) Read(buf []byte) (int, error) {
	n := copy(buf, b.held)
	if n < len(b.held) {
		// More held than fits (a tiny buffer): pass on what fits.
		b.held = b.held[n:]
		return n, nil
	}
	b.held = b.held[:0]
	for {
		m, err := b.ReadCloser.Read(buf[n:])
		n += m
		switch {
		case err == io.EOF:
			return n, io.EOF // the upstream's own end, whole or not
		case err != nil:
			if errors.Is(err, context.Canceled) {
				// The client left, or the drain deadline passed: nothing wrong upstream.
				b.p.logger.Debug("event stream ended by the request context", "request_id", b.requestID)
			} else {
				b.p.logger.Warn("event stream from upstream broke; ending it cleanly", "request_id", b.requestID, "err", err)
				b.p.readiness.Poke()
			}
			return lastEventEnd(buf[:n]), io.EOF
		}
		if end := lastEventEnd(buf[:n]); end > 0 {
			b.held = append(b.held, buf[end:n]...)
			return end, nil
		}
		if n == len(buf) {
			return n, nil // no event ends in a full buffer: too long to hold back
		}
	}
}

// lastEventEnd returns the length of the part of p that ends with a complete event (a blank
// line: "\n\n", "\r\n\r\n" or "\r\r"), or 0 when no event ends in p.
func lastEventEnd(p []byte) int {
	end := 0
	if i := bytes.LastIndex(p, []byte("\n\n")); i >= 0 {
		end = i + 2
	}
	if i := bytes.LastIndex(p, []byte("\r\n\r\n")); i+4 > end && i >= 0 {
		end = i + 4
	}
	if i := bytes.LastIndex(p, []byte("\r\r")); i+2 > end && i >= 0 {
		end = i + 2
	}
	return end
}

// handleError answers when the upstream could not give a response. The client never sees the
// error text or the upstream's address, only the fixed JSON shapes in answers.
func (p *proxy) handleError(w http.ResponseWriter, r *http.Request, err error) {
	reqID := r.Header.Get(middleware.HeaderRequestID)
	var maxBytes *http.MaxBytesError
	switch {
	case errors.As(err, &maxBytes):
		p.answers.writeError(w, r, http.StatusRequestEntityTooLarge, "request body too large", reqID)
	case r.Context().Err() != nil:
		// The client went away (or the server is shutting down). The access log records 499.
		abandon(r)
		p.answers.writeNotReady(w, r, reqID)
	case isDialError(err):
		// Nothing listens (or the connection attempt was reset): the upstream is down.
		p.readiness.MarkUnreachable()
		p.logger.Warn("upstream unreachable", "request_id", reqID, "err", err)
		p.answers.writeNotReady(w, r, reqID)
	case isConnectionLost(err):
		// An established connection broke before the answer. The upstream may be dying, or
		// it may just have closed an idle keep-alive connection as this request was sent
		// (which Transport cannot retry for a request with a body). Ask the prober rather
		// than turn everyone away on one request's word.
		p.readiness.Poke()
		p.logger.Warn("upstream connection lost", "request_id", reqID, "err", err)
		p.answers.writeNotReady(w, r, reqID)
	case isTimeout(err):
		abandon(r)
		p.logger.Warn("upstream timed out", "request_id", reqID, "err", err)
		p.answers.writeError(w, r, http.StatusGatewayTimeout, "the service took too long to answer", reqID)
	default:
		p.logger.Warn("upstream request failed", "request_id", reqID, "err", err)
		p.answers.writeError(w, r, http.StatusBadGateway, "the service gave an invalid answer", reqID)
	}
}

// abandon tells the line that the upstream had the request but its answer is not waited for any
// more (gate.Slot.Abandon): a backend too slow for its clients must not be judged only by the
// answers that made it.
func abandon(r *http.Request) {
	if f := flightFrom(r.Context()); f != nil && f.slot != nil && f.mayHaveReached() {
		f.slot.Abandon()
	}
}

// isDialError reports a failed connection attempt: refused, reset or timed out while dialing.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// isConnectionLost reports an established connection that broke before a response. net.ErrClosed
// is the same loss seen from the other side: Transport's reader saw the upstream close the
// connection and closed it while the request body was still being written to it.
func isConnectionLost(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) ||
		// Transport's (unexported) error for a kept-alive connection the upstream closed just
		// as this request was given to it; without this, a crashing upstream gives some
		// clients a 502 instead of the 503 with Retry-After.
		err.Error() == "http: server closed idle connection"
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// bufferPool is a small free list of copy buffers for ReverseProxy (a channel rather than
// sync.Pool, which would allocate a header on every Put of a slice).
type bufferPool struct {
	size int
	pool chan []byte
}

func newBufferPool(size int) *bufferPool {
	return &bufferPool{size: size, pool: make(chan []byte, 64)}
}

func (b *bufferPool) Get() []byte {
	select {
	case buf := <-b.pool:
		return buf
	default:
		return make([]byte, b.size)
	}
}

func (b *bufferPool) Put(buf []byte) {
	select {
	case b.pool <- buf:
	default:
	}
}
