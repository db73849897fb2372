// Package supervise runs the upstream's child process for hfgate: it starts the command in a
// process group of its own, relays its stdout and stderr to a logger one record per line
// (lines capped in size, values of secret-looking query parameters masked), restarts it after
// an exit with capped, jittered exponential backoff, and on shutdown stops the whole group
// (SIGTERM, then SIGKILL after a timeout), so no orphan keeps the port or the pipes.
//
// Files: the supervisor (supervisor.go: Supervisor, its Run loop and Status), the line relay
// (relay.go) and the query masking of relayed lines (querymask.go).
//
// It is a package of its own because it is a self-contained concern with no HTTP in it: it
// knows processes, pipes and signals, not requests or readiness, and its tests start real
// processes. Dependencies point one way: gateway wires a Supervisor in (turning OnStart and
// OnExit into readiness changes and showing Status in /ready and the metrics), and supervise
// imports nothing of hfgate. The cleaning and secret masking of log records stay in gateway's
// log handler, which the Logger given to a Supervisor already goes through; only the masking
// of query parameters, which the handler cannot know in advance, lives here.
//
// It runs on Linux and macOS; what differs (the parent-death signal, waiting for an exit without
// reaping, the unit of peak memory) is in proc_linux.go, proc_darwin.go and maxrss_*.go.
package supervise
