package main

// Browser tests: Debian's Chromium, driven by playwright-core from
// examples/chatbot/frontend/test/browser.mjs, loads the example chat page from
// one origin and talks to the real hfgate binary on another, which supervises
// the real example backend under uvicorn. They prove what only a browser can:
// CORS (preflights, exposed headers on 503s, refusals) and that tokens reach
// page script one by one.
//
// They need /usr/bin/chromium, node, the driver's node_modules (npm ci
// --prefix examples/chatbot/frontend/test) and /usr/bin/python3 with fastapi
// and uvicorn. Without those the tests skip, except when CI=true, where they
// fail. -short skips them too.
//
// The gateway, its log and the binary come from the harness in
// harness_test.go, shared with the end-to-end tests.
//
// Run: go test -count=1 -run TestBrowser .

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	// browserChromium is the only browser these tests use: the system's,
	// never one downloaded by Playwright.
	browserChromium = "/usr/bin/chromium"
	// browserFrontendDir holds the chat page; its test/ subdirectory holds
	// the driver and its package.json.
	browserFrontendDir = "examples/chatbot/frontend"
	// browserStartup is the backend's fake model-loading time
	// (STARTUP_SECONDS): long enough for the page to meet a cold gateway.
	browserStartup = 2 * time.Second
	// browserTokenDelay is the backend's pause between streamed tokens
	// (TOKEN_DELAY).
	browserTokenDelay = 200 * time.Millisecond
	// browserMessage is what the page sends.
	browserMessage = "hello from chromium"
)

