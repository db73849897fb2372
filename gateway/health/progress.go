package health

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strconv"
	"syscall"
	"time"
)

// progressLog writes the start-up progress lines: while the upstream is not ready, one line
// every interval with the time spent in the current state and the last health check's result,
// so a long cold start shows in the Space's log console as something happening, not as
// silence. It stops by itself once the upstream is ready. It is fed by the prober after each
// check and used only from the prober's goroutine.
type progressLog struct {
	logger   *slog.Logger
	interval time.Duration

	since  time.Time // the Since of the state being reported; a new state starts the count again
	last   time.Time // when the last line was written (or the state began)
	checks int       // failed checks since the state began
}

// observe records one failed health check at now, described by result, and logs a progress
// line when interval has passed since the last one (or since the state began).
func (pl *progressLog) observe(now time.Time, snap Snapshot, result string) {
	if snap.State == Ready || snap.State == Misconfigured {
		// A failed check while ready is not a start-up (the state line says when it turns
		// unavailable); misconfigured starts nothing.
		return
	}
	if !snap.Since.Equal(pl.since) {
		pl.since, pl.last, pl.checks = snap.Since, snap.Since, 0
	}
	pl.checks++
	if now.Sub(pl.last) < pl.interval {
		return
	}
	pl.last = now
	pl.logger.LogAttrs(context.Background(), slog.LevelInfo, "waiting for upstream",
		slog.String("state", string(snap.State)),
		slog.Duration("elapsed", now.Sub(snap.Since).Round(100*time.Millisecond)),
		slog.String("last_check", result),
		slog.Int("checks", pl.checks))
}

// probeResult describes a failed health check in a few words for the progress line:
// "status 500", "connection refused", "timed out".
func probeResult(status int, err error) string {
	if err == nil {
		return "status " + strconv.Itoa(status)
	}
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timed out"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed before an answer"
	}
	return "error: " + err.Error()
}
