package e2e

// Browser tests: Debian's Chromium, driven by playwright-core from
// examples/frontend/test/browser.mjs, loads the example chat page from one
// loopback origin (127.0.0.2) and talks to the real hfgate binary on another
// (127.0.0.1), which supervises the real example backend under uvicorn. They
// prove what only a browser can: CORS (preflights, exposed headers on 503s,
// refusals), that tokens reach the page one by one, and that the status page
// turns into the backend's page by itself.
//
// They need /usr/bin/chromium, node, the driver's node_modules (npm ci
// --prefix examples/frontend/test; .ci/deps does it) and /usr/bin/python3
// with fastapi and uvicorn. Without those the tests skip, except when
// CI=true, where they fail. -short skips them too.
//
// Every scenario leaves a screenshot of its page as it ended. They are
// removed when the test passes and their paths logged when it fails; with
// HFGATE_ARTIFACTS=DIR (or go test -artifacts) they are kept. With
// HFGATE_FRONTEND_PNG=PATH the stream scenario's mid-stream screenshot is
// copied to PATH: that is how docs/frontend.png is made.
//
// Run: go test -count=1 -run TestBrowser -v ./e2e/

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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
	// browserFrontendDir, from the module root (see repoPath), holds the
	// chat page; its test/ subdirectory holds the driver and its
	// package.json.
	browserFrontendDir = "examples/frontend"
	// browserPageHost serves the chat page: a loopback address other than
	// the gateway's, so the page is cross-origin to the gateway.
	browserPageHost = "127.0.0.2"
	// browserOtherHost serves the page from an origin the gateway does not
	// allow.
	browserOtherHost = "127.0.0.3"
	// browserStartup is the backend's fake model-loading time
	// (STARTUP_SECONDS): long enough for the page to meet a cold gateway.
	browserStartup = 2 * time.Second
	// browserTokenDelay is the backend's pause between streamed tokens
	// (TOKEN_DELAY).
	browserTokenDelay = 200 * time.Millisecond
	// browserBackendH1 is the heading of the backend's own page at "/".
	browserBackendH1 = "The example chatbot is up"
	// browserActionTimeout bounds each of the driver's page actions and
	// waits, and Chromium's launch.
	browserActionTimeout = 30 * time.Second
	// browserGroupTimeout bounds a whole group of scenarios.
	browserGroupTimeout = 3 * time.Minute
)

// TestBrowser runs two groups in parallel, each with one gateway and one
// Chromium (a launch costs seconds, many on a busy machine): "cold" meets a
// gateway whose backend is still loading, with the chat page and the status
// page at "/" in two tabs side by side; "warm" runs the stream, CORS refusal
// and crash scenarios one after the other against a ready gateway.
func TestBrowser(t *testing.T) {
	node := browserRequire(t)
	// Build now, not while a held page waits for its gateway.
	hfgateBinary(t)

	t.Run("cold", func(t *testing.T) {
		t.Parallel()
		browserCold(t, node)
	})
	t.Run("warm", func(t *testing.T) {
		t.Parallel()
		browserWarm(t, node)
	})
}

