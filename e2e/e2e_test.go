package e2e

// End-to-end tests: the real hfgate binary supervising the real example
// backend (examples/chatbot) under real uvicorn, driven only through its
// black-box contract (environment, HTTP, signals, log output).
//
// They need /usr/bin/python3 with fastapi and uvicorn (sh
// examples/chatbot/deps.sh installs them). Without those the tests skip,
// except when CI=true, where they fail. -short skips them too.
//
// The harness they run on (building the binary, starting and stopping
// gateways, reading their logs) is in harness_test.go.
//
// Run: go test -race -count=1 -run TestE2E ./e2e/
// HFGATE_E2E_LOGS=1 (with -v) prints each hfgate's output even when its test
// passes.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("random: %v", err)
	}
	return hex.EncodeToString(b)
}

// errorBody is the gateway's JSON error shape.
type errorBody struct {
	Error      string   `json:"error"`
	State      string   `json:"state"`
	RetryAfter int      `json:"retry_after"`
	RequestID  string   `json:"request_id"`
	Missing    []string `json:"missing"`
	Hint       string   `json:"hint"`
}

// checkNotReady checks the contract's not-ready answer and returns its body.
func checkNotReady(t *testing.T, r reply, states ...string) errorBody {
	t.Helper()
	if r.status != http.StatusServiceUnavailable {
		t.Fatalf("got status %d, want 503 (body %s)", r.status, r.body)
	}
	ra, err := strconv.Atoi(r.header.Get("Retry-After"))
	if err != nil || ra < 1 || ra > 30 {
		t.Errorf("got Retry-After %q, want an integer in 1..30", r.header.Get("Retry-After"))
	}
	if got := r.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("got Cache-Control %q, want no-store", got)
	}
	var eb errorBody
	if err := json.Unmarshal(r.body, &eb); err != nil {
		t.Fatalf("decode 503 body %s: %v", r.body, err)
	}
	if eb.Error == "" {
		t.Errorf("got empty error in %s, want a message", r.body)
	}
	if !slices.Contains(states, eb.State) {
		t.Errorf("got state %q, want one of %q", eb.State, states)
	}
	if eb.RetryAfter != ra {
		t.Errorf("got retry_after %d, want %d (the Retry-After header)", eb.RetryAfter, ra)
	}
	if eb.RequestID == "" || eb.RequestID != r.header.Get("X-Request-ID") {
		t.Errorf("got request_id %q, X-Request-ID %q, want both equal and non-empty", eb.RequestID, r.header.Get("X-Request-ID"))
	}
	return eb
}

type chatReply struct {
	Reply string `json:"reply"`
	Model string `json:"model"`
}

func checkChat(t *testing.T, r reply, want string) {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("POST /chat: got %s, want 200", r)
	}
	var cr chatReply
	if err := json.Unmarshal(r.body, &cr); err != nil {
		t.Fatalf("decode /chat body %s: %v", r.body, err)
	}
	if cr.Reply != want || cr.Model != "echo-bot-1" {
		t.Errorf("got reply %q model %q, want %q and echo-bot-1", cr.Reply, cr.Model, want)
	}
}

// sseEvent is one server-sent event and when the client finished reading it.
type sseEvent struct {
	event string
	data  string
	at    time.Time
}

// nextEvent reads one event (up to its blank line).
func nextEvent(br *bufio.Reader) (sseEvent, error) {
	var ev sseEvent
	seen := false
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			if err == io.EOF && line == "" && !seen {
				return ev, io.EOF
			}
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return ev, err
		}
		line = strings.TrimRight(line, "\r\n")
		switch {
		case line == "":
			if seen {
				ev.at = time.Now()
				return ev, nil
			}
		case strings.HasPrefix(line, "event:"):
			ev.event, seen = strings.TrimSpace(strings.TrimPrefix(line, "event:")), true
		case strings.HasPrefix(line, "data:"):
			ev.data, seen = strings.TrimSpace(strings.TrimPrefix(line, "data:")), true
		}
	}
}

