package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// WriterOptions configures NewWriter. Zero values are documented per field.
type WriterOptions struct {
	// Limit is the most bytes of log lines held at once, waiting or being written. Access
	// lines may fill three quarters of it; the last quarter is kept for every other line.
	// Zero value: 256 KiB.
	Limit int
	// FlushEvery is the longest a line waits before the writer starts writing it out.
	// Zero value: 100ms.
	FlushEvery time.Duration
}

const (
	defaultLogLimit      = 256 << 10
	defaultLogFlushEvery = 100 * time.Millisecond
	// logFlushAt is how many waiting bytes start a write at once rather than at FlushEvery
	// (at most half the limit), so that a burst goes out in pipe-sized writes and leaves the
	// rest of the buffer free.
	logFlushAt = 32 << 10
)

// Writer stands between the logger and stderr so that a log reader that stalls (a full
// pipe to the Space's console) never stalls a request. Writes only append the line to a
// bounded buffer; one goroutine writes the buffer out, FlushEvery after the first line of a
// batch arrived, or at once when 32 KiB are waiting. With the reader keeping up, a line reaches
// it within FlushEvery (100 ms), and a busy gateway makes one write a batch rather than one a
// request.
//
// When the buffer is full, lines are dropped whole, never cut, and counted:
//   - access lines (see New: info "request" records, and debug records) are dropped
//     once the lines held reach three quarters of Limit;
//   - every other line (other info lines, warnings, errors) only when it would not fit in
//     Limit at all, so a warning or an error is never dropped while an access line would still
//     be taken.
//
// Nothing ever waits for room. After the writer has caught up (written the batch that was
// pending), it logs "log lines dropped" count=N at warn for the lines dropped meanwhile, and
// Dropped counts them all for the metric.
//
// Close writes out everything held and stops the goroutine; lines written after Close go
// straight to the underlying writer, so none is lost on a clean exit.
//
// Our own rather than a library's: bufio.Writer and zap's BufferedWriteSyncer write on the
// caller's goroutine or block it when full, and neither drops lines by kind.
type Writer struct {
	out         io.Writer
	limit       int // bytes held, waiting or being written, beyond which any line is dropped
	accessLimit int // the same for access lines: three quarters of limit
	flushAt     int // bytes waiting that start a write at once
	flushEvery  time.Duration

	mu      sync.Mutex
	buf     []byte       // lines waiting
	spare   []byte       // the other buffer, while not being written
	writing int          // bytes of the batch being written now
	dropped uint64       // lines dropped since the last report
	direct  bool         // after Close (or a panic in the loop): Write writes to out under mu
	logger  *slog.Logger // reports drops and panics; nil until a logger is built on the writer

	droppedTotal atomic.Uint64
	kick         chan struct{} // the buffer went from empty to not empty
	full         chan struct{} // flushAt bytes are waiting
	cancel       context.CancelFunc
	done         chan struct{}
}

// NewWriter starts a Writer on out. Close it to write out what it holds.
func NewWriter(out io.Writer, opts WriterOptions) *Writer {
	if opts.Limit <= 0 {
		opts.Limit = defaultLogLimit
	}
	if opts.FlushEvery <= 0 {
		opts.FlushEvery = defaultLogFlushEvery
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &Writer{
		out:         out,
		limit:       opts.Limit,
		accessLimit: opts.Limit / 4 * 3,
		flushAt:     min(logFlushAt, opts.Limit/2),
		flushEvery:  opts.FlushEvery,
		kick:        make(chan struct{}, 1),
		full:        make(chan struct{}, 1),
		cancel:      cancel,
		done:        make(chan struct{}),
	}
	go w.loop(ctx)
	return w
}

// Write takes one whole line that is not an access line (slog handlers write each record in
// one call). It never blocks on the underlying writer before Close and always reports success:
// a dropped line is counted, not returned as an error.
func (w *Writer) Write(p []byte) (int, error) { return w.write(p, w.limit) }

// accessLines is the writer for access lines, which are dropped first.
type accessLines struct{ w *Writer }

func (a accessLines) Write(p []byte) (int, error) { return a.w.write(p, a.w.accessLimit) }

// Dropped returns how many lines were dropped since the writer started.
func (w *Writer) Dropped() uint64 { return w.droppedTotal.Load() }

// Close writes out every line held, stops the writer's goroutine and returns when both are
// done. It waits as long as the underlying writer takes. Later writes go to the underlying
// writer directly. Close may be called more than once.
func (w *Writer) Close() error {
	w.cancel()
	<-w.done
	return nil
}

// attach makes logger the one that reports drops (the first logger built on w).
func (w *Writer) attach(logger *slog.Logger) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.logger == nil {
		w.logger = logger
	}
}

