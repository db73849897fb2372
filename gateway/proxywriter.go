package gateway

import (
	"bufio"
	"net"
	"net/http"

	"github.com/labstack/echo/v4"
)

// proxyWriter is the http.ResponseWriter handed to ReverseProxy. It writes through echo's
// Response (so status and size reach the access log) and adds what echo's Response lacks:
// 1xx informational answers that do not commit the response, and hijacked connections
// (WebSockets) recorded so shutdown can close them: http.Server.Shutdown neither waits for nor
// closes them.
type proxyWriter struct {
	resp      *echo.Response
	conns     *hijackedConns
	websocket bool // the request asked for a WebSocket upgrade
	// pending is the final status given to WriteHeader and not yet passed on: it goes out with
	// the first byte of the body, the first flush, or commit at the end. Until then the
	// upstream's answer can still be replaced (see Gateway.forward): an upstream that dies
	// between its headers and its body must not cost the client its 503 with Retry-After.
	pending int
}

func (w *proxyWriter) Header() http.Header { return w.resp.Header() }
func (w *proxyWriter) Write(b []byte) (int, error) {
	w.commit()
	return w.resp.Write(b)
}
func (w *proxyWriter) Unwrap() http.ResponseWriter { return w.resp.Writer }

// WriteHeader passes 1xx answers (other than 101) straight through: echo would mark the response
// committed and drop the final status. A final status is held until commit.
func (w *proxyWriter) WriteHeader(code int) {
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		w.resp.Writer.WriteHeader(code)
		return
	}
	w.pending = code
}

// commit passes on a status WriteHeader holds.
func (w *proxyWriter) commit() {
	if w.pending != 0 {
		code := w.pending
		w.pending = 0
		w.resp.WriteHeader(code)
	}
}

// FlushError flushes without echo's panic when flushing is unsupported.
func (w *proxyWriter) FlushError() error {
	w.commit()
	if !w.resp.Committed {
		w.resp.WriteHeader(w.resp.Status)
	}
	return http.NewResponseController(w.resp.Writer).Flush()
}

// Hijack takes over the connection for a protocol switch and records it.
func (w *proxyWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.resp.Writer).Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.resp.Status = http.StatusSwitchingProtocols
	w.resp.Committed = true
	return w.conns.track(conn, w.websocket), brw, nil
}
