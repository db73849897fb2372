package e2e

// EventSource tests: a page on another origin opens a browser's own
// EventSource on the gateway and does nothing else with it but record what it
// fires (browser.mjs, scenarios eventsource and eventsource_crash). They prove
// what the gateway's answers to a turned-away event-stream request are for
// (issue 19, item 6): a 200 text/event-stream carrying retry: and one named
// event, then the end, which the browser reconnects from by itself after the
// advertised time, where a 503 would close it for good.
//
// Same prerequisites and artifacts as browser_test.go.
//
// Run: go test -count=1 -run TestBrowserEventSource -v ./e2e/

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	// eventSourceStartup is the backend's fake model-loading time
	// (STARTUP_SECONDS), at the first start and at the restart after the
	// kill. Longer than Chromium's default reconnection time (3 s), with
	// seconds to spare on a busy machine: the browser's reconnect after the
	// kill must meet the restarting backend, not one that is back already.
	eventSourceStartup = 5 * time.Second
	// eventSourceTokenDelay is the backend's pause between streamed tokens
	// (TOKEN_DELAY): the crash scenario's stream runs for seconds, so the kill
	// lands in the middle of it.
	eventSourceTokenDelay = 100 * time.Millisecond
	// eventSourceSlack is how much earlier than the advertised retry time a
	// reconnect may be seen: the page records the error event a moment after
	// the browser starts its reconnection timer.
	eventSourceSlack = 250 * time.Millisecond
)

