package gateway

import (
	"encoding/json"
	"html/template"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hfgate/hfgate/gateway/health"
	"github.com/hfgate/hfgate/gateway/supervise"
)

// TestStatusPageRefresh: the status page at "/" reloads itself after the
// current Retry-After estimate, which is how a visitor's tab turns into the
// backend's page once it is ready (e2e/browser_test.go watches that happen).
func TestStatusPageRefresh(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		elapsed time.Duration // since the gateway started, with no start-up measured yet
		want    int
	}{
		{name: "just started", elapsed: 0, want: 5},
		{name: "part-way", elapsed: 2500 * time.Millisecond, want: 3},
		{name: "overdue", elapsed: time.Minute, want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
			now := start
			clock := func() time.Time { return now }
			a := &answers{
				readiness: health.NewTracker(health.TrackerOptions{Logger: slog.New(slog.DiscardHandler), Now: clock}),
				startedAt: start,
				now:       clock,
				page:      newStatusPage(),
			}
			now = start.Add(tt.elapsed)

			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.Header.Set("Accept", "text/html,application/xhtml+xml")
			rec := httptest.NewRecorder()
			a.writeStatusPage(rec, req)
			body := rec.Body.String()
			if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
				t.Fatalf("got %d %q, want 200 text/html", rec.Code, rec.Header().Get("Content-Type"))
			}
			want := strconv.Itoa(tt.want)
			for _, s := range []string{
				`<meta http-equiv="refresh" content="` + want + `">`,
				"reloads by itself in " + want + " s",
				`<link rel="icon" href="data:,">`,
			} {
				if !strings.Contains(body, s) {
					t.Errorf("status page lacks %q:\n%s", s, body)
				}
			}
			if got := rec.Header().Get("Cache-Control"); got != "no-store" {
				t.Errorf("got Cache-Control %q, want no-store: a cached page would never turn", got)
			}
		})
	}
}