func eventToken(t *testing.T, ev sseEvent) string {
	t.Helper()
	var tok struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal([]byte(ev.data), &tok); err != nil {
		t.Fatalf("decode event data %q: %v", ev.data, err)
	}
	return tok.Token
}

// openStream starts GET /chat/stream and returns the response and a reader.
func (g *hfgateProc) openStream(ctx context.Context, message string) (*http.Response, *bufio.Reader) {
	g.t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.base+"/chat/stream?message="+url.QueryEscape(message), nil)
	if err != nil {
		g.t.Fatalf("new request: %v", err)
	}
	req.Header.Set("Accept", "text/event-stream")
	withPlantedSecrets(req)
	resp, err := g.client.Do(req)
	if err != nil {
		g.t.Fatalf("GET /chat/stream: %v", err)
	}
	g.t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		g.t.Fatalf("GET /chat/stream: got %d %s, want 200", resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		g.t.Errorf("got Content-Type %q, want text/event-stream", ct)
	}
	return resp, bufio.NewReader(resp.Body)
}

// TestE2EColdStart: the port is bound at once, answers 503 (and a status
// page) while uvicorn loads, then forwards once the backend is ready.
func TestE2EColdStart(t *testing.T) {
	// Not parallel, so the start-up figures it logs are not skewed by the
	// other tests.
	ctx := testContext(t, 30*time.Second)
	g := startGateway(t, map[string]string{"STARTUP_SECONDS": "1"})

	bound := g.awaitPort(ctx)

	r := g.mustRequest(ctx, http.MethodPost, "/chat", `{"message": "hello"}`)
	checkNotReady(t, r, "starting")

	r = g.mustRequest(ctx, http.MethodGet, "/", "", "Accept", "text/html,application/xhtml+xml")
	if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
		t.Errorf("GET / (HTML) while cold: got %d %q, want 200 text/html", r.status, r.header.Get("Content-Type"))
	}
	r = g.mustRequest(ctx, http.MethodGet, "/", "", "Accept", "application/json")
	var status struct {
		State string `json:"state"`
	}
	if r.status != http.StatusOK || json.Unmarshal(r.body, &status) != nil || status.State != "starting" {
		t.Errorf("GET / (JSON) while cold: got %s, want 200 with state starting", r)
	}
	r = g.mustRequest(ctx, http.MethodGet, "/healthz", "")
	if r.status != http.StatusOK {
		t.Errorf("GET /healthz while cold: got %s, want 200", r)
	}

	rb, readyAt := g.awaitReady(ctx, 10*time.Millisecond)
	if rb.State != "ready" {
		t.Errorf("got /ready state %q, want ready", rb.State)
	}
	up := g.awaitLog(ctx, 1, "Uvicorn running on", relayedContains("Uvicorn running on"))
	t.Logf("exec -> port bound: %v; exec -> uvicorn up: %v; uvicorn up -> /ready 200: %v",
		bound.Sub(g.started).Round(time.Millisecond), up.at.Sub(g.started).Round(time.Millisecond),
		readyAt.Sub(up.at).Round(time.Millisecond))

	r = g.mustRequest(ctx, http.MethodPost, "/chat", `{"message": "hello world"}`, "X-Request-ID", "e2e-cold-1")
	checkChat(t, r, botReply("hello world"))
	if got := r.header.Get("X-Request-ID"); got != "e2e-cold-1" {
		t.Errorf("got X-Request-ID %q, want the client's e2e-cold-1", got)
	}
}

