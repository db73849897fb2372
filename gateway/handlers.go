package gateway

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hfgate/hfgate/gateway/gate"
	"github.com/hfgate/hfgate/gateway/health"
	"github.com/hfgate/hfgate/gateway/supervise"
)

// answers renders every response the gateway itself gives: the not-ready 503, errors, the
// status page on "/" while cold, /ready and /healthz. Shapes are fixed and documented in
// README.md; none carries an internal address or error text.
type answers struct {
	readiness *health.Tracker
	// child reports the supervised process; nil when UPSTREAM_CMD is not set.
	child     func() supervise.Status
	startedAt time.Time
	now       func() time.Time
	page      *template.Template // the status page; see newStatusPage
	// queue reports the line in front of the upstream (gate.Gate.Snapshot); nil = none shown.
	queue func() gate.Snapshot
}

const setSecretsHint = "Set them in the Space's Settings -> Variables and secrets; the Space restarts by itself."

// logsHint is the hint of a crash loop. The public answers never carry the backend's own
// output (a traceback can hold paths, settings, data); its owner reads that in the log.
const logsHint = "The Space's owner finds the reason (the backend's own error output) in the Space's Logs tab."

// crashLoopExits is how many exits in a row, without the backend ever passing its health check
// in between, make a crash loop (supervise.Status.ExitsBeforeReady). By the third the backend
// has failed three starts over a few seconds of backoff, which a slow start does not explain,
// and the same failure is what it will most likely meet again.
const crashLoopExits = 3

// crashLoop is what the public answers say of a crash loop: how often, and how the backend last
// ended, as a fixed phrase.
type crashLoop struct {
	Exits    int    `json:"exits"`
	LastExit string `json:"last_exit"`
}

// crashLoop returns the crash loop the supervised child is in, or nil: a child that exited
// crashLoopExits times in a row before it was ever ready, while the state is starting or
// crashed (the two it alternates between while it loops).
func (a *answers) crashLoop(snap health.Snapshot) *crashLoop {
	if a.child == nil || (snap.State != health.Starting && snap.State != health.Crashed) {
		return nil
	}
	st := a.child()
	if st.ExitsBeforeReady < crashLoopExits {
		return nil
	}
	return &crashLoop{Exits: st.ExitsBeforeReady, LastExit: describeExit(st.LastExit)}
}

// describeExit says how the child last ended, in a fixed phrase without error text.
func describeExit(e *supervise.ExitSummary) string {
	switch {
	case e == nil:
		return "unknown"
	case e.StartFailed:
		return "its command could not be started"
	case e.Signal != "" && e.Hint != "":
		// Only a SIGKILL hfgate did not send has a hint (see supervise.Exit.Hint).
		return "killed by " + e.Signal + ", on a Space usually the out-of-memory killer"
	case e.Signal != "":
		return "killed by " + e.Signal
	default:
		return "exit code " + strconv.Itoa(e.Code)
	}
}

// message says in one sentence what is wrong in a crash loop.
func (l *crashLoop) message() string {
	return fmt.Sprintf("the service keeps failing to start: its backend exited %d times in a row before it was ready (last: %s); "+
		"it is restarted with growing pauses, so retry after the number of seconds in Retry-After", l.Exits, l.LastExit)
}

// notReadyBody is the JSON of a 503 while the upstream is not ready.
type notReadyBody struct {
	Error      string       `json:"error"`
	State      health.State `json:"state"`
	RetryAfter int          `json:"retry_after"`
	RequestID  string       `json:"request_id,omitempty"`
	Reason     gate.Outcome `json:"reason,omitempty"` // busy answers: why (busy, edge_cut, overflow, timed_out)
	Missing    []string     `json:"missing,omitempty"`
	CrashLoop  *crashLoop   `json:"crash_loop,omitempty"`
	Hint       string       `json:"hint,omitempty"`
	Process    *childInfo   `json:"process,omitempty"`
	Queue      *queueInfo   `json:"queue,omitempty"`
}

// childInfo is the part of the supervisor's status shown to any client.
type childInfo struct {
	State       string     `json:"state"`
	Restarts    int        `json:"restarts"`
	NextAttempt *time.Time `json:"next_attempt,omitempty"`
}

type errorBody struct {
	Error     string `json:"error"`
	RequestID string `json:"request_id,omitempty"`
}

// readyBody is the JSON of /ready.
type readyBody struct {
	State       health.State      `json:"state"`
	Ready       bool              `json:"ready"`
	Since       time.Time         `json:"since"`
	Uptime      string            `json:"uptime"`
	LastStartup string            `json:"last_startup,omitempty"`
	RetryAfter  int               `json:"retry_after,omitempty"`
	Message     string            `json:"message,omitempty"`
	Missing     []string          `json:"missing,omitempty"`
	CrashLoop   *crashLoop        `json:"crash_loop,omitempty"`
	Hint        string            `json:"hint,omitempty"`
	Supervisor  *supervise.Status `json:"supervisor,omitempty"`
	Queue       *queueInfo        `json:"queue,omitempty"`
}