// TestBrowser runs each scenario against its own gateway, backend and page
// servers, in parallel.
func TestBrowser(t *testing.T) {
	node := browserRequire(t)
	// Build now, not while a held page waits for its gateway.
	hfgateBinary(t)

	// cold: the page is loaded before the gateway even starts, so its first
	// request meets the cold backend. It must read Retry-After and
	// X-Request-ID on the 503 (only possible if the gateway sets ACAO and
	// Access-Control-Expose-Headers on it), wait, and then get its reply
	// through a preflighted POST /chat.
	t.Run("cold", func(t *testing.T) {
		t.Parallel()
		ctx := testContext(t, 2*time.Minute)
		page := browserServeFrontend(t)
		port := freePort(t)
		var gw *hfgateProc
		res := browserRun(ctx, t, node, "cold", page, port, func() {
			gw = browserStartGateway(t, port, page)
			gw.awaitLog(ctx, 1, "the listening line", msgIs("listening"))
		})
		if gw == nil {
			t.Fatalf("driver never held after loading the page; result: %s", res.raw)
		}

		if len(res.Waits) == 0 {
			t.Fatalf("page saw no 503 before its reply; result: %s", res.raw)
		}
		for i, w := range res.Waits {
			if w.Status != http.StatusServiceUnavailable {
				t.Errorf("wait %d: got status %d, want 503", i, w.Status)
			}
			// A null header means the browser hid it: Expose-Headers is missing.
			if n, err := strconv.Atoi(w.RetryAfterHeader); err != nil || n < 1 || n > 30 {
				t.Errorf("wait %d: page read Retry-After %q, want whole seconds in 1..30", i, w.RetryAfterHeader)
			}
			if w.RequestID == "" {
				t.Errorf("wait %d: page could not read X-Request-ID on the 503", i)
			}
			if w.State != "starting" {
				t.Errorf("wait %d: got state %q in the 503 body, want %q", i, w.State, "starting")
			}
		}
		if want := fmt.Sprintf("%s, retrying in %d s", res.Waits[0].State, res.Waits[0].RetryAfter); res.StatusShown != want {
			t.Errorf("status line during the wait: got %q, want %q", res.StatusShown, want)
		}
		if res.Reply == nil {
			t.Fatalf("page got no reply; result: %s", res.raw)
		}
		if res.Reply.Status != http.StatusOK {
			t.Errorf("POST /chat: got status %d, want 200", res.Reply.Status)
		}
		if want := botReply(browserMessage); res.Reply.Text != want {
			t.Errorf("POST /chat reply: got %q, want %q", res.Reply.Text, want)
		}
		if res.Reply.RequestID == "" {
			t.Errorf("page could not read X-Request-ID on the 200")
		}
		if !res.OK {
			t.Errorf("driver reported failure: %s", res.raw)
		}
		// The JSON content type makes POST /chat non-simple: the gateway must
		// have answered the browser's preflight itself, while cold.
		gw.awaitLog(ctx, 1, "an access line for the preflight", accessLine(http.MethodOptions, "/chat", http.StatusNoContent))
		gw.awaitLog(ctx, 1, "an access line for the 503", accessLine(http.MethodPost, "/chat", http.StatusServiceUnavailable))
		gw.awaitLog(ctx, 1, "an access line for the reply", accessLine(http.MethodPost, "/chat", http.StatusOK))
		t.Logf("cold: %d wait(s) of %s s each (state %q), reply after %.0f ms of page time",
			len(res.Waits), res.Waits[0].RetryAfterHeader, res.Waits[0].State, res.Reply.T-res.Waits[0].T)
	})

	// stream: tokens must reach page script as the backend sends them, one
	// by one, not in a burst at the end.
	t.Run("stream", func(t *testing.T) {
		t.Parallel()
		ctx := testContext(t, 2*time.Minute)
		page := browserServeFrontend(t)
		port := freePort(t)
		gw := browserStartGateway(t, port, page)
		gw.awaitReady(ctx, 50*time.Millisecond)
		res := browserRun(ctx, t, node, "stream", page, port, nil)

		want := botReply(browserMessage)
		if res.Text != want {
			t.Errorf("streamed text: got %q, want %q", res.Text, want)
		}
		if res.Shown != res.Text {
			t.Errorf("page shows %q, want the streamed text %q", res.Shown, res.Text)
		}
		if len(res.Tokens) < 5 {
			t.Fatalf("got %d tokens, want at least 5; result: %s", len(res.Tokens), res.raw)
		}
		gaps := make([]float64, 0, len(res.Tokens)-1)
		for i := 1; i < len(res.Tokens); i++ {
			gaps = append(gaps, res.Tokens[i].T-res.Tokens[i-1].T)
		}
		spread := time.Duration((res.Tokens[len(res.Tokens)-1].T - res.Tokens[0].T) * float64(time.Millisecond))
		// Unbuffered, the spread is about (tokens-1) * delay; buffered, about zero.
		if minSpread := 3 * browserTokenDelay; spread < minSpread {
			t.Errorf("first and last token arrived %v apart, want at least %v: the stream was buffered", spread, minSpread)
		}
		if !res.OK {
			t.Errorf("driver reported failure: %s", res.raw)
		}
		gw.awaitLog(ctx, 1, "an access line for the stream", accessLine(http.MethodGet, "/chat/stream", http.StatusOK))
		t.Logf("stream: %d tokens over %v (token delay %v); gaps min %.0f ms, max %.0f ms",
			len(res.Tokens), spread.Round(time.Millisecond), browserTokenDelay, slices.Min(gaps), slices.Max(gaps))
	})

	// disallowed: a page on an origin the gateway does not list must be
	// refused by the browser, for a preflighted and for a simple request.
	t.Run("disallowed", func(t *testing.T) {
		t.Parallel()
		ctx := testContext(t, 2*time.Minute)
		allowed := browserServeFrontend(t)
		other := browserServeFrontend(t)
		port := freePort(t)
		gw := browserStartGateway(t, port, allowed)
		gw.awaitReady(ctx, 50*time.Millisecond)
		res := browserRun(ctx, t, node, "disallowed", other, port, nil)

		if res.Ready != http.StatusOK {
			t.Errorf("driver's own GET /ready: got %d, want 200", res.Ready)
		}
		if len(res.Errors) != 2 {
			t.Fatalf("got %d fetch errors, want 2 (POST /chat, GET /chat/stream); result: %s", len(res.Errors), res.raw)
		}
		for i, e := range res.Errors {
			if e.Name != "TypeError" {
				t.Errorf("fetch error %d: got %s: %s, want a TypeError", i, e.Name, e.Message)
			}
		}
		if len(res.CORSBlocked) != 2 {
			t.Errorf("got %d CORS refusals on the console, want 2; console: %q", len(res.CORSBlocked), res.Console)
		}
		if len(res.Leaked) != 0 {
			t.Errorf("page script read answers it must not see: %s", res.Leaked)
		}
		if !res.OK {
			t.Errorf("driver reported failure: %s", res.raw)
		}
		// The simple GET reached the backend; the browser, not the gateway,
		// kept the answer from the page because it carried no ACAO. Chromium
		// drops the connection once it has seen the headers, so the status is
		// 200 or 499 depending on who finished first.
		refused := gw.awaitLog(ctx, 1, "an access line for the refused stream", accessLine(http.MethodGet, "/chat/stream", 0))
		t.Logf("disallowed: the gateway logged GET /chat/stream with status %s", refused.attr("status"))
		for _, m := range res.CORSBlocked {
			t.Logf("disallowed: %s", m)
		}
	})
}

// browserRequire returns the node executable, skipping the test when a
// prerequisite is missing, or failing it when CI=true.
func browserRequire(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("browser: skipped with -short")
	}
	var missing []string
	if _, err := exec.LookPath(browserChromium); err != nil {
		missing = append(missing, fmt.Sprintf("%s (Debian: apt-get install chromium)", browserChromium))
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing = append(missing, "node (Node.js 20 or later)")
	}
	pw := filepath.Join(browserFrontendDir, "test", "node_modules", "playwright-core", "package.json")
	if _, err := os.Stat(pw); err != nil {
		missing = append(missing, fmt.Sprintf("playwright-core (run: npm ci --prefix %s/test)", browserFrontendDir))
	}
	if err := backendProblem(); err != nil {
		missing = append(missing, err.Error())
	}
	if len(missing) == 0 {
		return node
	}
	skipOrFail(t, "browser: missing "+strings.Join(missing, "; "))
	return ""
}