// browserCold loads the chat page and an empty tab before the gateway even
// starts, then starts it and lets both go, so that both meet the cold
// backend however long Chromium took to launch.
func browserCold(t *testing.T, node string) {
	ctx := testContext(t, browserGroupTimeout)
	page := browserServeFrontend(t, browserPageHost)
	port := freePort(t)
	api := "http://127.0.0.1:" + strconv.Itoa(port)
	message := "hello from chromium"

	d := startBrowserDriver(ctx, t, node, api, browserArtifacts(t), true,
		browserStep{Scenario: "cold", Page: page + "/", Messages: []string{message}},
		browserStep{Scenario: "statuspage"})
	d.awaitHold(ctx, t, "cold", "loaded")
	d.awaitHold(ctx, t, "statuspage", "loaded")
	gw := browserStartGateway(t, port, page, nil)
	gw.awaitLog(ctx, 1, "the listening line", msgIs("listening"))
	d.release(t, "cold")
	d.release(t, "statuspage")
	chatRes, statusRes := d.result(ctx, t, "cold"), d.result(ctx, t, "statuspage")

	// The page's first request meets the cold backend. It must read
	// Retry-After and X-Request-ID on the 503 (only possible if the gateway
	// sets ACAO and Access-Control-Expose-Headers on it), show the countdown,
	// retry by itself and then show the reply of a preflighted POST /chat.
	t.Run("chat", func(t *testing.T) {
		res := chatRes
		waits := res.entries("wait")
		if len(waits) == 0 {
			t.Fatalf("page saw no 503 before its reply; result: %s", res.raw)
		}
		for i, w := range waits {
			if w.Status != http.StatusServiceUnavailable {
				t.Errorf("wait %d: got status %d, want 503", i, w.Status)
			}
			if w.State != "starting" {
				t.Errorf("wait %d: got state %q in the 503 body, want %q", i, w.State, "starting")
			}
		}
		browserCheckCountdown(t, res, waits)
		reply := res.entry("reply")
		if reply == nil {
			t.Fatalf("page got no reply; result: %s", res.raw)
		}
		if reply.Status != http.StatusOK || reply.Text != botReply(message) || reply.RequestID == "" {
			t.Errorf("POST /chat: got status %d, text %q, request id %q; want 200, %q and an id",
				reply.Status, reply.Text, reply.RequestID, botReply(message))
		}
		if want := []browserShown{{"you", message}, {"bot", botReply(message)}}; !equalShown(res.Shown, want) {
			t.Errorf("page shows %v, want %v", res.Shown, want)
		}
		if res.Status != "" {
			t.Errorf("status line after the reply: got %q, want it empty", res.Status)
		}
		// The JSON content type makes POST /chat non-simple: the gateway must
		// have answered the browser's preflight itself, while cold.
		gw.awaitLog(ctx, 1, "an access line for the preflight", accessLine(http.MethodOptions, "/chat", http.StatusNoContent))
		gw.awaitLog(ctx, 1, "an access line for the 503", accessLine(http.MethodPost, "/chat", http.StatusServiceUnavailable))
		gw.awaitLog(ctx, 1, "an access line for the reply", accessLine(http.MethodPost, "/chat", http.StatusOK))
		t.Logf("%d wait(s), Retry-After %s s first; reply %.0f ms after the first 503 (page time)",
			len(waits), waits[0].RetryAfterHeader, reply.T-waits[0].T)
	})

	// The gateway's own page at "/" while cold, which must turn into the
	// backend's page by itself: its meta refresh honours the estimate.
	t.Run("status_page", func(t *testing.T) {
		res := statusRes
		if len(res.Documents) < 2 {
			t.Fatalf("tab loaded %d documents, want the status page and then the backend's; result: %s", len(res.Documents), res.raw)
		}
		first := res.Documents[0]
		if first.Status != http.StatusOK || !strings.HasPrefix(first.ContentType, "text/html") {
			t.Errorf("first document: got %d %q, want 200 text/html", first.Status, first.ContentType)
		}
		if !strings.Contains(res.First.H1, "starting") {
			t.Errorf("first document's heading: got %q, want the gateway's starting page", res.First.H1)
		}
		refresh, err := strconv.Atoi(res.First.Refresh)
		if err != nil || refresh < 1 || refresh > 30 {
			t.Fatalf("status page's meta refresh: got %q, want whole seconds in 1..30", res.First.Refresh)
		}
		// The tab must have waited the advertised time before reloading: from the first
		// document's load to the second's navigation, on the page's own clock.
		if len(res.Clocks) < 2 {
			t.Fatalf("page clocks of %d documents, want 2 or more; result: %s", len(res.Clocks), res.raw)
		}
		if gap := res.Clocks[1].Origin - res.Clocks[0].Loaded; gap < float64(refresh)*1000-50 {
			t.Errorf("second document began %.0f ms after the first had loaded, want the meta refresh of %d s", gap, refresh)
		}
		if res.Last.H1 != browserBackendH1 || res.Last.Title != "hfgate example chatbot" {
			t.Errorf("last document: got title %q, heading %q; want the backend's page", res.Last.Title, res.Last.H1)
		}
		gw.awaitLog(ctx, 1, "an access line for the forwarded page", func(l logLine) bool {
			return accessLine(http.MethodGet, "/", http.StatusOK)(l) && l.attr("upstream") == "ready"
		})
		if n := gw.logs.count(accessLine(http.MethodGet, "/favicon.ico", http.StatusServiceUnavailable)); n != 0 {
			t.Errorf("the status page made the browser ask for /favicon.ico %d times while cold, want 0", n)
		}
		t.Logf("status page refreshed after %d s; %d documents until the backend's page", refresh, len(res.Documents))
	})
}