// TestE2EStreaming: SSE events pass through the gateway as they are made,
// not buffered to the end; WebSockets are forwarded too.
func TestE2EStreaming(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 40*time.Second)
	const delay = 300 * time.Millisecond
	g := startGateway(t, map[string]string{"TOKEN_DELAY": "0.3"})
	g.awaitReady(ctx, 50*time.Millisecond)

	t.Run("sse", func(t *testing.T) {
		_, br := g.openStream(ctx, "")
		var events []sseEvent
		var text strings.Builder
		for {
			ev, err := nextEvent(br)
			if err != nil {
				t.Fatalf("read event %d: %v", len(events)+1, err)
			}
			events = append(events, ev)
			if ev.event == "done" {
				break
			}
			text.WriteString(eventToken(t, ev))
		}
		if got, want := text.String(), botReply(""); got != want {
			t.Errorf("got streamed text %q, want %q", got, want)
		}
		first, last := events[0], events[len(events)-1]
		if spread := last.at.Sub(first.at); spread < 2*delay {
			t.Errorf("got first event %v before the last, want at least %v: the stream was buffered", spread, 2*delay)
		}
		t.Logf("%d events over %v", len(events), last.at.Sub(first.at).Round(time.Millisecond))
	})

	t.Run("websocket", func(t *testing.T) {
		// A real client library (python websockets) rather than a Go module
		// this repository would otherwise not need.
		wsURL := "ws" + strings.TrimPrefix(g.base, "http") + "/ws"
		messages := []string{"hi", "second message"}
		out, err := exec.CommandContext(ctx, e2ePython, append([]string{"-c", wsClientScript, wsURL}, messages...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("websocket client: %v\n%s", err, out)
		}
		var got []string
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("decode websocket client output %q: %v", out, err)
		}
		want := make([]string, len(messages))
		for i, m := range messages {
			want[i] = botReply(m)
		}
		if !slices.Equal(got, want) {
			t.Errorf("got replies %q, want %q", got, want)
		}
	})
}

// wsClientScript connects to argv[1], sends each further argument as a text
// message, joins the token frames up to "[DONE]", and prints the replies as
// a JSON list.
const wsClientScript = `
import asyncio, json, sys
import websockets

async def main():
    replies = []
    async with websockets.connect(sys.argv[1], open_timeout=5) as ws:
        for message in sys.argv[2:]:
            await ws.send(message)
            parts = []
            while True:
                frame = await asyncio.wait_for(ws.recv(), 5)
                if frame == "[DONE]":
                    break
                parts.append(frame)
            replies.append("".join(parts))
    print(json.dumps(replies))

asyncio.run(main())
`

// TestE2ECrashRestart: a backend that exits is reported as not ready and
// restarted by the supervisor. With the defaults a request that arrives
// meanwhile is held and answered by the restarted backend; with
// HOLD_TIMEOUT=0 it gets the 503 at once.
func TestE2ECrashRestart(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		hold string
	}{
		{"held", ""},
		{"holding off", "0"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			testCrashRestart(t, tt.hold)
		})
	}
}

func testCrashRestart(t *testing.T, holdTimeout string) {
	ctx := testContext(t, 45*time.Second)
	env := map[string]string{"EXAMPLE_ALLOW_CRASH": "1"}
	if holdTimeout != "" {
		env["HOLD_TIMEOUT"] = holdTimeout
	}
	g := startGateway(t, env)
	before, _ := g.awaitReady(ctx, 50*time.Millisecond)

	r := g.mustRequest(ctx, http.MethodPost, "/admin/crash", "")
	if r.status != http.StatusAccepted {
		t.Fatalf("POST /admin/crash: got %s, want 202", r)
	}
	g.awaitLog(ctx, 1, "upstream exited", msgIs("upstream exited"))
	// The exit is logged just before the state machine hears of it.
	g.awaitLog(ctx, 1, "state crashed", func(l logLine) bool {
		return l.msg() == "upstream state" && l.attr("to") == "crashed"
	})

	rr, rb, err := g.ready(ctx)
	if err != nil {
		t.Fatalf("GET /ready: %v", err)
	}
	if rr.status != http.StatusServiceUnavailable || rr.header.Get("Retry-After") == "" {
		t.Errorf("GET /ready after crash: got %s (Retry-After %q), want 503 with Retry-After", rr, rr.header.Get("Retry-After"))
	}
	if rb.State != "crashed" && rb.State != "starting" {
		t.Errorf("got /ready state %q after crash, want crashed or starting", rb.State)
	}
	r = g.mustRequest(ctx, http.MethodPost, "/chat", `{"message": "anyone?"}`)
	if holdTimeout == "0" {
		checkNotReady(t, r, "crashed", "starting")
	} else {
		// Held until the restarted backend was ready, then answered by it.
		checkChat(t, r, botReply("anyone?"))
		g.awaitLog(ctx, 1, "held access line", func(l logLine) bool {
			return l.msg() == "request" && l.attr("path") == "/chat" && l.attr("queued") != "" && l.attr("status") == "200"
		})
	}

	g.awaitLog(ctx, 2, "upstream started", msgIs("upstream started"))
	after, _ := g.awaitReady(ctx, 50*time.Millisecond)
	if after.Supervisor == nil || after.Supervisor.Restarts < 1 {
		t.Fatalf("got supervisor %+v, want restarts >= 1", after.Supervisor)
	}
	if before.Supervisor != nil && after.Supervisor.PID == before.Supervisor.PID {
		t.Errorf("got the same child PID %d after the restart, want a new one", after.Supervisor.PID)
	}
	if len(after.Supervisor.LastExit) == 0 || string(after.Supervisor.LastExit) == "null" {
		t.Errorf("got no supervisor.last_exit after a crash, want one")
	}
	checkChat(t, g.mustRequest(ctx, http.MethodPost, "/chat", `{"message": "back"}`), botReply("back"))
}

