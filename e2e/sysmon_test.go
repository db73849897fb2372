package e2e

// hfgate starts itself again with GODEBUG=schedtrace set so that the runtime's sysmon thread
// does not go through a deep-sleep/wake cycle for every idle moment (gateway/sysmon.go,
// golang/go#18236). That relies on how the runtime is written, not on its documentation, so
// this test measures it: at a Space's moderate request rate the gateway's voluntary context
// switches per request must fall well below those of the same binary with GODEBUG=schedtrace=0.
// A Go release that changes sysmon fails here, and the setting can then go.

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestE2ESysmonSetting(t *testing.T) {
	ctx := testContext(t, 60*time.Second)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	defer up.Close()

	perRequest := func(godebug string) (float64, string) {
		port := freePort(t)
		cmd := exec.Command(hfgateBinary(t))
		cmd.Env = []string{"PORT=" + strconv.Itoa(port), "HOST=127.0.0.1", "UPSTREAM_URL=" + up.URL, "LOG_LEVEL=warn"}
		if godebug != "" {
			cmd.Env = append(cmd.Env, "GODEBUG="+godebug)
		}
		g := startProc(t, cmd, port)
		g.awaitReady(ctx, 20*time.Millisecond)
		environ, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", g.cmd.Process.Pid))
		client := &http.Client{Transport: &http.Transport{Proxy: nil}}
		// 1,500 requests at 500 a second: the gateway idles between them, as on a Space.
		const n, every = 1500, 2 * time.Millisecond
		before := voluntarySwitches(t, g.cmd.Process.Pid)
		tick := time.NewTicker(every)
		for i := 0; i < n; i++ {
			<-tick.C
			res, err := client.Get(g.base + "/x")
			if err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
		tick.Stop()
		after := voluntarySwitches(t, g.cmd.Process.Pid)
		if code := g.stop(ctx); code != 0 {
			t.Errorf("exit code %d, want 0", code)
		}
		return float64(after-before) / n, string(environ)
	}

	with, environ := perRequest("")
	if !strings.Contains(environ, "GODEBUG=schedtrace=2147483647") {
		t.Fatalf("the gateway runs without the schedtrace setting; its environment: %q", environ)
	}
	without, environ := perRequest("schedtrace=0")
	if strings.Contains(environ, "2147483647") {
		t.Fatalf("GODEBUG=schedtrace=0 was overridden: %q", environ)
	}
	t.Logf("voluntary context switches per request at 500 req/s: %.2f with the setting, %.2f without", with, without)
	if with > 0.6*without {
		t.Errorf("with the schedtrace setting %.2f voluntary context switches per request, without %.2f: want at most 0.6x; the runtime's sysmon changed (golang/go#18236), see gateway/sysmon.go", with, without)
	}
}

// voluntarySwitches sums voluntary_ctxt_switches over the threads of pid.
func voluntarySwitches(t *testing.T, pid int) int {
	t.Helper()
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	if err != nil || len(tasks) == 0 {
		t.Fatalf("threads of %d: %v", pid, err)
	}
	sum := 0
	for _, task := range tasks {
		if n := statusField(task, "voluntary_ctxt_switches"); n > 0 { // -1: a thread that just ended
			sum += n
		}
	}
	return sum
}