// browserWarm runs the scenarios that want a ready gateway, one after the
// other: the crash scenario comes last because it restarts the backend.
func browserWarm(t *testing.T, node string) {
	ctx := testContext(t, browserGroupTimeout)
	page := browserServeFrontend(t, browserPageHost)
	other := browserServeFrontend(t, browserOtherHost)
	port := freePort(t)
	api := "http://127.0.0.1:" + strconv.Itoa(port)
	// HOLD_TIMEOUT=0: the crash scenario tests the page's own retry path (the 503 countdown,
	// what a frontend still needs for a cold start or a long outage). With holding, the message
	// after the crash is just answered once the backend is back (TestE2ECrashRestart).
	gw := browserStartGateway(t, port, page, map[string]string{"EXAMPLE_ALLOW_CRASH": "1", "HOLD_TIMEOUT": "0"})
	shots := browserArtifacts(t)
	streamMsgs := []string{"hi there", "please stream a reply to me token by token"}
	crashMsgs := []string{strings.TrimSpace(strings.Repeat("on and on ", 15)), "are you back"}
	// Chromium launches while the backend loads; the first step waits
	// until the backend is ready.
	d := startBrowserDriver(ctx, t, node, api, shots, false,
		browserStep{Scenario: "stream", Page: page + "/", Messages: streamMsgs, Hold: true},
		browserStep{Scenario: "disallowed", Page: other + "/", Messages: []string{"let me in"}},
		browserStep{Scenario: "crash", Page: page + "/", Messages: crashMsgs})
	gw.awaitReady(ctx, 50*time.Millisecond)
	d.awaitHold(ctx, t, "stream", "start")
	d.release(t, "stream")

	// stream: the reply must appear in the page in several steps as the
	// backend sends its tokens, not in one burst at the end.
	t.Run("stream", func(t *testing.T) {
		first, second := streamMsgs[0], streamMsgs[1]
		res := d.result(ctx, t, "stream")
		done := res.entry("done")
		if done == nil {
			t.Fatalf("stream did not complete; result: %s", res.raw)
		}
		want := []browserShown{{"you", first}, {"bot", botReply(first)}, {"you", second}, {"bot", botReply(second)}}
		if !equalShown(res.Shown, want) {
			t.Errorf("page shows %v, want %v", res.Shown, want)
		}
		if tokens := len(res.entries("token")); done.Tokens != tokens || tokens < 5 {
			t.Errorf("got %d tokens (done says %d), want at least 5 and the same", tokens, done.Tokens)
		}
		// What the MutationObserver saw of the streamed reply (the second
		// bot paragraph): a growing prefix of the final text, several times.
		var steps []browserBot
		for _, b := range res.Observed.Bot {
			if b.N == 2 && b.Len > 0 {
				steps = append(steps, b)
			}
		}
		for i, b := range steps {
			if !strings.HasPrefix(botReply(second), b.Text) {
				t.Errorf("snapshot %d: %q is not a prefix of the reply", i, b.Text)
			}
			if i > 0 && (b.Len <= steps[i-1].Len || b.T < steps[i-1].T) {
				t.Errorf("snapshot %d: length %d at %.0f ms after %d at %.0f ms, want it growing", i, b.Len, b.T, steps[i-1].Len, steps[i-1].T)
			}
		}
		if len(steps) < 5 {
			t.Fatalf("the reply appeared in %d steps, want at least 5: it was buffered; snapshots: %+v", len(steps), steps)
		}
		// Unbuffered, the steps span about (tokens-1) * delay; buffered, none.
		spread := time.Duration((steps[len(steps)-1].T - steps[0].T) * float64(time.Millisecond))
		if minSpread := 3 * browserTokenDelay; spread < minSpread {
			t.Errorf("first and last step %v apart, want at least %v: the stream was buffered", spread, minSpread)
		}
		mid := filepath.Join(shots, "stream-midstream.png")
		if _, err := os.Stat(mid); err != nil {
			t.Errorf("no mid-stream screenshot: %v", err)
		} else if dst := os.Getenv("HFGATE_FRONTEND_PNG"); dst != "" {
			browserCopyFile(t, mid, dst)
		}
		gw.awaitLog(ctx, 1, "an access line for the stream", accessLine(http.MethodGet, "/chat/stream", http.StatusOK))
		t.Logf("the reply grew in %d steps over %v (token delay %v)", len(steps), spread.Round(time.Millisecond), browserTokenDelay)
	})

	// disallowed: a page on an origin the gateway does not list must be
	// refused by the browser, for a preflighted and for a simple request,
	// and the page must say so.
	t.Run("disallowed", func(t *testing.T) {
		res := d.result(ctx, t, "disallowed")
		if res.Ready != http.StatusOK {
			t.Errorf("driver's own GET /ready: got %d, want 200", res.Ready)
		}
		if len(res.Outcomes) != 2 {
			t.Fatalf("got %d outcomes, want 2 (POST /chat, GET /chat/stream); result: %s", len(res.Outcomes), res.raw)
		}
		for i, o := range res.Outcomes {
			if o.Kind != "error" || o.Name != "TypeError" || o.RequestID != "" {
				t.Errorf("request %d: got %s %s: %s (request id %q), want a TypeError without a request id", i, o.Kind, o.Name, o.Message, o.RequestID)
			}
		}
		var errorsShown int
		for _, s := range res.Shown {
			if s.Who == "error" && strings.Contains(s.Text, "no request id") {
				errorsShown++
			}
		}
		if errorsShown != 2 {
			t.Errorf("page shows %v, want two errors saying there is no request id", res.Shown)
		}
		var blocked []string
		for _, m := range res.Console {
			if strings.Contains(m, "blocked by CORS policy") && strings.Contains(m, "'"+other+"'") {
				blocked = append(blocked, m)
			}
		}
		if len(blocked) != 2 {
			t.Errorf("got %d CORS refusals on the console, want 2; console: %q", len(blocked), res.Console)
		}
		if leaked := append(res.entries("reply"), res.entries("token")...); len(leaked) != 0 {
			t.Errorf("page script read answers it must not see: %+v", leaked)
		}
		for _, m := range blocked {
			t.Log(m)
		}
	})

	// crash: the backend dies while it streams a reply. The page must say
	// the reply was cut off (naming the request), then, on the next
	// message, show the retry countdown and get the reply from the
	// restarted backend.
	t.Run("crash", func(t *testing.T) {
		second := crashMsgs[1]
		d.awaitHold(ctx, t, "crash", "streaming")
		r := gw.mustRequest(ctx, http.MethodPost, "/admin/crash", "")
		if r.status != http.StatusAccepted {
			t.Fatalf("POST /admin/crash: got %s, want 202", r)
		}
		gw.awaitLog(ctx, 1, "state crashed", func(l logLine) bool {
			return l.msg() == "upstream state" && l.attr("to") == "crashed"
		})
		d.release(t, "crash")
		res := d.result(ctx, t, "crash")

		streamed := res.entry("stream")
		cut := res.entry("error")
		if streamed == nil || cut == nil {
			t.Fatalf("want a stream and then an error; result: %s", res.raw)
		}
		if cut.RequestID == "" || cut.RequestID != streamed.RequestID {
			t.Errorf("error names request %q, want the stream's %q", cut.RequestID, streamed.RequestID)
		}
		wantErr := regexp.MustCompile(`^the reply (was cut off|broke off) after \d+ tokens.* \(request ` + regexp.QuoteMeta(streamed.RequestID) + `\)$`)
		var errorShown string
		for _, s := range res.Shown {
			if s.Who == "error" {
				errorShown = s.Text
			}
		}
		if !wantErr.MatchString(errorShown) {
			t.Errorf("page shows error %q, want it to match %s", errorShown, wantErr)
		}

		waits := res.entries("wait")
		if len(waits) == 0 {
			t.Fatalf("page saw no 503 after the crash; result: %s", res.raw)
		}
		for i, w := range waits {
			if w.Status != http.StatusServiceUnavailable || (w.State != "crashed" && w.State != "starting") {
				t.Errorf("wait %d: got %d %q, want 503 crashed or starting", i, w.Status, w.State)
			}
		}
		browserCheckCountdown(t, res, waits)
		if done := res.entry("done"); done == nil {
			t.Fatalf("the message after the crash got no complete reply; result: %s", res.raw)
		}
		if last := res.Shown[len(res.Shown)-1]; last != (browserShown{"bot", botReply(second)}) {
			t.Errorf("last thing shown: got %v, want the bot's reply %q", last, botReply(second))
		}
		gw.awaitLog(ctx, 2, "the restarted backend", msgIs("upstream started"))
		t.Logf("cut off: %s; then %d wait(s), first %q for %s s", errorShown, len(waits), waits[0].State, waits[0].RetryAfterHeader)
	})
}

