package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"time"
)

// Serve runs the gateway on ln until ctx is done, then shuts down in order: stop accepting,
// drain in-flight requests and streams (up to SHUTDOWN_TIMEOUT; then end what is left), close
// WebSockets with 1001, stop the prober and the child. It returns nil after a clean shutdown.
func (g *Gateway) Serve(ctx context.Context, ln net.Listener) error {
	// Request contexts derive from reqCtx, so that at the drain deadline the requests still
	// running (long event streams) can be ended cleanly rather than cut.
	if g.metrics != nil {
		stopMetrics, err := g.metrics.serveMetrics(g.cfg.MetricsAddr, g.logger)
		if err != nil {
			_ = ln.Close()
			return err
		}
		// Deferred first, so it runs last: scrapes see the drain and the child's stop.
		defer stopMetrics()
	}
	reqCtx, cancelRequests := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRequests()
	srv := &http.Server{
		Handler:           g,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		// No WriteTimeout: it would cut event streams. UPSTREAM_TIMEOUT bounds the wait for the
		// upstream's headers instead.
		BaseContext: func(net.Listener) context.Context { return reqCtx },
		ErrorLog:    slog.NewLogLogger(g.logger.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	// Deferred after the drain below: the child outlives the requests that need it.
	defer g.startBackground(ctx)()

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	}
	g.shutdown(srv, ln, cancelRequests)
	return nil
}

// startBackground starts what runs beside the server (the prober, or the misconfiguration
// reminder; the supervisor) and returns the func that stops it all, the child last.
func (g *Gateway) startBackground(ctx context.Context) (stop func()) {
	loopsCtx, stopLoops := context.WithCancel(context.WithoutCancel(ctx))
	childCtx, stopChild := context.WithCancel(context.WithoutCancel(ctx))
	var loops, child sync.WaitGroup
	if len(g.cfg.Missing) > 0 {
		g.readiness.MarkMisconfigured(g.cfg.Missing)
		loops.Go(g.guard("misconfiguration reminder", func() { g.remindMisconfigured(loopsCtx) }))
	} else {
		loops.Go(g.guard("prober", func() { g.prober.Run(loopsCtx) }))
		if g.supervisor != nil {
			child.Go(g.guard("supervisor", func() {
				if err := g.supervisor.Run(childCtx); err != nil {
					g.logger.Error("supervisor stopped", "err", err)
				}
			}))
		}
	}
	return func() {
		stopLoops()
		loops.Wait()
		stopChild()
		child.Wait()
	}
}

// guard wraps a background loop so that a panic in it is logged instead of taking the Space
// down with it. (Were the supervisor to panic, its child would run on unsupervised until the
// gateway exits, when Pdeathsig ends it on Linux.)
func (g *Gateway) guard(name string, loop func()) func() {
	return func() {
		defer func() {
			if v := recover(); v != nil {
				g.logger.Error("background loop panicked", "loop", name, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			}
		}()
		loop()
	}
}

// shutdown drains the HTTP server. Serve stops the child afterwards, so in-flight requests can
// still reach it while they finish.
func (g *Gateway) shutdown(srv *http.Server, ln net.Listener, cancelRequests context.CancelFunc) {
	start := g.now()
	// From here /ready answers 503 "draining", so an uptime monitor or the platform sees the
	// restart, and a request that still arrives on an open connection is turned away with
	// Retry-After rather than started when it might not finish.
	g.readiness.MarkDraining()
	// Shutdown would close the listener too; closing it first makes the log line below true
	// when it is written.
	_ = ln.Close()
	g.logger.Info("shutting down: draining requests", "timeout", g.cfg.ShutdownTimeout)
	drainCtx, cancel := context.WithTimeout(context.Background(), g.cfg.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(drainCtx)
	// WebSockets are not waited for by Shutdown. Say goodbye (1001) before the request
	// contexts are canceled below: that would close them without a word.
	if n := g.conns.CloseAll(); n > 0 {
		g.logger.Info("closed upgraded connections", "count", n)
	}
	if err != nil {
		// Deadline: end what is still running. Event streams end cleanly (see eventStreamBody).
		g.logger.Warn("drain deadline reached: ending open requests")
		cancelRequests()
		closeCtx, cancelClose := context.WithTimeout(context.Background(), time.Second)
		if err := srv.Shutdown(closeCtx); err != nil {
			_ = srv.Close()
		}
		cancelClose()
	}
	g.logger.Info("requests drained", "took", g.now().Sub(start).Round(time.Millisecond))
}

// remindMisconfigured repeats the misconfiguration in the log, since the first line scrolls
// away in the Space's log console.
func (g *Gateway) remindMisconfigured(ctx context.Context) {
	t := time.NewTicker(g.remindEvery)
	defer t.Stop()
	for {
		g.logMisconfigured()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (g *Gateway) logMisconfigured() {
	g.logger.Error("misconfigured: required variables are missing; the upstream is not started",
		"missing", strings.Join(g.cfg.Missing, ","), "hint", setSecretsHint)
}
