// Package gateway is everything in hfgate that knows about the upstream. A newcomer reads it in
// this order:
//
//   - gateway.go: Options, the Gateway and New, which wires the parts below together.
//   - server.go: the server's lifecycle: Serve binds nothing itself (main listens first), runs
//     the background loops (the prober, the supervisor) and, on SIGTERM, drains in order.
//   - routes.go: where a request enters (Gateway.ServeHTTP), the middleware order, and forward,
//     which answers the gateway's own routes, takes the request through the line in front of the
//     upstream (admit: it may wait there, or be answered busy or not ready), and hands it to the
//     proxy.
//   - flight.go: the per-request record made at entry (the client address, its arrival and
//     deadline in the line, its slot, the time it queued, replayed, event stream), which every
//     later part reads instead of deciding again.
//   - requests.go: the request-shape rules applied before anything is forwarded.
//   - handlers.go: every answer the gateway gives itself: /ready, /healthz, the not-ready and
//     busy 503s with Retry-After (as an event stream for a browser's EventSource), the status
//     page on "/" (status.html), the fixed JSON error shapes.
//   - proxy.go: the one httputil.ReverseProxy: rewrite (X-Forwarded-*, the client address that
//     gateway/clientip resolved), the first byte (the line's latency sample), event streams,
//     and the mapping of upstream errors to answers.
//   - transport.go: the chain the proxy sends through, built once: the pooled Transport with
//     its metered connections, the time-to-first-byte metric, the replay.
//   - proxywriter.go: the ResponseWriter handed to the proxy (1xx, a held final status, flush,
//     hijack); conns.go: the connections hijacked for WebSockets, closed at shutdown.
//   - admission.go and replay.go: the request lifecycle around the proxy: the one line in front
//     of the upstream (package gate, kept in step with the upstream's state: it holds requests
//     while a restarted upstream comes back and while a busy one works through its queue), and
//     the replay of a request that never reached it.
//   - metrics.go: the optional Prometheus metrics and their listener (only with METRICS_ADDR).
//
// The rooms below it have no HTTP in them: gateway/gate is the line (a limit of requests in
// flight, found from the upstream's latency or fixed, the rest waiting in arrival order, early
// refusals); gateway/health is the readiness state machine and its prober; gateway/supervise is
// the supervisor of the upstream child process with its line relay; gateway/clientip resolves
// the client address from the peer and X-Forwarded-For. Dependencies point one way: main ->
// gateway -> {gateway/gate, gateway/health, gateway/supervise, gateway/clientip, middleware,
// config}; the logger comes from main (package logging) as a *slog.Logger.
//
// The tests share one harness, harness_test.go: a gateway on a loopback port in front of a
// test upstream, with a dial gate that plays an upstream not listening yet.
//
// A request passes, in order: metrics (when METRICS_ADDR is set), request ID, access log, panic
// recovery, CORS (when configured), body limit, body buffer (small bodies read whole, so a
// request that never reached the upstream can be sent again), then forward: one of the
// gateway's routes (/healthz, /ready), the status page on "/" while not ready, or the line and
// then the proxy.
package gateway