// browserCheckCountdown checks that the page read each 503's Retry-After
// and X-Request-ID and that its status line counted every wait down, one
// second a step: "STATE, retrying in N s", N-1, ..., 1, then cleared.
func browserCheckCountdown(t *testing.T, res browserResult, waits []browserEntry) {
	t.Helper()
	var want []string
	for i, w := range waits {
		// A null header means the browser hid it: Expose-Headers is missing.
		n, err := strconv.Atoi(w.RetryAfterHeader)
		if err != nil || n < 1 || n > 30 {
			t.Errorf("wait %d: page read Retry-After %q, want whole seconds in 1..30", i, w.RetryAfterHeader)
			return
		}
		if w.RequestID == "" {
			t.Errorf("wait %d: page could not read X-Request-ID on the 503", i)
		}
		for left := n; left >= 1; left-- {
			want = append(want, fmt.Sprintf("%s, retrying in %d s", w.State, left))
		}
	}
	var got []string
	var times []float64
	for _, s := range res.Observed.Status {
		if s.Text != "" {
			got = append(got, s.Text)
			times = append(times, s.T)
		}
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("status line showed %q, want the countdown %q", got, want)
		return
	}
	for i := 1; i < len(times); i++ {
		if gap := times[i] - times[i-1]; gap < 900 {
			t.Errorf("status %q shown %.0f ms after %q, want about 1 s", got[i], gap, got[i-1])
		}
	}
	if n := len(res.Observed.Status); n == 0 || res.Observed.Status[n-1].Text != "" {
		t.Errorf("status line did not clear after the countdown: %+v", res.Observed.Status)
	}
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
	pw := repoPath(browserFrontendDir, "test", "node_modules", "playwright-core", "package.json")
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

// browserServeFrontend serves the chat page on host (a loopback address),
// port chosen by the system, and returns its origin.
func browserServeFrontend(t *testing.T, host string) string {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatalf("listen for the page on %s: %v", host, err)
	}
	srv := httptest.NewUnstartedServer(http.FileServer(http.Dir(repoPath(browserFrontendDir))))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL
}

