package e2e

// A Space's host has been up for weeks. On such a host Go's runtime prints its own lines to
// stderr if anything turns a runtime trace on (GODEBUG=schedtrace, which hfgate once set itself:
// `SCHED 0ms: ...` at start, outside the log pipeline), and LOG_FORMAT=json promises that every
// line is JSON. The test runs the real binary in a time namespace whose monotonic clock (the one
// the runtime counts from) reads 35 days, past the 24.8 days of the longest trace period.

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// longUpHostArgs is the command prefix that runs a program with its monotonic clock 35 days
// ahead, or skips the test with the reason where time namespaces are not available.
func longUpHostArgs(t *testing.T) []string {
	t.Helper()
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("long-up host: no unshare (util-linux) to make a time namespace: ", err)
	}
	args := []string{unshare, "--time", "--monotonic=" + strconv.Itoa(35*24*3600)}
	if out, err := exec.Command(args[0], append(args[1:], "true")...).CombinedOutput(); err != nil {
		// Time namespaces need Linux 5.6 and CAP_SYS_ADMIN (root, or a user namespace).
		t.Skipf("long-up host: a time namespace is not permitted here (%s %s true: %v: %s)",
			unshare, strings.Join(args[1:], " "), err, bytes.TrimSpace(out))
	}
	return args
}

func TestE2ELogFormatOnLongUpHost(t *testing.T) {
	bin := hfgateBinary(t)
	prefix := longUpHostArgs(t)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	defer up.Close()

	// run starts hfgate on the 35-day clock with LOG_FORMAT=json (and extra), sends one request
	// once it is ready, stops it, and returns every line it wrote to stdout and stderr.
	run := func(t *testing.T, extra ...string) ([]logLine, []byte) {
		t.Helper()
		ctx := testContext(t, 30*time.Second)
		port := freePort(t)
		cmd := exec.Command(prefix[0], append(prefix[1:], bin)...)
		cmd.Env = append([]string{"PORT=" + strconv.Itoa(port), "HOST=127.0.0.1", "UPSTREAM_URL=" + up.URL, "LOG_FORMAT=json"}, extra...)
		g := startProc(t, cmd, port)
		g.awaitLog(ctx, 1, "upstream state to=ready", func(l logLine) bool {
			return l.msg() == "upstream state" && l.attr("to") == "ready"
		})
		if r := g.mustRequest(ctx, http.MethodGet, "/x", ""); r.status != http.StatusOK {
			t.Fatalf("GET /x: %s, want 200", r)
		}
		g.awaitLog(ctx, 1, "access line of GET /x", accessLine(http.MethodGet, "/x", http.StatusOK))
		if code := g.stop(ctx); code != 0 {
			t.Fatalf("exit code %d, want 0", code)
		}
		return g.logs.snapshot()
	}

	t.Run("every line is JSON", func(t *testing.T) {
		lines, _ := run(t)
		runtimeLines := 0
		for i, l := range lines {
			var rec map[string]any
			if err := json.Unmarshal([]byte(l.raw), &rec); err != nil {
				t.Errorf("line %d is not JSON (%v): %q", i+1, err, l.raw)
				continue
			}
			if _, ok := rec["msg"]; !ok {
				t.Errorf("line %d has no msg: %q", i+1, l.raw)
			}
			if l.msg() == "runtime" {
				runtimeLines++
				if got, src := l.attr("gomaxprocs"), l.attr("source"); got != "1" || src != "default" {
					t.Errorf("runtime line: gomaxprocs=%s source=%s, want 1 and default: %q", got, src, l.raw)
				}
			}
		}
		if runtimeLines != 1 {
			t.Errorf("%d runtime lines, want 1 (gomaxprocs and its source, once at start)", runtimeLines)
		}
	})

	// The control: with a trace the runtime does print on this clock, so the check above would
	// catch a setting that prints; if it did not, the namespace would not reach the runtime and
	// the check would prove nothing.
	t.Run("the namespace reaches the runtime's clock", func(t *testing.T) {
		lines, raw := run(t, "GODEBUG=schedtrace=2147483647")
		for _, l := range lines {
			if strings.HasPrefix(l.raw, "SCHED ") {
				return
			}
		}
		t.Fatalf("no SCHED line from GODEBUG=schedtrace=2147483647 on a 35-day clock: the time namespace did not reach the runtime, and the JSON check proves nothing; output:\n%s", raw)
	})
}