// TestE2EKillMidStream: SIGKILL of the backend while it streams ends the
// client's stream promptly, and the gateway recovers.
func TestE2EKillMidStream(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 45*time.Second)
	g := startGateway(t, map[string]string{"TOKEN_DELAY": "0.2"})
	before, _ := g.awaitReady(ctx, 50*time.Millisecond)
	if before.Supervisor == nil || before.Supervisor.PID <= 0 {
		t.Fatalf("got supervisor %+v in /ready, want a child pid", before.Supervisor)
	}

	// About 50 tokens at 0.2s each: the stream would run for ~10s.
	_, br := g.openStream(ctx, strings.Repeat("word ", 45))
	if _, err := nextEvent(br); err != nil {
		t.Fatalf("read first event: %v", err)
	}
	if err := syscall.Kill(before.Supervisor.PID, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 child %d: %v", before.Supervisor.PID, err)
	}
	killed := time.Now()
	var end error
	for end == nil {
		var ev sseEvent
		ev, end = nextEvent(br)
		if ev.event == "done" {
			t.Fatalf("got the done event after the backend was killed, want the stream cut")
		}
	}
	if took := time.Since(killed); took > 3*time.Second {
		t.Errorf("stream ended %v after the kill (%v), want within 3s", took, end)
	}
	t.Logf("stream ended %v after kill -9: %v", time.Since(killed).Round(time.Millisecond), end)

	// /ready may still say ready for a moment: wait until the supervisor
	// has seen the exit and started a new child.
	g.awaitLog(ctx, 1, "upstream exited", msgIs("upstream exited"))
	g.awaitLog(ctx, 2, "upstream started", msgIs("upstream started"))
	after, _ := g.awaitReady(ctx, 50*time.Millisecond)
	if after.Supervisor == nil || after.Supervisor.Restarts < 1 || after.Supervisor.PID == before.Supervisor.PID {
		t.Errorf("got supervisor %+v after kill -9 of pid %d, want restarts >= 1 and a new pid", after.Supervisor, before.Supervisor.PID)
	}
}