// browserStartGateway starts hfgate on port, supervising the example
// backend, with origin as its only CORS origin and its log in JSON; env adds
// to that. The test's clean-up stops it with SIGTERM and expects a clean exit.
func browserStartGateway(t *testing.T, port int, origin string, env map[string]string) *hfgateProc {
	t.Helper()
	full := map[string]string{
		"PORT":               strconv.Itoa(port),
		"CORS_ALLOW_ORIGINS": origin,
		"LOG_FORMAT":         "json",
		"STARTUP_SECONDS":    strconv.FormatFloat(browserStartup.Seconds(), 'f', -1, 64),
		"TOKEN_DELAY":        strconv.FormatFloat(browserTokenDelay.Seconds(), 'f', -1, 64),
	}
	for k, v := range env {
		full[k] = v
	}
	g := startGateway(t, full)
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

// browserArtifacts returns the directory for the test's screenshots: kept
// under $HFGATE_ARTIFACTS or go test -artifacts, else a temporary one that
// is removed if the test passes and named in the log if it fails.
func browserArtifacts(t *testing.T) string {
	t.Helper()
	if f := flag.Lookup("test.artifacts"); f != nil && f.Value.String() == "true" {
		return t.ArtifactDir()
	}
	var dir string
	var err error
	if root := os.Getenv("HFGATE_ARTIFACTS"); root != "" {
		dir = filepath.Join(root, strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()))
		err = os.MkdirAll(dir, 0o755)
	} else {
		dir, err = os.MkdirTemp("", "hfgate-browser-")
		t.Cleanup(func() {
			if !t.Failed() {
				os.RemoveAll(dir)
			}
		})
	}
	if err != nil {
		t.Fatalf("screenshot directory: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("screenshots of the failed test: %s", filepath.Join(dir, "*.png"))
		}
	})
	return dir
}

func browserCopyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err == nil {
		err = os.WriteFile(dst, b, 0o644)
	}
	if err != nil {
		t.Errorf("copy %s to %s: %v", src, dst, err)
		return
	}
	t.Logf("mid-stream screenshot written to %s", dst)
}

// browserEntry is one entry of the page's window.chatLog.
type browserEntry struct {
	Kind             string  `json:"kind"`
	T                float64 `json:"t"`
	Attempt          int     `json:"attempt"`
	Status           int     `json:"status"`
	State            string  `json:"state"`
	RetryAfter       int     `json:"retryAfter"`
	RetryAfterHeader string  `json:"retryAfterHeader"`
	RequestID        string  `json:"requestId"`
	Text             string  `json:"text"`
	Tokens           int     `json:"tokens"`
	Name             string  `json:"name"`
	Message          string  `json:"message"`
}

// browserShown is one paragraph of the conversation on screen.
type browserShown struct {
	Who  string `json:"who"`
	Text string `json:"text"`
}

func equalShown(got, want []browserShown) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}

// browserBot is one change of the last bot reply seen by the page's
// MutationObserver: which reply (n, from 1), its length and text.
type browserBot struct {
	T    float64 `json:"t"`
	N    int     `json:"n"`
	Len  int     `json:"len"`
	Text string  `json:"text"`
}

type browserDoc struct {
	Title   string `json:"title"`
	H1      string `json:"h1"`
	Refresh string `json:"refresh"`
}

// browserResult is the driver's JSON line; one struct serves all scenarios.
type browserResult struct {
	Scenario string         `json:"scenario"`
	OK       bool           `json:"ok"`
	Error    string         `json:"error"`
	Browser  string         `json:"browser"`
	ChatLog  []browserEntry `json:"chatLog"`
	Observed struct {
		Status []struct {
			T    float64 `json:"t"`
			Text string  `json:"text"`
		} `json:"status"`
		Bot []browserBot `json:"bot"`
	} `json:"observed"`
	Shown  []browserShown `json:"shown"`
	Status string         `json:"status"`

	// statuspage
	First     browserDoc `json:"first"`
	Last      browserDoc `json:"last"`
	Documents []struct {
		T           float64 `json:"t"`
		Status      int     `json:"status"`
		ContentType string  `json:"contentType"`
	} `json:"documents"`
	// Clocks are each document's own times (epoch ms): navigation start and end of load.
	Clocks []struct {
		Origin float64 `json:"origin"`
		Loaded float64 `json:"loaded"`
	} `json:"clocks"`

	// disallowed
	Ready    int            `json:"ready"`
	Outcomes []browserEntry `json:"outcomes"`

	// eventsource, eventsource_crash: per EventSource the page opened (see
	// browser.mjs's listen), every event it fired.
	EventSources map[string][]esRecord `json:"eventSources"`

	Console        []string `json:"console"`
	PageErrors     []string `json:"pageErrors"`
	FailedRequests []string `json:"failedRequests"`
	Screenshots    []string `json:"screenshots"`
	// Timings are the driver's own, in ms: Chromium's launch (shared by
	// the plan) and the scenario's run.
	Timings struct {
		Launch   int `json:"launch"`
		Scenario int `json:"scenario"`
	} `json:"timings"`

	raw string
}