// queueInfo is the line in front of the upstream as /ready, the status page and the 503s show
// it: requests in flight to the upstream and waiting, the limit and how it is set, and the
// estimated time for the line to drain.
type queueInfo struct {
	InFlight      int     `json:"in_flight"`
	Waiting       int     `json:"waiting"`
	Limit         int     `json:"limit"`
	Adaptive      bool    `json:"adaptive"`
	Streams       int     `json:"open_streams"`
	EstimatedWait float64 `json:"estimated_wait_seconds"`
}

// queueInfo returns the line's state, or nil when the answers have no line to show.
func (a *answers) queueInfo() *queueInfo {
	if a.queue == nil {
		return nil
	}
	s := a.queue()
	return &queueInfo{
		InFlight: s.InFlight, Waiting: s.Waiting, Limit: s.Limit, Adaptive: s.Adaptive, Streams: s.Streams,
		EstimatedWait: s.Wait.Round(100 * time.Millisecond).Seconds(),
	}
}

// message says in one sentence why requests are turned away.
func message(s health.Snapshot) string {
	switch s.State {
	case health.Starting:
		return "the service is starting; retry after the number of seconds in Retry-After"
	case health.Unavailable:
		return "the service is temporarily unavailable; retry after the number of seconds in Retry-After"
	case health.Crashed:
		return "the service stopped unexpectedly and is being restarted; retry after the number of seconds in Retry-After"
	case health.Misconfigured:
		return "the service is missing required settings: " + strings.Join(s.Missing, ", ")
	case health.Draining:
		return "the service is restarting; retry after the number of seconds in Retry-After"
	default:
		return "the service is ready"
	}
}

// retryAfter returns the Retry-After estimate, counting a scheduled restart.
func (a *answers) retryAfter() int {
	var next time.Time
	if a.child != nil {
		next = a.child().NextAttempt
	}
	return a.readiness.RetryAfter(next)
}

func (a *answers) childInfo() *childInfo {
	if a.child == nil {
		return nil
	}
	st := a.child()
	info := &childInfo{State: string(st.State), Restarts: st.Restarts}
	if !st.NextAttempt.IsZero() {
		t := st.NextAttempt.UTC().Truncate(time.Millisecond)
		info.NextAttempt = &t
	}
	return info
}

// notReady describes why requests are turned away, for a 503 or the status page.
func (a *answers) notReady(snap health.Snapshot, requestID string) notReadyBody {
	body := notReadyBody{
		Error:      message(snap),
		State:      snap.State,
		RetryAfter: a.retryAfter(),
		RequestID:  requestID,
		Process:    a.childInfo(),
		Queue:      a.queueInfo(),
	}
	if snap.State == health.Misconfigured {
		body.Missing, body.Hint = snap.Missing, setSecretsHint
	}
	if loop := a.crashLoop(snap); loop != nil {
		body.Error, body.CrashLoop, body.Hint = loop.message(), loop, logsHint
	}
	return body
}

// writeNotReady answers 503 with Retry-After and the state, for any forwarded request while
// the upstream is not ready.
func (a *answers) writeNotReady(w http.ResponseWriter, r *http.Request, requestID string) {
	snap := a.readiness.Snapshot()
	if snap.State == health.Ready {
		// The upstream failed this request but is still (or again) counted ready.
		snap = health.Snapshot{State: health.Unavailable}
	}
	body := a.notReady(snap, requestID)
	if wantsEventStreamAnswer(r) {
		writeRetryStream(w, r, "unavailable", body.RetryAfter, body)
		return
	}
	w.Header().Set("Retry-After", strconv.Itoa(body.RetryAfter))
	writeJSON(w, r, http.StatusServiceUnavailable, body)
}

// busyRetryAfter is the Retry-After of a busy answer before the line has an estimate (no
// request has finished yet): short, since the line was only just formed.
const busyRetryAfter = 2

// writeBusy answers 503 for a request the line refused while the upstream is up but busy
// (ref.Overload): at once when its expected wait was longer than it may wait, with Retry-After
// from the line's estimated drain time, the state (ready) and the reason.
func (a *answers) writeBusy(w http.ResponseWriter, r *http.Request, requestID string, ref *gate.Refusal) {
	retry := ref.RetryAfter
	if retry <= 0 {
		retry = busyRetryAfter
	}
	msg := "the service is busy; retry after the number of seconds in Retry-After"
	if ref.Outcome == gate.Cut {
		msg = "the service is too busy to answer before the connection's time limit; retry after the number of seconds in Retry-After"
	}
	body := notReadyBody{Error: msg, State: a.readiness.State(), Reason: ref.Outcome, RetryAfter: retry,
		RequestID: requestID, Queue: a.queueInfo()}
	if wantsEventStreamAnswer(r) {
		writeRetryStream(w, r, "busy", retry, body)
		return
	}
	w.Header().Set("Retry-After", strconv.Itoa(retry))
	writeJSON(w, r, http.StatusServiceUnavailable, body)
}