// TestE2EMisconfigured: a missing REQUIRED_ENV secret keeps the backend from
// starting and is explained to clients, while /healthz stays up.
func TestE2EMisconfigured(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 20*time.Second)
	secret := "sk-test-" + randomHex(t, 12)
	g := startGateway(t, map[string]string{
		"REQUIRED_ENV":   "OPENAI_API_KEY,DATABASE_URL",
		"OPENAI_API_KEY": secret,
	})
	g.awaitLog(ctx, 1, "upstream state to=misconfigured", func(l logLine) bool {
		return l.msg() == "upstream state" && l.attr("to") == "misconfigured"
	})

	rr, rb, err := g.ready(ctx)
	if err != nil {
		t.Fatalf("GET /ready: %v", err)
	}
	if rr.status != http.StatusServiceUnavailable || rr.header.Get("Retry-After") == "" {
		t.Errorf("GET /ready: got %s (Retry-After %q), want 503 with Retry-After", rr, rr.header.Get("Retry-After"))
	}
	if rb.State != "misconfigured" || !slices.Equal(rb.Missing, []string{"DATABASE_URL"}) {
		t.Errorf("got /ready state %q missing %q, want misconfigured and [DATABASE_URL]", rb.State, rb.Missing)
	}

	eb := checkNotReady(t, g.mustRequest(ctx, http.MethodPost, "/chat", `{"message": "hi"}`), "misconfigured")
	if !slices.Equal(eb.Missing, []string{"DATABASE_URL"}) || eb.Hint == "" {
		t.Errorf("got missing %q hint %q, want [DATABASE_URL] and a hint", eb.Missing, eb.Hint)
	}

	r := g.mustRequest(ctx, http.MethodGet, "/healthz", "")
	if r.status != http.StatusOK || !bytes.Contains(r.body, []byte(`"ok"`)) {
		t.Errorf("GET /healthz: got %s, want 200 {\"status\":\"ok\"}", r)
	}

	// Stop it, so the whole of its output is in: the child must never have run.
	if code := g.stop(ctx); code != 0 {
		t.Errorf("got exit code %d after SIGTERM, want 0", code)
	}
	if n := g.logs.count(msgIs("upstream started")); n != 0 {
		t.Errorf("got %d \"upstream started\" lines, want 0", n)
	}
	if n := g.logs.count(logLine.relayed); n != 0 {
		t.Errorf("got %d relayed child lines, want 0: the child ran", n)
	}
	if _, raw := g.logs.snapshot(); bytes.Contains(raw, []byte(secret)) {
		t.Errorf("the OPENAI_API_KEY value appears in the gateway's output")
	}
}

// TestE2ESigtermDrains: SIGTERM lets an open stream finish, then stops the
// child and exits 0.
func TestE2ESigtermDrains(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 40*time.Second)
	g := startGateway(t, map[string]string{"TOKEN_DELAY": "0.2", "SHUTDOWN_TIMEOUT": "15s"})
	rb, _ := g.awaitReady(ctx, 50*time.Millisecond)
	if rb.Supervisor == nil || rb.Supervisor.PID <= 0 {
		t.Fatalf("got supervisor %+v in /ready, want a child pid", rb.Supervisor)
	}
	pid := rb.Supervisor.PID

	const message = "one two three four five six seven eight" // ~13 tokens, ~2.6s
	_, br := g.openStream(ctx, message)
	ev, err := nextEvent(br)
	if err != nil {
		t.Fatalf("read first event: %v", err)
	}
	if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM hfgate: %v", err)
	}
	var text strings.Builder
	for ev.event != "done" {
		text.WriteString(eventToken(t, ev))
		if ev, err = nextEvent(br); err != nil {
			t.Fatalf("stream cut during drain after %q: %v", text.String(), err)
		}
	}
	if got, want := text.String(), botReply(message); got != want {
		t.Errorf("got streamed text %q, want %q", got, want)
	}

	if code := g.wait(ctx); code != 0 {
		t.Errorf("got exit code %d after SIGTERM, want 0", code)
	}
	var last error
	if err := poll(ctx, 20*time.Millisecond, func() bool {
		last = syscall.Kill(pid, 0)
		return errors.Is(last, syscall.ESRCH)
	}); err != nil {
		t.Errorf("child %d still exists after hfgate exited (kill -0: %v)", pid, last)
	}
}

