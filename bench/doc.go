// Command hfbench is hfgate's benchmark harness (`make bench`). It runs, in one process tree on
// loopback, a fast upstream and in front of it hfgate, a bare tuned httputil.ReverseProxy (the
// "Go line"), Caddy, nginx and HAProxy (each as shipped and, for nginx and HAProxy, tuned for
// event streams), loads them with wrk in interleaved rounds, measures event-stream delay, memory
// and start-up, and writes a markdown report and a PNG chart.
//
// Subcommands (the harness runs itself as the upstream and the Go line):
//
//	hfbench [flags]           the whole benchmark; see -h
//	hfbench upstream ADDR     the fast upstream: /json, /health, /echo, /sse
//	hfbench goline ADDR URL   the bare tuned httputil.ReverseProxy in front of URL
//	hfbench profile [flags]   one gateway in front of one upstream under a paced load, profiled
//	                          with perf record -g -p PID (no profiling endpoint in the gateway)
//	hfbench overload [flags]  one uvicorn worker overloaded, open loop, through uvicorn alone,
//	                          its --limit-concurrency, HAProxy, nginx and hfgate (overload.go)
//
// Besides the saturation rounds (wrk), it runs fixed-rate rounds with its own open-loop pacer
// (pace.go): CPU per request at the moderate rates a Space sees.
//
// It lives in its own Go module so that its dependencies (gonum/plot, benchstat) stay out of
// the gateway's go.mod. Every loop in it is bounded in count and time, and it stops only the
// processes it started, by process group.
package main
