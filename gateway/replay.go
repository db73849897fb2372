package gateway

import (
	"io"
	"log/slog"
	"net/http"

	"github.com/hfgate/hfgate/gateway/health"
	"github.com/hfgate/hfgate/middleware"
)

// replayTransport sends a request once more, when its first attempt never reached the upstream,
// after holding it until the restarted upstream is ready (within the request's hold deadline).
//
// "Never reached" means no byte of the request went to any upstream socket: the connection
// attempt was refused or reset (a dial error, no connection at all), or every connection its
// attempts were given (the flight's GotConn marks) broke before anything more was written to it.
// Anything else may have reached the upstream and is never replayed, whatever its method: a
// request that crashed the upstream would crash the fresh one too, and a POST /chat that reached
// it may already have cost an LLM call. Transport's own retry (a request on a reused connection
// that broke before anything was written, or an idempotent one whose reused connection broke
// before an answer) stays as it is: it runs inside next, and a request it sent once is never
// sent again here.
//
// Only requests whose body can be sent again are replayed: no body, a body in memory (GetBody,
// set by the body buffer middleware), or a streamed body of which nothing was read yet.
type replayTransport struct {
	next      http.RoundTripper
	admission *admission
	readiness *health.Tracker
	logger    *slog.Logger
	onReplay  func() // metrics; nil = none
	closeIdle func() // closes the pool's idle connections; nil = none
}

func (t *replayTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	f := flightFrom(req.Context())
	if f == nil || f.replayed || !t.admission.waits() {
		return t.next.RoundTrip(req)
	}
	var streamed *unreadBody
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		// Transport closes the body when the attempt fails; keep it readable for the replay.
		streamed = &unreadBody{ReadCloser: req.Body}
		req = req.WithContext(req.Context()) // a shallow copy, whose Body may be replaced
		req.Body = streamed
	}
	res, err := t.next.RoundTrip(req)
	// Every attempt that never reached the upstream is followed by a hold and another attempt,
	// until one reaches it or the hold ends (deadline, client gone, upstream not expected back).
	// An attempt on a connection the dead upstream had closed leaves the state ready (nothing
	// proves the upstream down yet), so its hold ends at once; the next attempt dials afresh and
	// is refused, which marks the upstream unreachable, and that hold lasts until it is back.
	// Each loop needs a fresh "never reached" verdict, so nothing is ever sent twice.
	for attempt := 1; t.replayable(req, f, streamed, err) && attempt <= maxReplays; attempt++ {
		if err = t.holdAfter(req, f, err); err != nil {
			return nil, err
		}
		res, err = t.resend(req, f, streamed)
	}
	return res, err
}

// maxReplays bounds the attempts after the first. Each one follows a wait in the hold queue and
// a fresh dial, so the bound only matters for an upstream that accepts the health check but
// refuses every request; the hold deadline bounds the time in any case.
const maxReplays = 4

// replayable reports whether the attempt that ended with err may be sent again: it failed, no
// byte of it reached the upstream, the client is still there, and its body can be sent again.
func (t *replayTransport) replayable(req *http.Request, f *flight, streamed *unreadBody, err error) bool {
	return err != nil && !f.mayHaveReached() && req.Context().Err() == nil && (streamed == nil || !streamed.read) &&
		req.Header.Get("Expect") == "" // headers may have gone ahead of a 100-continue body
}

// holdAfter records a failed attempt that never reached the upstream and holds the request
// until the upstream is ready and its turn comes. It returns nil when the request may be sent
// again, and the attempt's error otherwise.
func (t *replayTransport) holdAfter(req *http.Request, f *flight, err error) error {
	if isDialError(err) {
		t.readiness.MarkUnreachable()
	} else {
		// A connection the upstream had closed (a crash, or an idle keep-alive timeout). Its
		// pooled siblings are likely stale too: the next attempt dials afresh.
		t.readiness.Poke()
		if t.closeIdle != nil {
			t.closeIdle()
		}
	}
	t.logger.Warn("upstream unreachable; holding the request to send it again",
		"request_id", req.Header.Get(middleware.HeaderRequestID), "err", err)
	// Its slot goes back (no latency sample: it never reached the upstream), and it asks the
	// line again in its arrival's place: ahead of everyone who came later.
	f.done()
	f.slot = nil
	if t.admission.acquire(f, true) != nil {
		return err
	}
	return nil
}

// resend sends the request again with a fresh body and fresh connection marks.
func (t *replayTransport) resend(req *http.Request, f *flight, streamed *unreadBody) (*http.Response, error) {
	again := req.WithContext(req.Context()) // a shallow copy, for the fresh Body
	switch {
	case req.GetBody != nil:
		body, err := req.GetBody()
		if err != nil {
			return nil, err
		}
		again.Body = body
	case streamed != nil:
		again.Body = streamed // still shielded: a failed replay may be followed by another
	}
	f.replayed = true
	f.attempts = 0 // the replay's own connection marks start afresh
	if t.onReplay != nil {
		t.onReplay()
	}
	return t.next.RoundTrip(again)
}

// unreadBody shields a streamed request body from Transport's Close on a failed attempt and
// records whether any of it was read (then it cannot be sent again).
type unreadBody struct {
	io.ReadCloser
	read bool // only touched by Transport's writer, before RoundTrip returns
}

func (b *unreadBody) Read(p []byte) (int, error) {
	b.read = true
	return b.ReadCloser.Read(p)
}

// Close does nothing: the server closes the request body when the handler returns.
func (b *unreadBody) Close() error { return nil }
