// Package health is hfgate's view of the upstream: one state machine (Tracker: starting, ready,
// unavailable, crashed, misconfigured, draining; every transition under one lock, logged once),
// the prober that feeds it health checks (Prober: the loop, and checkOnce for one round), and
// the start-up progress lines logged while the upstream is not ready.
//
// It imports only the standard library: the gateway drives it (requests that cannot reach the
// upstream, the supervisor's starts and exits) and reads it (IsReady on every request, Snapshot
// for /ready and the not-ready answers, Remaining and RetryAfter for the hold queue and
// Retry-After, Changed for held requests to wait on).
package health