// TestBrowserEventSource runs, in one Chromium against one gateway, an
// EventSource opened during the backend's first cold start and then one whose
// backend is killed mid-stream.
func TestBrowserEventSource(t *testing.T) {
	node := browserRequire(t)
	hfgateBinary(t)
	ctx := testContext(t, browserGroupTimeout)
	page := browserServeFrontend(t, browserPageHost)
	port := freePort(t)
	api := "http://127.0.0.1:" + strconv.Itoa(port)
	coldMsg := "hello from an event source"
	// About 45 tokens: a stream of 4.5 s, killed after its second token.
	crashMsg := strings.TrimSpace(strings.Repeat("again and ", 20))

	d := startBrowserDriver(ctx, t, node, api, browserArtifacts(t), false,
		browserStep{Scenario: "eventsource", Page: page + "/", Messages: []string{coldMsg}},
		// Held at "start" until the cold scenario's access lines are counted.
		browserStep{Scenario: "eventsource_crash", Page: page + "/", Messages: []string{crashMsg}, Hold: true})
	d.awaitHold(ctx, t, "eventsource", "loaded")
	gw := browserStartGateway(t, port, page, map[string]string{
		"STARTUP_SECONDS": strconv.FormatFloat(eventSourceStartup.Seconds(), 'f', -1, 64),
		"TOKEN_DELAY":     strconv.FormatFloat(eventSourceTokenDelay.Seconds(), 'f', -1, 64),
	})
	gw.awaitLog(ctx, 1, "the listening line", msgIs("listening"))
	d.release(t, "eventsource")
	streams := 0 // GET /chat/stream requests so far

	// cold: the EventSource meets the first cold start. Each answer until the
	// backend is ready is the gateway's 200 stream with one "unavailable"
	// event; the browser reconnects after its retry time, and the stream
	// that follows is the backend's, whole.
	t.Run("cold", func(t *testing.T) {
		res := d.result(ctx, t, "eventsource")
		conns := esConnections(res.EventSources["stream"])
		if len(conns) < 2 {
			t.Fatalf("got %d connection(s), want the gateway's answer while cold and then the backend's stream; result: %s", len(conns), res.raw)
		}
		esNeverClosed(t, res.EventSources["stream"])
		for i, c := range conns[:len(conns)-1] {
			retry := esCheckUnavailable(t, i, c, "starting")
			// The browser waited the advertised time before it reconnected.
			gap := time.Duration((conns[i+1][0].T - c[len(c)-1].T) * float64(time.Millisecond))
			if want := time.Duration(retry)*time.Second - eventSourceSlack; retry > 0 && gap < want {
				t.Errorf("connection %d: reconnected %v after the error, want at least the retry time of %d s", i+2, gap.Round(time.Millisecond), retry)
			}
		}
		last := conns[len(conns)-1]
		if got, ok := esCompleteStream(last); !ok || got != botReply(coldMsg) {
			t.Errorf("last connection: got %q (complete: %v), want the whole reply %q and done: %+v", got, ok, botReply(coldMsg), last)
		}

		// One access line per connection: the browser made no request that
		// the page did not see open.
		streams = len(conns)
		gw.awaitLog(ctx, streams, "an access line per connection", accessLine(http.MethodGet, "/chat/stream", 0))
		lines := streamRequests(t, gw, time.Time{})
		if len(lines) != streams {
			t.Errorf("got %d GET /chat/stream access lines, want %d, one per connection", len(lines), streams)
		}
		checkStreamStatuses(t, lines)
		ready := gw.awaitLog(ctx, 1, "state ready", stateTo("ready"))
		first := esFirst(last, "message")
		t.Logf("%d unavailable answer(s), first retry %d s; first token %v after the backend was ready, %.0f ms after the first open (page time)",
			len(conns)-1, esRetry(conns[0]), time.UnixMilli(int64(first.Wall)).Sub(logTime(t, ready)).Round(time.Millisecond), first.T-conns[0][0].T)

		// The control: an EventSource whose answer is not a 200 event stream
		// (the backend's 404; a 503 is the same to the HTML standard) is
		// closed for good at once, with no reconnect (checked at the end).
		control := res.EventSources["control"]
		if len(control) != 1 || control[0].Type != "error" || control[0].ReadyState != 2 {
			t.Errorf("control: got %+v, want one error with readyState 2 (CLOSED)", control)
		}
		gw.awaitLog(ctx, 1, "the control's access line", accessLine(http.MethodGet, "/chat/nowhere", http.StatusNotFound))
	})

	// crash: the backend is killed (SIGKILL) while it streams. The gateway
	// ends the stream cleanly, the browser reconnects by itself, meets the
	// restarting backend (held in line, or answered "unavailable" and
	// reconnecting again) and gets the backend's stream again, whole.
	t.Run("crash", func(t *testing.T) {
		d.awaitHold(ctx, t, "eventsource_crash", "start")
		d.release(t, "eventsource_crash")
		d.awaitHold(ctx, t, "eventsource_crash", "streaming")
		_, before, err := gw.ready(ctx)
		if err != nil || before.Supervisor == nil || before.Supervisor.PID <= 0 {
			t.Fatalf("GET /ready: got supervisor %+v (%v), want a child pid", before.Supervisor, err)
		}
		killed := time.Now()
		if err := syscall.Kill(before.Supervisor.PID, syscall.SIGKILL); err != nil {
			t.Fatalf("kill -9 child %d: %v", before.Supervisor.PID, err)
		}
		d.release(t, "eventsource_crash")
		res := d.result(ctx, t, "eventsource_crash")

		recs := res.EventSources["stream"]
		conns := esConnections(recs)
		if len(conns) < 2 {
			t.Fatalf("got %d connection(s), want the cut stream and then a reconnect; result: %s", len(conns), res.raw)
		}
		esNeverClosed(t, recs)
		cut := conns[0]
		text, complete := esCompleteStream(cut)
		if n := len(cut); complete || n < 3 || cut[n-1].Type != "error" || cut[n-1].ReadyState != 0 ||
			!strings.HasPrefix(botReply(crashMsg), text) || text == botReply(crashMsg) {
			t.Errorf("first connection: got %q and %+v, want part of the reply, then an error with readyState 0 (CONNECTING)", text, cut)
		}
		for i, c := range conns[1 : len(conns)-1] {
			esCheckUnavailable(t, i+1, c, "crashed", "starting")
		}
		last := conns[len(conns)-1]
		if got, ok := esCompleteStream(last); !ok || got != botReply(crashMsg) {
			t.Errorf("last connection: got %q (complete: %v), want the whole reply %q and done: %+v", got, ok, botReply(crashMsg), last)
		}

		// The gateway ended the broken stream itself, and the restarted
		// backend is a new process.
		broke := gw.awaitLog(ctx, 1, "the stream ended cleanly", msgIs("event stream from upstream broke; ending it cleanly"))
		gw.awaitLog(ctx, 1, "the cut stream's access line", func(l logLine) bool {
			return accessLine(http.MethodGet, "/chat/stream", http.StatusOK)(l) && l.attr("request_id") == broke.attr("request_id")
		})
		gw.awaitLog(ctx, 2, "the restarted backend", msgIs("upstream started"))
		readyAgain := logTime(t, gw.awaitLog(ctx, 2, "state ready again", stateTo("ready")))

		// Every reconnect has its access line; the first met the restart.
		want := streams + len(conns)
		gw.awaitLog(ctx, want, "an access line per connection", accessLine(http.MethodGet, "/chat/stream", 0))
		reconnects := streamRequests(t, gw, killed)
		if len(reconnects) != len(conns)-1 {
			t.Fatalf("got %d GET /chat/stream access lines after the kill, want %d, one per reconnect", len(reconnects), len(conns)-1)
		}
		firstAt, final := arrival(t, reconnects[0]), reconnects[len(reconnects)-1]
		if !firstAt.Before(readyAgain) {
			t.Fatalf("the first reconnect arrived %v after the backend was ready again: it did not meet the restart", firstAt.Sub(readyAgain))
		}
		if len(conns) == 2 {
			// No "unavailable": the reconnect must have waited in line.
			if q := final.attr("queued"); q == "" || q == "0" {
				t.Errorf("the only reconnect arrived %v before the backend was ready and got the stream without an unavailable answer, "+
					"but its access line shows no time in line: %s", readyAgain.Sub(firstAt).Round(time.Millisecond), final.raw)
			}
		}
		checkStreamStatuses(t, reconnects)

		// The control's EventSource, closed long ago, never came back.
		if n := gw.logs.count(accessLine(http.MethodGet, "/chat/nowhere", 0)); n > 1 {
			t.Errorf("got %d GET /chat/nowhere requests, want 1: the closed EventSource reconnected", n)
		}
		queued := "0"
		if q, err := strconv.ParseInt(final.attr("queued"), 10, 64); err == nil {
			queued = time.Duration(q).Round(time.Millisecond).String()
		}
		t.Logf("stream cut after %d token(s); the browser's reconnect reached the gateway %v after the kill, %v before the backend was ready; "+
			"%d unavailable answer(s); the stream's request queued %s; first token again %v after the kill",
			len(cut)-2, firstAt.Sub(killed).Round(time.Millisecond), readyAgain.Sub(firstAt).Round(time.Millisecond),
			len(conns)-2, queued, time.UnixMilli(int64(esFirst(last, "message").Wall)).Sub(killed).Round(time.Millisecond))
	})
}