// TestCrashLoopAnswers: once the supervised backend has exited crashLoopExits times in a row
// without ever being ready, the status page, its JSON, /ready and every 503 say that it keeps
// failing at start, how many times, how it last ended and where its owner finds the reason,
// and none carries the backend's own output. Fewer exits, or a state that is neither starting
// nor crashed, keep the ordinary answers.
func TestCrashLoopAnswers(t *testing.T) {
	t.Parallel()
	code1 := &supervise.ExitSummary{Code: 1, RunTime: "412ms"}
	oom := &supervise.ExitSummary{Code: -1, Signal: "SIGKILL", Hint: "killed by a SIGKILL the gateway did not send; ... (the Space has MEMORY=16Gi)"}
	tests := []struct {
		name     string
		state    health.State
		status   supervise.Status
		wantLoop bool
		wantExit string // the last exit as the answers phrase it
	}{
		{name: "two exits are no loop yet", state: health.Crashed, status: supervise.Status{State: supervise.Backoff, Restarts: 1, ExitsBeforeReady: 2, LastExit: code1}},
		{name: "third exit, crashed", state: health.Crashed, status: supervise.Status{State: supervise.Backoff, Restarts: 2, ExitsBeforeReady: 3, LastExit: code1}, wantLoop: true, wantExit: "exit code 1"},
		{name: "starting again", state: health.Starting, status: supervise.Status{State: supervise.Running, Restarts: 5, ExitsBeforeReady: 5, LastExit: code1}, wantLoop: true, wantExit: "exit code 1"},
		{name: "out of memory at load", state: health.Crashed, status: supervise.Status{State: supervise.Backoff, Restarts: 3, ExitsBeforeReady: 4, LastExit: oom}, wantLoop: true, wantExit: "killed by SIGKILL, on a Space usually the out-of-memory killer"},
		{name: "start failed", state: health.Crashed, status: supervise.Status{State: supervise.Backoff, Restarts: 3, ExitsBeforeReady: 4, LastExit: &supervise.ExitSummary{Code: -1, StartFailed: true}}, wantLoop: true, wantExit: "its command could not be started"},
		{name: "draining says draining", state: health.Draining, status: supervise.Status{State: supervise.Backoff, ExitsBeforeReady: 7, LastExit: code1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
			clock := func() time.Time { return start }
			r := health.NewTracker(health.TrackerOptions{Logger: slog.New(slog.DiscardHandler), Now: clock})
			switch tt.state {
			case health.Crashed:
				r.MarkCrashed()
			case health.Draining:
				r.MarkDraining()
			}
			a := &answers{readiness: r, child: func() supervise.Status { return tt.status }, startedAt: start, now: clock, page: newStatusPage()}

			// /ready
			rec := httptest.NewRecorder()
			a.writeReady(rec, httptest.NewRequest(http.MethodGet, "/ready", nil))
			var ready struct {
				State     health.State `json:"state"`
				Message   string       `json:"message"`
				Hint      string       `json:"hint"`
				CrashLoop *crashLoop   `json:"crash_loop"`
			}
			decodeJSON(t, rec.Body.Bytes(), &ready)
			// A 503 on the API, and the status page's JSON.
			rec503 := httptest.NewRecorder()
			a.writeNotReady(rec503, httptest.NewRequest(http.MethodPost, "/chat", nil), "rid")
			recJSON := httptest.NewRecorder()
			a.writeStatusPage(recJSON, httptest.NewRequest(http.MethodGet, "/", nil))
			// The status page a visitor sees.
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.Header.Set("Accept", "text/html")
			recHTML := httptest.NewRecorder()
			a.writeStatusPage(recHTML, req)
			page := recHTML.Body.String()

			if ready.State != tt.state || rec.Code != http.StatusServiceUnavailable {
				t.Errorf("/ready: got %d state %q, want 503 %q", rec.Code, ready.State, tt.state)
			}
			for what, b := range map[string][]byte{"503": rec503.Body.Bytes(), "status page JSON": recJSON.Body.Bytes()} {
				var nr notReadyBody
				decodeJSON(t, b, &nr)
				if got := nr.CrashLoop != nil; got != tt.wantLoop {
					t.Errorf("%s: got crash_loop %v, want present %v: %s", what, nr.CrashLoop, tt.wantLoop, b)
					continue
				}
				if !tt.wantLoop {
					continue
				}
				if *nr.CrashLoop != (crashLoop{Exits: tt.status.ExitsBeforeReady, LastExit: tt.wantExit}) || nr.Hint != logsHint ||
					!strings.HasPrefix(nr.Error, "the service keeps failing to start: its backend exited "+strconv.Itoa(tt.status.ExitsBeforeReady)+" times") {
					t.Errorf("%s: got %s, want the crash loop (%d exits, last %q), its message and the Logs hint", what, b, tt.status.ExitsBeforeReady, tt.wantExit)
				}
			}
			if !tt.wantLoop {
				if ready.CrashLoop != nil || strings.Contains(page, "keeps failing") {
					t.Errorf("no crash loop: got /ready %+v and page:\n%s", ready, page)
				}
				return
			}
			if ready.CrashLoop == nil || ready.CrashLoop.Exits != tt.status.ExitsBeforeReady || ready.CrashLoop.LastExit != tt.wantExit ||
				ready.Hint != logsHint || !strings.Contains(ready.Message, "keeps failing to start") {
				t.Errorf("/ready: got %s, want the crash loop, its message and the Logs hint", rec.Body.Bytes())
			}
			for _, want := range []string{
				"<title>Failing to start</title>",
				"<h1>This Space keeps failing to start</h1>",
				"exited " + strconv.Itoa(tt.status.ExitsBeforeReady) + " times in a row before it was ready",
				"(the last time: " + template.HTMLEscapeString(tt.wantExit) + ")",
				"<strong>Logs</strong> tab",
				"reloads by itself in ",
			} {
				if !strings.Contains(page, want) {
					t.Errorf("status page lacks %q:\n%s", want, page)
				}
			}
			// The exit's hint quotes a setting; the page gives a fixed phrase instead.
			if strings.Contains(page, "MEMORY") || strings.Contains(recJSON.Body.String(), "MEMORY") {
				t.Errorf("the public page carries the exit's hint text:\n%s", page)
			}
		})
	}
}

func decodeJSON(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
}