// entries returns the chatLog entries of one kind, in order.
func (r browserResult) entries(kind string) []browserEntry {
	var out []browserEntry
	for _, e := range r.ChatLog {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

// entry returns the first chatLog entry of one kind, or nil.
func (r browserResult) entry(kind string) *browserEntry {
	for i := range r.ChatLog {
		if r.ChatLog[i].Kind == kind {
			return &r.ChatLog[i]
		}
	}
	return nil
}

// browserStep is one entry of the driver's plan.
type browserStep struct {
	Scenario string   `json:"scenario"`
	Page     string   `json:"page,omitempty"`
	Messages []string `json:"messages,omitempty"`
	// Hold makes the scenario hold at "start" before it begins.
	Hold bool `json:"hold,omitempty"`
}

// browserDriver is one running browser.mjs: one Chromium running a plan of
// scenarios, each in its own tab.
type browserDriver struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	stderr  bytes.Buffer                  // written by exec until Wait returns
	holds   map[string]chan string        // per scenario, the names of the holds it reached
	results map[string]chan browserResult // per scenario, its result
	done    chan struct{}                 // closed once the driver has exited
	other   []string                      // lines that were neither holds nor results
	waitErr error
}

// startBrowserDriver starts browser.mjs against the gateway at api with the
// plan given by steps, in order or, with together, all at once; screenshots
// go to shots. Chromium gets a fresh profile in a temporary directory.
func startBrowserDriver(ctx context.Context, t *testing.T, node, api, shots string, together bool, steps ...browserStep) *browserDriver {
	t.Helper()
	plan, err := json.Marshal(steps)
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	args := []string{
		repoPath(browserFrontendDir, "test", "browser.mjs"),
		"--api", api,
		"--plan", string(plan),
		"--profile", t.TempDir(),
		"--chromium", browserChromium,
		"--shots", shots,
		// Each page action's bound; far below ctx's, so that the driver
		// normally reports a timeout itself, with a screenshot.
		"--timeout", strconv.FormatInt(browserActionTimeout.Milliseconds(), 10),
	}
	if together {
		args = append(args, "--together")
	}
	d := &browserDriver{
		holds:   map[string]chan string{},
		results: map[string]chan browserResult{},
		done:    make(chan struct{}),
	}
	for _, s := range steps {
		d.holds[s.Scenario] = make(chan string, 4)
		d.results[s.Scenario] = make(chan browserResult, 1)
	}
	d.cmd = exec.CommandContext(ctx, node, args...)
	// SIGTERM lets Playwright close Chromium, which runs in its own process
	// group; SIGKILL follows if it does not exit.
	d.cmd.Cancel = func() error { return d.cmd.Process.Signal(syscall.SIGTERM) }
	d.cmd.WaitDelay = 10 * time.Second
	d.cmd.Stderr = &d.stderr
	if d.stdin, err = d.cmd.StdinPipe(); err != nil {
		t.Fatalf("stdin pipe: %v", err)
	}
	stdout, err := d.cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("stdout pipe: %v", err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start driver: %v", err)
	}
	go d.read(stdout)
	t.Cleanup(func() {
		d.stdin.Close() // releases any hold
		<-d.done
	})
	return d
}

// read sorts the driver's output lines into holds and results until it
// ends, then waits for the process.
func (d *browserDriver) read(stdout io.Reader) {
	defer close(d.done)
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for sc.Scan() {
		var line struct {
			Event    string  `json:"event"`
			Name     string  `json:"name"`
			Scenario *string `json:"scenario"`
		}
		if json.Unmarshal(sc.Bytes(), &line) != nil || line.Scenario == nil || d.holds[*line.Scenario] == nil {
			d.other = append(d.other, sc.Text())
			continue
		}
		if line.Event == "hold" {
			d.holds[*line.Scenario] <- line.Name
			continue
		}
		var res browserResult
		if err := json.Unmarshal(sc.Bytes(), &res); err != nil {
			d.other = append(d.other, sc.Text())
			continue
		}
		res.raw = sc.Text()
		select {
		case d.results[*line.Scenario] <- res:
		default:
			d.other = append(d.other, sc.Text()) // a second result: reported as noise
		}
	}
	d.waitErr = d.cmd.Wait()
}

// describe says how the driver ended, for failure messages; only after done.
func (d *browserDriver) describe() string {
	return fmt.Sprintf("exit: %v\nother output: %q\nstderr:\n%s", d.waitErr, d.other, d.stderr.String())
}

// awaitHold waits until scenario holds at name.
func (d *browserDriver) awaitHold(ctx context.Context, t *testing.T, scenario, name string) {
	t.Helper()
	select {
	case got := <-d.holds[scenario]:
		if got != name {
			t.Fatalf("%s held at %q, want %q", scenario, got, name)
		}
	case res := <-d.results[scenario]:
		t.Fatalf("%s ended before holding at %q: %s", scenario, name, res.raw)
	case <-d.done:
		t.Fatalf("driver ended before %s held at %q (%s)", scenario, name, d.describe())
	case <-ctx.Done():
		t.Fatalf("await %s's hold %q: %v", scenario, name, ctx.Err())
	}
}

// release lets a holding scenario go on.
func (d *browserDriver) release(t *testing.T, scenario string) {
	t.Helper()
	if _, err := io.WriteString(d.stdin, scenario+"\n"); err != nil {
		t.Fatalf("release %s: %v", scenario, err)
	}
}

// result waits for scenario's result. A scenario that reports none, or an
// error, fails the test.
func (d *browserDriver) result(ctx context.Context, t *testing.T, scenario string) browserResult {
	t.Helper()
	var res browserResult
	select {
	case res = <-d.results[scenario]:
	case <-d.done:
		select {
		case res = <-d.results[scenario]:
		default:
			t.Fatalf("driver ended without a %s result (%s)", scenario, d.describe())
		}
	case <-ctx.Done():
		t.Fatalf("await the %s result: %v", scenario, ctx.Err())
	}
	if res.Error != "" {
		var sources string
		if len(res.EventSources) > 0 {
			sources = fmt.Sprintf("\nevent sources: %+v", res.EventSources)
		}
		t.Fatalf("%s: %s\nscreenshots: %q%s", scenario, res.Error, res.Screenshots, sources)
	}
	if len(res.PageErrors) > 0 {
		t.Errorf("%s: page script errors: %q", scenario, res.PageErrors)
	}
	t.Logf("%s: Chromium %s; launch %d ms, scenario %d ms", scenario, res.Browser, res.Timings.Launch, res.Timings.Scenario)
	return res
}

// TestFrontendSnippetInREADME keeps the README's frontend snippet a verbatim
// copy of the marked block in the example page's chat.js, the code the
// browser tests run.
func TestFrontendSnippetInREADME(t *testing.T) {
	js, err := os.ReadFile(repoPath(browserFrontendDir, "chat.js"))
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(repoPath("README.md"))
	if err != nil {
		t.Fatal(err)
	}
	const (
		begin   = "// ---8<--- README snippet"
		end     = "// ---8<--- end of README snippet"
		section = "## A frontend that waits out a cold start"
	)
	var block []string
	inside := false
	for line := range strings.Lines(string(js)) {
		switch {
		case strings.HasPrefix(line, begin):
			inside = true
		case strings.HasPrefix(line, end):
			inside = false
		case inside:
			block = append(block, line)
		}
	}
	if len(block) == 0 || inside {
		t.Fatalf("chat.js: no block between %q and %q lines", begin, end)
	}
	want := strings.Join(block, "")

	_, after, ok := strings.Cut(string(readme), "\n"+section+"\n")
	if !ok {
		t.Fatalf("README.md: no %q section", section)
	}
	_, after, ok = strings.Cut(after, "\n```js\n")
	if !ok {
		t.Fatalf("README.md: no ```js block in %q", section)
	}
	got, _, ok := strings.Cut(after, "```\n")
	if !ok {
		t.Fatalf("README.md: the ```js block in %q does not end", section)
	}
	if got == want {
		return
	}
	gotLines, wantLines := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := range max(len(gotLines), len(wantLines)) {
		var g, w string
		if i < len(gotLines) {
			g = gotLines[i]
		}
		if i < len(wantLines) {
			w = wantLines[i]
		}
		if g != w {
			t.Fatalf("README.md's snippet differs from chat.js's marked block at snippet line %d:\n got: %q\nwant: %q\n"+
				"copy the lines between the ---8<--- markers of %s/chat.js into README.md", i+1, g, w, browserFrontendDir)
		}
	}
}