// browserServeFrontend serves the chat page on its own loopback port, which
// makes it an origin of its own, and returns that origin.
func browserServeFrontend(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.FileServer(http.Dir(browserFrontendDir)))
	t.Cleanup(srv.Close)
	return srv.URL
}

// browserStartGateway starts hfgate on port, supervising the example
// backend, with origin as its only CORS origin and its log in JSON. The
// test's clean-up stops it with SIGTERM and expects a clean exit.
func browserStartGateway(t *testing.T, port int, origin string) *hfgateProc {
	t.Helper()
	g := startGateway(t, map[string]string{
		"PORT":               strconv.Itoa(port),
		"CORS_ALLOW_ORIGINS": origin,
		"LOG_FORMAT":         "json",
		"STARTUP_SECONDS":    strconv.FormatFloat(browserStartup.Seconds(), 'f', -1, 64),
		"TOKEN_DELAY":        strconv.FormatFloat(browserTokenDelay.Seconds(), 'f', -1, 64),
	})
	// Registered after startGateway's clean-up, so it runs first. Its own
	// context: the test's has ended by the time clean-up runs.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if code := g.stop(ctx); code != 0 {
			t.Errorf("hfgate after SIGTERM: got exit status %d, want 0", code)
		}
	})
	return g
}

// browserResult is the driver's JSON line; one struct serves all scenarios.
type browserResult struct {
	Scenario string `json:"scenario"`
	OK       bool   `json:"ok"`
	Error    string `json:"error"`
	Browser  string `json:"browser"`

	// cold
	Waits []struct {
		T                float64 `json:"t"`
		Attempt          int     `json:"attempt"`
		Status           int     `json:"status"`
		State            string  `json:"state"`
		RetryAfter       int     `json:"retryAfter"`
		RetryAfterHeader string  `json:"retryAfterHeader"`
		RequestID        string  `json:"requestId"`
	} `json:"waits"`
	StatusShown string `json:"statusShown"`
	Reply       *struct {
		T         float64 `json:"t"`
		Status    int     `json:"status"`
		RequestID string  `json:"requestId"`
		Text      string  `json:"text"`
	} `json:"reply"`

	// stream
	Tokens []struct {
		T    float64 `json:"t"`
		Text string  `json:"text"`
	} `json:"tokens"`
	Text  string `json:"text"`
	Shown string `json:"shown"`

	// disallowed
	Ready  int `json:"ready"`
	Errors []struct {
		Name    string `json:"name"`
		Message string `json:"message"`
	} `json:"errors"`
	CORSBlocked []string          `json:"corsBlocked"`
	Leaked      []json.RawMessage `json:"leaked"`

	Console        []string `json:"console"`
	PageErrors     []string `json:"pageErrors"`
	FailedRequests []string `json:"failedRequests"`

	raw string
}

// browserRun runs one scenario of browser.mjs against the page at origin
// page and the gateway on port, and returns its result. With loaded set, the
// driver holds after loading the page until loaded has returned. A driver
// that prints no result fails the test.
func browserRun(ctx context.Context, t *testing.T, node, scenario, page string, port int, loaded func()) browserResult {
	t.Helper()
	args := []string{
		filepath.Join(browserFrontendDir, "test", "browser.mjs"),
		"--scenario", scenario,
		"--page", page + "/",
		"--api", "http://127.0.0.1:" + strconv.Itoa(port),
		"--message", browserMessage,
		"--profile", t.TempDir(),
		"--chromium", browserChromium,
	}
	// The driver's own timeout is shorter than ctx so that it normally
	// reports a timeout itself instead of being killed.
	if deadline, ok := ctx.Deadline(); ok {
		args = append(args, "--timeout", strconv.FormatInt(time.Until(deadline).Milliseconds()/2, 10))
	}
	if loaded != nil {
		args = append(args, "--hold")
	}
	cmd := exec.CommandContext(ctx, node, args...)
	// SIGTERM lets Playwright close Chromium, which runs in its own process
	// group; SIGKILL follows if it does not exit.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatalf("stdin pipe: %v", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("stdout pipe: %v", err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start driver: %v", err)
	}
	if loaded == nil {
		stdin.Close()
	}
	var last string
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		last = sc.Text()
		if loaded != nil && last == `{"event":"loaded"}` {
			loaded()
			stdin.Close() // EOF releases the page.
			loaded = nil
		}
	}
	if loaded != nil {
		stdin.Close()
	}
	err = cmd.Wait()
	var res browserResult
	if jsonErr := json.Unmarshal([]byte(last), &res); jsonErr != nil || res.Scenario != scenario {
		t.Fatalf("driver printed no %s result (exit: %v)\nlast line: %s\nstderr:\n%s", scenario, err, last, stderr.String())
	}
	res.raw = last
	if res.Error != "" {
		t.Fatalf("driver: %s\nstderr:\n%s", res.Error, stderr.String())
	}
	if len(res.PageErrors) > 0 {
		t.Errorf("page script errors: %q", res.PageErrors)
	}
	t.Logf("%s: Chromium %s", scenario, res.Browser)
	return res
}
