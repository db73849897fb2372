// Package gateway is everything in hfgate that knows about the upstream: the HTTP server and its
// drain (gateway.go), the one reverse proxy (proxy.go) and the connections it hijacks for
// WebSockets (conns.go), the readiness state machine (readiness.go) and its prober (prober.go),
// the answers the gateway gives itself while the upstream is not ready (answers.go), the
// optional Prometheus metrics and their listener (metrics.go, only when METRICS_ADDR is set),
// and the logger every line goes through (log.go).
//
// The supervisor of the upstream child process, with its line relay, is the package below,
// gateway/supervise: it has no HTTP in it. gateway.go wires it in when UPSTREAM_CMD is set:
// its starts and exits become readiness changes, and its Status is shown in /ready, the
// not-ready answers and the metrics.
//
// Dependencies point one way: main -> gateway -> {gateway/supervise, middleware, config}.
//
// A request passes, in order: metrics (when METRICS_ADDR is set), request ID, access log, panic recovery, CORS (when configured),
// body limit, then either one of the gateway's routes (/healthz, /ready), the not-ready answer
// (503 + Retry-After, or the status page on "/"), or the proxy.
package gateway