// TestE2ERelayedLines: the child's output is relayed as tagged, colourless
// lines in both log formats.
func TestE2ERelayedLines(t *testing.T) {
	t.Parallel()
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t, 30*time.Second)
			g := startGateway(t, map[string]string{"LOG_FORMAT": format})
			g.awaitReady(ctx, 50*time.Millisecond)
			checkChat(t, g.mustRequest(ctx, http.MethodPost, "/chat", `{"message": "log me"}`), botReply("log me"))
			g.awaitLog(ctx, 1, "uvicorn access line", relayedContains("POST /chat"))
			if code := g.stop(ctx); code != 0 {
				t.Errorf("got exit code %d after SIGTERM, want 0", code)
			}

			lines, raw := g.logs.snapshot()
			if i := bytes.IndexByte(raw, 0x1b); i >= 0 {
				t.Errorf("got an ESC byte in the output: %q", raw[max(0, i-40):min(len(raw), i+40)])
			}
			streams := map[string]int{}
			for _, l := range lines {
				if format == "json" {
					var m map[string]any
					if err := json.Unmarshal([]byte(l.raw), &m); err != nil {
						t.Errorf("got a line that is not a JSON object: %q", l.raw)
						continue
					}
				}
				if !l.relayed() {
					continue
				}
				line := l.attr("line")
				streams[l.attr("stream")]++
				if strings.ContainsRune(line, 0x1b) || strings.Contains(line, "[0m") {
					t.Errorf("got a relayed line with colour codes left: %q", line)
				}
			}
			if len(streams) != 2 || streams["stdout"] == 0 || streams["stderr"] == 0 {
				t.Errorf("got relayed lines per stream tag %v, want some on stdout and on stderr, and no other tag", streams)
			}
			// The harness sends a planted access_token in the query: uvicorn prints it, the
			// gateway masks it.
			access := g.logs.count(relayedContains(`"POST /chat?access_token=*** HTTP/1.1" 200`))
			if access != 1 {
				t.Errorf("got %d relayed uvicorn access lines for POST /chat with the token masked, want 1 (colours stripped)", access)
			}
		})
	}
}

// TestE2ESecretsMasked: a backend that logs its API key does not get it into
// the gateway's output.
func TestE2ESecretsMasked(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	secret := "sk-test-" + randomHex(t, 16)
	g := startGateway(t, map[string]string{
		"OPENAI_API_KEY":   secret,
		"EXAMPLE_ECHO_ENV": "OPENAI_API_KEY",
		"REQUIRED_ENV":     "OPENAI_API_KEY",
	})
	l := g.awaitLog(ctx, 1, "careless debug line", relayedContains("debug: OPENAI_API_KEY="))
	if line := l.attr("line"); !strings.Contains(line, "OPENAI_API_KEY=***") {
		t.Errorf("got relayed line %q, want the value masked as ***", line)
	}
	g.awaitReady(ctx, 50*time.Millisecond)
	if code := g.stop(ctx); code != 0 {
		t.Errorf("got exit code %d after SIGTERM, want 0", code)
	}
	if _, raw := g.logs.snapshot(); bytes.Contains(raw, []byte(secret)) {
		t.Errorf("the OPENAI_API_KEY value appears in the gateway's output")
	}
}

// TestE2EBadConfig: configuration errors exit 2 naming the variable, not its
// value; -h prints the help.
func TestE2EBadConfig(t *testing.T) {
	t.Parallel()
	bin := hfgateBinary(t)
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		wantCode int
		want     []string // in the output
		notWant  []string // values that must not be echoed
	}{
		{
			name:     "bad upstream url",
			env:      map[string]string{"UPSTREAM_URL": "notaurl"},
			wantCode: 2,
			want:     []string{"UPSTREAM_URL"},
			notWant:  []string{"notaurl"},
		},
		{
			name:     "all problems at once",
			env:      map[string]string{"UPSTREAM_URL": "ftp://files.invalid", "LOG_LEVEL": "loudest"},
			wantCode: 2,
			want:     []string{"UPSTREAM_URL", "LOG_LEVEL"},
			notWant:  []string{"files.invalid", "loudest"},
		},
		{
			name:     "help",
			args:     []string{"-h"},
			wantCode: 0,
			want:     []string{"UPSTREAM_CMD", "REQUIRED_ENV", "GRADIO_SERVER_PORT"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t, 10*time.Second)
			cmd := exec.CommandContext(ctx, bin, tt.args...)
			cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOST=127.0.0.1", "PORT=" + strconv.Itoa(freePort(t))}
			for k, v := range tt.env {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
			out, err := cmd.CombinedOutput()
			if ctx.Err() != nil {
				t.Fatalf("hfgate did not exit within the deadline; output:\n%s", out)
			}
			var exitErr *exec.ExitError
			if err != nil && !errors.As(err, &exitErr) {
				t.Fatalf("run hfgate: %v", err)
			}
			if code := cmd.ProcessState.ExitCode(); code != tt.wantCode {
				t.Errorf("got exit code %d, want %d; output:\n%s", code, tt.wantCode, out)
			}
			for _, w := range tt.want {
				if !bytes.Contains(out, []byte(w)) {
					t.Errorf("got output without %q:\n%s", w, out)
				}
			}
			for _, w := range tt.notWant {
				if bytes.Contains(out, []byte(w)) {
					t.Errorf("got output echoing the value %q:\n%s", w, out)
				}
			}
		})
	}
}

