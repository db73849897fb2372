package health

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"time"
)

// Prober checks the upstream's health endpoint in a loop and reports to a Tracker. It checks
// fast while the upstream is not ready, so the gateway turns ready within one FastInterval of the
// upstream answering, and slowly once it is; Tracker.Wake interrupts the wait.
type Prober struct {
	// URL is the absolute health-check URL. Required.
	URL string
	// Client sends the checks. Required; Timeout bounds each check, so the client needs none.
	Client *http.Client
	// Tracker receives the results. Required.
	Tracker *Tracker
	// Logger logs failed checks at debug level. Required.
	Logger *slog.Logger
	// FastInterval is the wait between checks while not ready. Zero value: 200ms.
	FastInterval time.Duration
	// SlowInterval is the wait between checks while ready. Zero value: 25 FastIntervals, at
	// least 5s.
	SlowInterval time.Duration
	// Timeout bounds one check. Zero value: 2s.
	Timeout time.Duration
	// ProgressEvery is how often a "waiting for upstream" line is logged while the upstream is
	// not ready (see progressLog). Zero value: 5s.
	ProgressEvery time.Duration
	// Now is the clock for the progress lines. Zero value: time.Now.
	Now func() time.Time
	// FailureThreshold is how many consecutive failed checks turn a ready upstream unavailable;
	// one slow answer from a busy upstream should not turn every request away. (A request that
	// cannot connect at all flips the state at once; see Tracker.MarkUnreachable.)
	// Zero value: 2.
	FailureThreshold int

	// LastAnswer returns when the upstream last answered a forwarded request (its response
	// headers). A check that times out while the upstream answered a request meanwhile is not
	// counted as failed: the upstream is alive and busy, and a busy backend is not an outage
	// (its health endpoint waits behind the work it is doing). A refused connection or an
	// error status still counts. Zero value: every failed check counts.
	LastAnswer func() time.Time

	failures int         // consecutive failed checks; only the Run goroutine touches it
	progress progressLog // start-up progress lines; only the Run goroutine touches it
}

func (p *Prober) withDefaults() {
	if p.FastInterval <= 0 {
		p.FastInterval = 200 * time.Millisecond
	}
	if p.SlowInterval <= 0 {
		p.SlowInterval = max(25*p.FastInterval, 5*time.Second)
	}
	if p.Timeout <= 0 {
		p.Timeout = 2 * time.Second
	}
	if p.FailureThreshold <= 0 {
		p.FailureThreshold = 2
	}
	if p.ProgressEvery <= 0 {
		p.ProgressEvery = 5 * time.Second
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	p.progress.logger, p.progress.interval = p.Logger, p.ProgressEvery
}

// Run checks until ctx is done.
func (p *Prober) Run(ctx context.Context) {
	p.withDefaults()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-p.Tracker.Wake():
		}
		p.checkOnce(ctx)
		interval := p.FastInterval
		if p.Tracker.IsReady() {
			interval = p.SlowInterval
		}
		timer.Reset(interval)
	}
}

// checkOnce runs one health check and reports it. Any HTTP answer below 500 counts as up:
// the upstream is accepting connections and its application answers.
func (p *Prober) checkOnce(ctx context.Context) bool {
	p.withDefaults()
	start := p.Now()
	ctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	ok, status := false, 0
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL, nil)
	if err == nil {
		req.Header.Set("User-Agent", "hfgate-prober")
		var resp *http.Response
		resp, err = p.Client.Do(req)
		if err == nil {
			// Drain a little so the connection can be reused; the body is not needed.
			_, _ = io.CopyN(io.Discard, resp.Body, 4<<10)
			_ = resp.Body.Close()
			status = resp.StatusCode
			ok = status < http.StatusInternalServerError
			if !ok {
				p.Logger.Debug("health check failed", "status", resp.StatusCode)
			}
		}
	}
	if err != nil {
		if ctx.Err() != nil && ctx.Err() != context.DeadlineExceeded {
			return false // shutting down: not a verdict on the upstream
		}
		p.Logger.Debug("health check failed", "err", err)
	}
	if ok {
		p.failures = 0
		p.Tracker.MarkReady()
		return true
	}
	if ctx.Err() == context.DeadlineExceeded && p.LastAnswer != nil && p.LastAnswer().After(start) {
		p.Logger.Debug("health check timed out while the upstream answers requests: busy, not down")
		return false
	}
	p.failures++
	if p.failures >= p.FailureThreshold {
		p.Tracker.MarkProbeFailed()
	}
	p.progress.observe(p.Now(), p.Tracker.Snapshot(), probeResult(status, err))
	return false
}
