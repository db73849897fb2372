package e2e

// Holding and replay with the real example under real uvicorn (docs/states.md): a poison
// request is not sent again, a POST the dead backend refused is answered by the restarted one
// with its own body, and a request held past HOLD_TIMEOUT gets the 503 with CORS.

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// TestE2EPoisonRequest: a request during which the backend dies may have reached it, so it is
// answered 503 + Retry-After and never sent again: the backend is started exactly twice (the
// first start and one restart), not a third time by a replay.
func TestE2EPoisonRequest(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 45*time.Second)
	g := startGateway(t, map[string]string{"EXAMPLE_ALLOW_CRASH": "1", "STARTUP_SECONDS": "0.2"})
	g.awaitReady(ctx, 20*time.Millisecond)

	r := g.mustRequest(ctx, http.MethodGet, "/admin/poison", "")
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
		t.Fatalf("GET /admin/poison: got %s (Retry-After %q), want 503 with Retry-After", r, r.header.Get("Retry-After"))
	}
	g.awaitLog(ctx, 2, "the restart", msgIs("upstream started"))
	g.awaitReady(ctx, 20*time.Millisecond)
	checkChat(t, g.mustRequest(ctx, http.MethodPost, "/chat", `{"message": "after"}`), botReply("after"))
	// The poison request was answered before the restart, so nothing of it is pending: two
	// starts now are two starts for good.
	if n := g.logs.count(msgIs("upstream started")); n != 2 {
		t.Errorf("backend started %d times, want 2 (no replay of the poison request)", n)
	}
	if n := g.logs.count(relayedContains("poison request")); n != 1 {
		t.Errorf("the backend saw the poison request %d times, want 1", n)
	}
}

// externalUvicorn is the example under uvicorn started by the test itself (hfgate supervises
// nothing), so the test decides when the backend is down and when it is back.
type externalUvicorn struct {
	t    *testing.T
	port int
	cmd  *exec.Cmd
}

func (u *externalUvicorn) start() {
	u.t.Helper()
	cmd := exec.Command(e2ePython, "-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--port", fmt.Sprint(u.port))
	cmd.Dir = repoPath("examples", "chatbot")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "STARTUP_SECONDS=0.2", "PYTHONDONTWRITEBYTECODE=1"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		u.t.Fatalf("start uvicorn: %v", err)
	}
	u.cmd = cmd
}

// kill ends uvicorn with SIGKILL, as the out-of-memory killer would, and reaps it.
func (u *externalUvicorn) kill() {
	if u.cmd == nil {
		return
	}
	_ = syscall.Kill(-u.cmd.Process.Pid, syscall.SIGKILL)
	_ = u.cmd.Wait()
	u.cmd = nil
}

// TestE2EReplayAndHoldTimeout: with an unsupervised backend that the test kills and restarts.
func TestE2EReplayAndHoldTimeout(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	up := &externalUvicorn{t: t, port: freePort(t)}
	t.Cleanup(up.kill)
	up.start()
	const origin = "https://app.example"
	// Two gateways in front of the one backend: the first holds long enough for uvicorn to
	// restart on a busy machine (seconds), the second has the short deadline the second case
	// waits out.
	held := startGateway(t, map[string]string{
		"UPSTREAM_URL": fmt.Sprintf("http://127.0.0.1:%d", up.port),
		"UPSTREAM_CMD": "",
		"HOLD_TIMEOUT": "60s",
	})
	g := startGateway(t, map[string]string{
		"UPSTREAM_URL":       fmt.Sprintf("http://127.0.0.1:%d", up.port),
		"UPSTREAM_CMD":       "",
		"HOLD_TIMEOUT":       "3s",
		"CORS_ALLOW_ORIGINS": origin,
	})
	held.awaitReady(ctx, 20*time.Millisecond)
	g.awaitReady(ctx, 20*time.Millisecond)

	t.Run("refused POST is answered once the backend is back", func(t *testing.T) {
		up.kill() // the gateway still counts it ready: its next health check is seconds away
		done := make(chan reply, 1)
		go func() {
			done <- held.mustRequest(ctx, http.MethodPost, "/chat", `{"message": "sent while down"}`)
		}()
		held.awaitLog(ctx, 1, "the refused request held", msgIs("upstream unreachable; holding the request to send it again"))
		up.start()
		checkChat(t, <-done, botReply("sent while down"))
		held.awaitLog(ctx, 1, "replayed access line", func(l logLine) bool {
			return l.msg() == "request" && l.attr("path") == "/chat" && l.attr("replayed") == "true" && l.attr("status") == "200"
		})
		g.awaitReady(ctx, 20*time.Millisecond)
	})

	t.Run("held past HOLD_TIMEOUT gets 503 with CORS", func(t *testing.T) {
		up.kill()
		start := time.Now()
		r := g.mustRequest(ctx, http.MethodPost, "/chat", `{"message": "nobody home"}`, "Origin", origin)
		took := time.Since(start)
		if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" ||
			r.header.Get("Access-Control-Allow-Origin") != origin {
			t.Errorf("got %s (Retry-After %q, ACAO %q), want 503 with Retry-After and CORS",
				r, r.header.Get("Retry-After"), r.header.Get("Access-Control-Allow-Origin"))
		}
		if took < 3*time.Second {
			t.Errorf("answered after %v, before HOLD_TIMEOUT (3s)", took)
		}
		if !bytes.Contains(r.body, []byte(`"retry_after"`)) {
			t.Errorf("body %s, want the not-ready JSON", r.body)
		}
	})
}