// esRecord is one event an EventSource fired in the page (browser.mjs's listen).
type esRecord struct {
	Type       string  `json:"type"`
	T          float64 `json:"t"`    // page time, ms
	Wall       float64 `json:"wall"` // Unix time, ms
	ReadyState int     `json:"readyState"`
	Data       string  `json:"data"`
}

// esConnections splits an EventSource's records into connections, each from
// its open event to the next; records before the first open (a connection
// that never opened) make one of their own.
func esConnections(recs []esRecord) [][]esRecord {
	var conns [][]esRecord
	for i, r := range recs {
		if r.Type == "open" || i == 0 {
			conns = append(conns, nil)
		}
		conns[len(conns)-1] = append(conns[len(conns)-1], r)
	}
	return conns
}

// esNeverClosed checks that the EventSource was never closed for good while
// the page listened: the page closes it itself on "done", after recording it.
func esNeverClosed(t *testing.T, recs []esRecord) {
	t.Helper()
	for _, r := range recs {
		if r.ReadyState == 2 {
			t.Errorf("EventSource closed for good (readyState 2) at %q, %.0f ms: %+v", r.Type, r.T, recs)
			return
		}
	}
}

// esCheckUnavailable checks that connection i (from 0) was the gateway's
// answer for a backend that is not ready: open, one "unavailable" event
// whose JSON has one of the states and a retry_after, then the end (error,
// readyState 0: reconnecting). It returns the retry_after.
func esCheckUnavailable(t *testing.T, i int, c []esRecord, states ...string) int {
	t.Helper()
	if len(c) != 3 || c[0].Type != "open" || c[1].Type != "unavailable" || c[2].Type != "error" || c[2].ReadyState != 0 {
		t.Errorf("connection %d: got %+v, want open, unavailable, error with readyState 0 (CONNECTING)", i+1, c)
		return 0
	}
	var body struct {
		State      string `json:"state"`
		RetryAfter int    `json:"retry_after"`
		RequestID  string `json:"request_id"`
	}
	if err := json.Unmarshal([]byte(c[1].Data), &body); err != nil {
		t.Errorf("connection %d: unavailable event's data %q: %v", i+1, c[1].Data, err)
		return 0
	}
	if !strings.Contains(" "+strings.Join(states, " ")+" ", " "+body.State+" ") || body.RetryAfter < 1 || body.RetryAfter > 30 || body.RequestID == "" {
		t.Errorf("connection %d: unavailable event's data %s, want state %s, retry_after in 1..30 and a request_id",
			i+1, c[1].Data, strings.Join(states, " or "))
	}
	return body.RetryAfter
}