// TestE2EOverriddenVariablesWarn: on a Space GRADIO_SERVER_PORT and GRADIO_SERVER_NAME are set,
// so PORT and HOST are not used; a bad value in them is a warning naming both variables, never
// exit 2, and the value is not repeated.
func TestE2EOverriddenVariablesWarn(t *testing.T) {
	t.Parallel()
	bin := hfgateBinary(t)
	ctx := testContext(t, 20*time.Second)
	port := freePort(t)
	cmd := exec.Command(bin)
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"GRADIO_SERVER_PORT=" + strconv.Itoa(port), "PORT=abc-zq9",
		"GRADIO_SERVER_NAME=127.0.0.1", "HOST=zq9/host",
		"UPSTREAM_URL=http://127.0.0.1:" + strconv.Itoa(freePort(t)),
	}
	g := startProc(t, cmd, port)
	g.awaitPort(ctx)
	if r := g.mustRequest(ctx, http.MethodGet, "/healthz", ""); r.status != http.StatusOK {
		t.Errorf("GET /healthz: got %s, want 200", r)
	}
	for _, want := range []struct{ v, by, problem string }{
		{"PORT", "GRADIO_SERVER_PORT", "must be a whole number from 1 to 65535"},
		{"HOST", "GRADIO_SERVER_NAME", "must be an IP address or a host name, such as 0.0.0.0, :: or localhost"},
	} {
		l := g.awaitLog(ctx, 1, want.v+" ignored", func(l logLine) bool { return l.msg() == "variable ignored" && l.attr("var") == want.v })
		if !strings.Contains(l.raw, " WRN ") || l.attr("overridden_by") != want.by || l.attr("problem") != want.problem {
			t.Errorf("got %q, want a WRN line with var=%s overridden_by=%s problem=%q", l.raw, want.v, want.by, want.problem)
		}
	}
	if code := g.stop(ctx); code != 0 {
		t.Errorf("exit code after SIGTERM: got %d, want 0", code)
	}
	if _, raw := g.logs.snapshot(); bytes.Contains(raw, []byte("zq9")) {
		t.Errorf("an ignored value reached the log:\n%s", raw)
	}
}

// TestE2EGatewayKilledTakesChildAlong: when hfgate itself dies without a chance to
// clean up (SIGKILL, OOM), the kernel kills the child (Pdeathsig): no orphan is
// left holding the port.
func TestE2EGatewayKilledTakesChildAlong(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	g := startGateway(t, nil)
	rb, _ := g.awaitReady(ctx, 50*time.Millisecond)
	if rb.Supervisor == nil || rb.Supervisor.PID <= 0 {
		t.Fatalf("got supervisor %+v in /ready, want a child pid", rb.Supervisor)
	}
	pid := rb.Supervisor.PID
	if err := g.cmd.Process.Kill(); err != nil {
		t.Fatalf("SIGKILL hfgate: %v", err)
	}
	<-g.exited
	// The orphaned child is reaped by whatever init this machine has; until then it may
	// linger as a zombie, which holds no port and runs no code.
	var state string
	if err := poll(ctx, 20*time.Millisecond, func() bool {
		state = e2eProcState(pid)
		return state == "" || state == "Z" || state == "X"
	}); err != nil {
		t.Errorf("child %d still running (state %q) after hfgate was killed", pid, state)
	}
}

// e2eProcState returns the state letter of a process from /proc, or "" if it is gone.
func e2eProcState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	// The state follows the command name, which is in parentheses and may hold spaces.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2 : i+3]
	}
	return ""
}