func (w *Writer) write(p []byte, limit int) (int, error) {
	w.mu.Lock()
	if w.direct {
		defer w.mu.Unlock()
		return w.out.Write(p)
	}
	if len(w.buf)+w.writing+len(p) > limit {
		w.dropped++
		w.mu.Unlock()
		w.droppedTotal.Add(1)
		return len(p), nil
	}
	first := len(w.buf) == 0
	w.buf = append(w.buf, p...)
	waiting := len(w.buf)
	w.mu.Unlock()
	if first {
		signal(w.kick)
	}
	if waiting >= w.flushAt {
		signal(w.full)
	}
	return len(p), nil
}

// signal wakes the loop without waiting: a wake-up already pending covers this one.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// loop writes batches until Close, then drains.
func (w *Writer) loop(ctx context.Context) {
	defer close(w.done)
	defer w.recoverPanic()
	for {
		select {
		case <-w.kick:
		case <-ctx.Done():
			w.drain()
			return
		}
		w.awaitBatch(ctx)
		w.flushOnce()
	}
}

// awaitBatch waits for a batch to gather: FlushEvery after its first line, less if flushAt
// bytes are waiting or the writer is closing.
func (w *Writer) awaitBatch(ctx context.Context) {
	t := time.NewTimer(w.flushEvery)
	defer t.Stop()
	select {
	case <-t.C:
	case <-w.full:
	case <-ctx.Done():
	}
}

// flushOnce writes the lines waiting, outside the lock so that writers go on appending (into
// the other buffer) meanwhile, then reports the lines dropped until the write returned.
func (w *Writer) flushOnce() {
	w.mu.Lock()
	batch := w.buf
	w.buf, w.spare = w.spare[:0], nil
	w.writing = len(batch)
	w.mu.Unlock()

	if len(batch) > 0 {
		// A failing stderr has nowhere to be reported; the lines are gone either way.
		_, _ = w.out.Write(batch)
	}

	w.mu.Lock()
	w.spare, w.writing = batch[:0], 0
	n := w.dropped
	w.dropped = 0
	logger := w.logger
	w.mu.Unlock()
	if n > 0 {
		w.reportDropped(logger, n)
	}
}

// reportDropped says how many lines were dropped: through the logger when there is one, so in
// the log's format, else as a plain line. Either way the report joins the lines waiting (as a
// warning, which the last quarter of the buffer is kept for) and goes out next round.
func (w *Writer) reportDropped(logger *slog.Logger, n uint64) {
	if logger == nil {
		_, _ = w.Write(fmt.Appendf(nil, "log lines dropped count=%d\n", n))
		return
	}
	logger.LogAttrs(context.Background(), slog.LevelWarn, "log lines dropped", slog.Uint64("count", n))
}

// drain writes out everything held, reports the last drops, and switches to direct writes
// under the lock, so that a line written meanwhile can neither be lost nor overtake the rest.
func (w *Writer) drain() {
	for {
		w.flushOnce()
		w.mu.Lock()
		if w.dropped == 0 {
			w.direct = true
			rest := w.buf
			w.buf, w.spare = nil, nil
			if len(rest) > 0 {
				_, _ = w.out.Write(rest)
			}
			w.mu.Unlock()
			return
		}
		// Lines were dropped during the last write: one more round reports them.
		w.mu.Unlock()
	}
}

// recoverPanic keeps a panic in the loop (in the underlying writer, say) from taking the
// gateway down: the writer falls back to direct writes and the panic is logged.
func (w *Writer) recoverPanic() {
	v := recover()
	if v == nil {
		return
	}
	// Best effort from here: out may be what panicked, and may panic again.
	defer func() { _ = recover() }()
	w.mu.Lock()
	w.direct = true
	rest, n, logger := w.buf, w.dropped, w.logger
	w.buf, w.spare, w.writing, w.dropped = nil, nil, 0, 0
	func() {
		// Under the lock, so that no direct write overtakes the rest.
		defer w.mu.Unlock()
		if len(rest) > 0 {
			_, _ = w.out.Write(rest)
		}
	}()
	const msg = "log writer panicked, writing lines directly from now on"
	if logger == nil {
		_, _ = fmt.Fprintf(w.out, "%s: %v (dropped=%d)\n", msg, v, n)
		return
	}
	logger.Error(msg, "panic", fmt.Sprint(v), "dropped", n, "stack", string(debug.Stack()))
}
