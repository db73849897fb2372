package gateway

import (
	"encoding/binary"
	"net"
	"sync"
	"time"
)

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