// wantsEventStreamAnswer reports whether a turned-away request gets its answer as an event
// stream: a GET asking for text/event-stream with Cache-Control: no-cache, as a browser's
// EventSource sends it (the HTML standard gives its request the cache mode no-store, for which
// fetch adds that header; the web-platform test eventsource-cache-control checks it). A script
// that reads an event stream with fetch sends Accept alone and keeps the 503, which it retries
// by Retry-After (examples/frontend/chat.js, fetch-event-source): the stream answer would end
// its read with no retry.
func wantsEventStreamAnswer(r *http.Request) bool {
	return r.Method == http.MethodGet && acceptsEventStream(r) && asksNoCache(r)
}

// asksNoCache reports whether the request's Cache-Control names no-cache.
func asksNoCache(r *http.Request) bool {
	for _, v := range r.Header["Cache-Control"] {
		for d := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(d), "no-cache") {
				return true
			}
		}
	}
	return false
}

// writeRetryStream answers a request for an event stream that the gateway turns away (not
// ready, busy) as one the client reconnects from: 200 text/event-stream with a retry: field
// (Retry-After in milliseconds), one event named ev carrying the usual JSON, then the end. A
// browser's EventSource closes for good on any other answer (the HTML standard "fails the
// connection" on a status other than 200 or another content type), while the end of a 200
// stream makes it reconnect after the retry time, by itself. Retry-After is sent too, for
// clients that read it.
func writeRetryStream(w http.ResponseWriter, r *http.Request, ev string, retryAfter int, body any) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	h.Set("Retry-After", strconv.Itoa(retryAfter))
	w.WriteHeader(http.StatusOK)
	data, _ := json.Marshal(body)
	_, _ = fmt.Fprintf(w, "retry: %d\nevent: %s\ndata: %s\n\n", retryAfter*1000, ev, data)
}

// writeError answers a fixed error message as JSON.
func (a *answers) writeError(w http.ResponseWriter, r *http.Request, code int, msg, requestID string) {
	writeJSON(w, r, code, errorBody{Error: msg, RequestID: requestID})
}

// writeReady answers /ready: 200 when ready, else 503 with Retry-After.
func (a *answers) writeReady(w http.ResponseWriter, r *http.Request) {
	snap := a.readiness.Snapshot()
	now := a.now()
	body := readyBody{
		State:  snap.State,
		Ready:  snap.State == health.Ready,
		Since:  snap.Since.UTC().Truncate(time.Millisecond),
		Uptime: now.Sub(a.startedAt).Round(time.Second).String(),
	}
	if snap.LastStartup > 0 {
		body.LastStartup = snap.LastStartup.Round(time.Millisecond).String()
	}
	if a.child != nil {
		st := a.child()
		body.Supervisor = &st
	}
	body.Queue = a.queueInfo()
	code := http.StatusOK
	if !body.Ready {
		code = http.StatusServiceUnavailable
		body.RetryAfter = a.retryAfter()
		body.Message = message(snap)
		w.Header().Set("Retry-After", strconv.Itoa(body.RetryAfter))
	}
	if snap.State == health.Misconfigured {
		body.Missing, body.Hint = snap.Missing, setSecretsHint
	}
	if loop := a.crashLoop(snap); loop != nil {
		body.Message, body.CrashLoop, body.Hint = loop.message(), loop, logsHint
	}
	writeJSON(w, r, code, body)
}

// writeHealthz answers liveness: the process is up. It stays 200 when misconfigured, so a
// platform does not restart a container whose problem is its settings.
func (a *answers) writeHealthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, r, http.StatusOK, map[string]string{"status": "ok"})
}

// writeStatusPage answers GET or HEAD "/" while not ready: 200, so that Hugging Face's start-up
// check and a visitor both see a live Space. Browsers get HTML that reloads itself after the
// Retry-After estimate (a meta refresh, so it works without script) and so becomes the backend's
// own page once that is ready. Its empty icon spares each reload a /favicon.ico 503.
func (a *answers) writeStatusPage(w http.ResponseWriter, r *http.Request) {
	snap := a.readiness.Snapshot()
	body := a.notReady(snap, "")
	if !strings.Contains(r.Header.Get("Accept"), "text/html") {
		writeJSON(w, r, http.StatusOK, body)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	_ = a.page.Execute(w, statusPageData{
		State:     string(snap.State),
		Refresh:   body.RetryAfter,
		Missing:   strings.Join(snap.Missing, ", "),
		Hint:      setSecretsHint,
		CrashLoop: body.CrashLoop,
		Queue:     body.Queue,
	})
}

type statusPageData struct {
	State     string
	Refresh   int
	Missing   string
	Hint      string
	CrashLoop *crashLoop
	Queue     *queueInfo // the line in front of the backend; nil = not shown
}

// newStatusPage parses the status page template. It is a constant text, so Must cannot fail
// at run time once a test has built it.
func newStatusPage() *template.Template {
	return template.Must(template.New("status").Parse(statusPageHTML))
}

// statusPageHTML is the status page's template (status.html, beside this file).
//
//go:embed status.html
var statusPageHTML string

// writeJSON writes v as JSON with no-store caching; HEAD gets the headers only.
func writeJSON(w http.ResponseWriter, r *http.Request, code int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	if r.Method == http.MethodHead {
		return
	}
	_ = json.NewEncoder(w).Encode(v)
}
