package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// smallJSON is the throughput workload's answer: about the size of a short chat reply.
const smallJSON = `{"reply":"You said: hello. Thanks for chatting!","model":"echo-bot-1"}`

// maxHold bounds how long /sse?hold=1 keeps a stream open.
const maxHold = 2 * time.Minute

// upstreamHandler is the fast upstream the proxies forward to.
//
//	GET  /json    a 70-byte JSON answer
//	GET  /health  {"status":"ok"}
//	POST /echo    the request body, back
//	GET  /sse     an event stream: n events (default 20), interval ms apart (default 5), each
//	              "data: <send time, Unix ns>"; with hold=1 the stream then stays open (a comment
//	              every 10 s) until the client leaves or maxHold passes.
//
// The stream deliberately sends no X-Accel-Buffering header, so proxies buffer or not as
// configured, not because the upstream asked.
func upstreamHandler() http.Handler {
	body := []byte(smallJSON)
	mux := http.NewServeMux()
	mux.HandleFunc("/json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = w.Write(body)
	})
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"ok"}`)
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", r.Header.Get("Content-Type"))
		_, _ = io.Copy(w, io.LimitReader(r.Body, 16<<20))
	})
	mux.HandleFunc("/sse", serveSSE)
	return mux
}

func serveSSE(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	n := queryInt(q.Get("n"), 20, 0, 10000)
	interval := time.Duration(queryInt(q.Get("interval"), 5, 0, 1000)) * time.Millisecond
	hold := q.Get("hold") == "1"
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	rc := http.NewResponseController(w)
	w.WriteHeader(http.StatusOK)
	_ = rc.Flush()
	ctx := r.Context()
	t := time.NewTimer(0)
	defer t.Stop()
	<-t.C
	for i := range n {
		if i > 0 && interval > 0 {
			t.Reset(interval)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
		if _, err := fmt.Fprintf(w, "id: %d\ndata: %d\n\n", i, time.Now().UnixNano()); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
	if !hold {
		return
	}
	deadline, cancel := context.WithTimeout(ctx, maxHold)
	defer cancel()
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-deadline.Done():
			return
		case <-tick.C:
			if _, err := io.WriteString(w, ": ping\n\n"); err != nil {
				return
			}
			_ = rc.Flush()
		}
	}
}

func queryInt(s string, def, lo, hi int) int {
	v, err := strconv.Atoi(s)
	if err != nil {
		return def
	}
	return min(max(v, lo), hi)
}

// runUpstream serves upstreamHandler on addr until the process is stopped.
func runUpstream(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: upstreamHandler(), ReadHeaderTimeout: 10 * time.Second}
	return srv.Serve(ln)
}
