package gateway

import (
	"bufio"
	"encoding/binary"
	"net"
	"net/http"
	"sync"
	"time"

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

// hijackedConns is the set of connections taken over by protocol switches.
type hijackedConns struct {
	mu    sync.Mutex
	conns map[*trackedConn]struct{}
}

func newHijackedConns() *hijackedConns {
	return &hijackedConns{conns: make(map[*trackedConn]struct{})}
}

func (h *hijackedConns) track(c net.Conn, websocket bool) *trackedConn {
	tc := &trackedConn{Conn: c, owner: h, websocket: websocket}
	h.mu.Lock()
	h.conns[tc] = struct{}{}
	h.mu.Unlock()
	return tc
}

// CloseAll closes every tracked connection; WebSockets first get a close frame with status 1001
// (going away) so clients know to reconnect rather than report an error.
func (h *hijackedConns) CloseAll() int {
	h.mu.Lock()
	conns := make([]*trackedConn, 0, len(h.conns))
	for c := range h.conns {
		conns = append(conns, c)
	}
	h.mu.Unlock()
	for _, c := range conns {
		if c.websocket {
			c.writeClose(1001, "server shutting down")
		}
		_ = c.Close()
	}
	return len(conns)
}

// trackedConn serialises writes so a close frame is never written in the middle of one of the
// proxy's writes. (It cannot know upstream frame boundaries that span writes; in practice
// frames from uvicorn arrive whole, and the connection is closed right after.)
type trackedConn struct {
	net.Conn
	owner     *hijackedConns
	websocket bool
	wmu       sync.Mutex
	closeOnce sync.Once
}

func (c *trackedConn) Write(b []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.Conn.Write(b)
}

// CloseWrite keeps ReverseProxy's half-close propagation working.
func (c *trackedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *trackedConn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		c.owner.mu.Lock()
		delete(c.owner.conns, c)
		c.owner.mu.Unlock()
		err = c.Conn.Close()
	})
	return err
}

// writeClose sends an unmasked (server-to-client) WebSocket close frame.
func (c *trackedConn) writeClose(code uint16, reason string) {
	if len(reason) > 123 {
		reason = reason[:123]
	}
	frame := make([]byte, 4, 4+len(reason))
	frame[0] = 0x88 // FIN + opcode 8 (close)
	frame[1] = byte(2 + len(reason))
	binary.BigEndian.PutUint16(frame[2:], code)
	frame = append(frame, reason...)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.Conn.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = c.Conn.Write(frame)
}