// esRetry returns the retry_after of an unavailable connection, 0 if none.
func esRetry(c []esRecord) int {
	var body struct {
		RetryAfter int `json:"retry_after"`
	}
	for _, r := range c {
		if r.Type == "unavailable" && json.Unmarshal([]byte(r.Data), &body) == nil {
			return body.RetryAfter
		}
	}
	return 0
}

// esCompleteStream returns the text of the tokens a connection brought, and
// whether it was the backend's whole stream: open, messages, done.
func esCompleteStream(c []esRecord) (text string, complete bool) {
	var b strings.Builder
	complete = len(c) >= 2 && c[0].Type == "open" && c[len(c)-1].Type == "done"
	for i, r := range c {
		if r.Type != "message" {
			if i > 0 && i < len(c)-1 {
				complete = false
			}
			continue
		}
		var m struct {
			Token string `json:"token"`
		}
		if err := json.Unmarshal([]byte(r.Data), &m); err != nil {
			complete = false
		}
		b.WriteString(m.Token)
	}
	return b.String(), complete
}

// esFirst returns the first record of a type, or a zero one.
func esFirst(c []esRecord, typ string) esRecord {
	for _, r := range c {
		if r.Type == typ {
			return r
		}
	}
	return esRecord{}
}

// streamRequests returns the access lines of GET /chat/stream whose requests
// arrived after after, in the order they arrived.
func streamRequests(t *testing.T, gw *hfgateProc, after time.Time) []logLine {
	t.Helper()
	lines, _ := gw.logs.snapshot()
	var out []logLine
	for _, l := range lines {
		if accessLine(http.MethodGet, "/chat/stream", 0)(l) && arrival(t, l).After(after) {
			out = append(out, l)
		}
	}
	slices.SortStableFunc(out, func(a, b logLine) int { return arrival(t, a).Compare(arrival(t, b)) })
	return out
}

// checkStreamStatuses checks the statuses of the access lines of one
// EventSource's requests, in arrival order: 200 each (an event stream, the
// gateway's or the backend's), the last one 200 or 499. The page closes its
// EventSource on the backend's "done" event, and that close can reach the
// gateway before the end of the backend's stream does: the client left.
func checkStreamStatuses(t *testing.T, lines []logLine) {
	t.Helper()
	for i, l := range lines {
		if st := l.attr("status"); st != "200" && (i < len(lines)-1 || st != "499") {
			t.Errorf("request %d of %d: got status %s, want 200 (or 499 for the last): %s", i+1, len(lines), st, l.raw)
		}
	}
}

func stateTo(state string) func(logLine) bool {
	return func(l logLine) bool { return l.msg() == "upstream state" && l.attr("to") == state }
}

// logTime is when the gateway wrote a JSON log line.
func logTime(t *testing.T, l logLine) time.Time {
	t.Helper()
	at, err := time.Parse(time.RFC3339Nano, l.attr("time"))
	if err != nil {
		t.Fatalf("log line time: %v: %s", err, l.raw)
	}
	return at
}

// arrival is when the request of an access line arrived: the line's time less
// its duration.
func arrival(t *testing.T, l logLine) time.Time {
	t.Helper()
	d, err := strconv.ParseInt(l.attr("duration"), 10, 64)
	if err != nil {
		t.Fatalf("access line duration: %v: %s", err, l.raw)
	}
	return logTime(t, l).Add(-time.Duration(d))
}
