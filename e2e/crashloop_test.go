package e2e

// A backend that can never start, as a user gets it wrong: the real example with a syntax
// error, and the real example named with a typo (app:ap). The console shows uvicorn's own
// traceback; the public answers must say that the backend keeps failing at start, how often,
// how it last ended and where the owner finds the reason, and never repeat its output.
//
// Run: go test -count=1 -run TestE2ECrashLoop ./e2e/

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// crashLoopBody is the part of /ready, a 503 and the status page's JSON that describes a
// crash loop.
type crashLoopBody struct {
	State     string `json:"state"`
	Error     string `json:"error"`   // a 503 and the status page's JSON
	Message   string `json:"message"` // /ready
	Hint      string `json:"hint"`
	CrashLoop *struct {
		Exits    int    `json:"exits"`
		LastExit string `json:"last_exit"`
	} `json:"crash_loop"`
}

func TestE2ECrashLoop(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// env returns what the test changes in the gateway's environment.
		env func(t *testing.T) map[string]string
		// console is what uvicorn says about it, relayed to the log.
		console string
	}{
		{
			name: "syntax error",
			env: func(t *testing.T) map[string]string {
				dir := t.TempDir()
				copyTree(t, repoPath("examples", "chatbot"), dir)
				app := filepath.Join(dir, "app.py")
				src := mustReadFile(t, app)
				if err := os.WriteFile(app, []byte(src+"\n\ndef broken(:\n    pass\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				return map[string]string{"UPSTREAM_DIR": dir}
			},
			console: "SyntaxError",
		},
		{
			name: "typo in the app's name",
			env: func(t *testing.T) map[string]string {
				return map[string]string{"UPSTREAM_CMD": fmt.Sprintf("%s -m uvicorn app:ap --host 127.0.0.1 --port %d", e2ePython, freePort(t))}
			},
			console: `Attribute "ap" not found in module "app"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t, 60*time.Second)
			env := tt.env(t)
			env["UPSTREAM_MAX_BACKOFF"] = "1s" // the third exit within a few seconds
			g := startGateway(t, env)
			g.awaitLog(ctx, 3, "the third upstream exited", func(l logLine) bool {
				return l.msg() == "upstream exited" && l.attr("code") == "1"
			})
			g.awaitLog(ctx, 1, "uvicorn's own error", relayedContains(tt.console))

			check := func(what string, r reply, wantStatus int, msg func(crashLoopBody) string) {
				t.Helper()
				if r.status != wantStatus {
					t.Errorf("%s: got %s, want status %d", what, r, wantStatus)
					return
				}
				var b crashLoopBody
				if err := json.Unmarshal(r.body, &b); err != nil {
					t.Fatalf("%s: decode %s: %v", what, r.body, err)
				}
				if b.CrashLoop == nil || b.CrashLoop.Exits < 3 || b.CrashLoop.LastExit != "exit code 1" {
					t.Errorf("%s: got %s, want crash_loop with at least 3 exits, last exit code 1", what, r.body)
				}
				if b.State != "starting" && b.State != "crashed" {
					t.Errorf("%s: got state %q, want starting or crashed", what, b.State)
				}
				if !strings.HasPrefix(msg(b), "the service keeps failing to start") || !strings.Contains(b.Hint, "Logs tab") {
					t.Errorf("%s: got %s, want the crash loop's message and the Logs tab hint", what, r.body)
				}
			}
			ready := g.mustRequest(ctx, http.MethodGet, "/ready", "")
			check("/ready", ready, http.StatusServiceUnavailable, func(b crashLoopBody) string { return b.Message })
			api := g.mustRequest(ctx, http.MethodPost, "/chat", `{"message": "hi"}`)
			checkNotReady(t, api, "starting", "crashed")
			check("POST /chat", api, http.StatusServiceUnavailable, func(b crashLoopBody) string { return b.Error })
			pageJSON := g.mustRequest(ctx, http.MethodGet, "/", "")
			check("GET / (JSON)", pageJSON, http.StatusOK, func(b crashLoopBody) string { return b.Error })

			page := g.mustRequest(ctx, http.MethodGet, "/", "", "Accept", "text/html")
			html := string(page.body)
			if page.status != http.StatusOK || !strings.HasPrefix(page.header.Get("Content-Type"), "text/html") {
				t.Errorf("GET / (HTML): got %d %q, want 200 text/html", page.status, page.header.Get("Content-Type"))
			}
			for _, want := range []string{"<h1>This Space keeps failing to start</h1>", " times in a row before it was ready (the last time: exit code 1)", "<strong>Logs</strong> tab"} {
				if !strings.Contains(html, want) {
					t.Errorf("status page lacks %q:\n%s", want, html)
				}
			}

			// Nothing the backend wrote reaches a public answer.
			lines, _ := g.logs.snapshot()
			for _, l := range lines {
				line := strings.TrimSpace(l.attr("line"))
				if !l.relayed() || len(line) < 12 {
					continue
				}
				for what, body := range map[string][]byte{"/ready": ready.body, "503": api.body, "status page": page.body, "status page JSON": pageJSON.body} {
					if strings.Contains(string(body), line) {
						t.Errorf("%s repeats the backend's output %q:\n%s", what, line, body)
					}
				}
			}
			for _, s := range []string{"Traceback", "SyntaxError", `Attribute "ap"`} {
				if strings.Contains(html, s) || strings.Contains(string(ready.body), s) {
					t.Errorf("a public answer names %q from the backend's output", s)
				}
			}
		})
	}
}
