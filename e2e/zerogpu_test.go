package e2e

// ZeroGPU (python/hfgate/zerogpu.py): a Space folder run the way a ZeroGPU Space runs it, with a
// stand-in of ZeroGPU's device API (an httptest server) and of the spaces and gradio packages
// (python/tests/zerogpu_standins on PYTHONPATH). What is tested is the order (the start-up
// report reaches the device API before anything listens on the Space's port) and that the
// backend under hfgate sees ZeroGPU's variables and gets its GPU calls scheduled. No live
// ZeroGPU Space is involved.
//
// Run: go test -count=1 -run TestZeroGPU ./e2e/

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// deviceCall is one request to the stand-in device API.
type deviceCall struct {
	path      string
	query     url.Values
	portBound bool // whether the Space's port accepted a connection while the request was served
}

// deviceAPI is a stand-in of ZeroGPU's device API. While it serves a request it dials the
// Space's port, to record whether anything listens there yet; the launcher waits for the
// answer, so the dial sees the port as it was when the report arrived.
type deviceAPI struct {
	url    string
	port   int
	status int // the answer to /startup-report

	mu    sync.Mutex
	calls []deviceCall
}

func newDeviceAPI(t *testing.T, port, status int) *deviceAPI {
	t.Helper()
	api := &deviceAPI{port: port, status: status}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", api.port), time.Second)
		if err == nil {
			c.Close()
		}
		api.mu.Lock()
		api.calls = append(api.calls, deviceCall{path: r.URL.Path, query: r.URL.Query(), portBound: err == nil})
		api.mu.Unlock()
		if r.Method != http.MethodPost {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		if r.URL.Path == "/startup-report" {
			w.WriteHeader(api.status)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	api.url = srv.URL
	return api
}

func (api *deviceAPI) snapshot() []deviceCall {
	api.mu.Lock()
	defer api.mu.Unlock()
	return slices.Clone(api.calls)
}

// zerogpuDir is a vendored Space folder whose backend is e2e/testdata/zerogpu and whose app.py
// is the two lines of hfgate.space with call; binary as in launcherDir.
func zerogpuDir(t *testing.T, call string, binary []byte) string {
	t.Helper()
	dir := launcherDir(t, binary)
	if err := os.WriteFile(filepath.Join(dir, "app.py"), []byte("import hfgate.space\n\n"+call+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	copyTree(t, repoPath("e2e", "testdata", "zerogpu"), filepath.Join(dir, "backend"))
	return dir
}

// zerogpuEnv is what a ZeroGPU Space sets, with the stand-ins on PYTHONPATH; imports names the
// file to which each `import spaces` appends its process ID.
func zerogpuEnv(api *deviceAPI, imports string, extra ...string) []string {
	return append([]string{
		"PATH=/usr/bin:/bin",
		"GRADIO_SERVER_PORT=" + strconv.Itoa(api.port),
		"GRADIO_SERVER_NAME=127.0.0.1",
		"SYSTEM=spaces",
		"SPACE_ID=alice/gpu-space",
		"SPACES_ZERO_GPU=true",
		"SPACES_ZERO_DEVICE_API_URL=" + api.url,
		"PYTHONPATH=" + repoPath("python", "tests", "zerogpu_standins"),
		"HFGATE_TEST_SPACES_IMPORTS=" + imports,
		"PYTHONDONTWRITEBYTECODE=1",
	}, extra...)
}

// importPIDs reads the process IDs that imported the stand-in spaces package.
func importPIDs(t *testing.T, path string) []int {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("%s: %q is not a pid", path, f)
		}
		pids = append(pids, pid)
	}
	return pids
}

// TestZeroGPUSpace runs the Space as ZeroGPU runs it: python app.py with SPACES_ZERO_GPU and
// the device API's URL. The launcher reports once, before the port is bound, then becomes
// hfgate; the backend under uvicorn sees the variables, and a call of its @spaces.GPU function
// asks the device API for a GPU from the backend's own process.
func TestZeroGPUSpace(t *testing.T) {
	requireBackend(t)
	binary, err := os.ReadFile(hfgateBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, call, function, module string
	}{
		{"the app's module", `hfgate.space.run("app:app")`, "generate", "backend/app.py"},
		{"gpu names the module", `hfgate.space.run("server:app", gpu="models")`, "generate", "backend/models.py"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t, 60*time.Second)
			api := newDeviceAPI(t, freePort(t), http.StatusOK)
			dir := zerogpuDir(t, tt.call, binary)
			imports := filepath.Join(t.TempDir(), "imports")
			cmd := exec.Command(e2ePython, "app.py")
			cmd.Dir = dir
			cmd.Env = zerogpuEnv(api, imports, "HOME="+t.TempDir())
			g := startProc(t, cmd, api.port)
			g.awaitPort(ctx)

			calls := api.snapshot()
			if len(calls) != 1 || calls[0].path != "/startup-report" {
				t.Fatalf("device API calls once the port was bound: got %+v, want one /startup-report", calls)
			}
			if calls[0].portBound {
				t.Errorf("the start-up report arrived while port %d was already bound; it must come first", api.port)
			}
			want := "app.py: ZeroGPU: start-up report sent in "
			l := g.awaitLog(ctx, 1, "the launcher's report line", func(l logLine) bool { return strings.HasPrefix(l.raw, want) })
			if !strings.HasSuffix(l.raw, ", before hfgate binds the port, for "+tt.module+" ("+tt.function+")") {
				t.Errorf("report line: got %q, want it to name %s (%s)", l.raw, tt.module, tt.function)
			}
			// The launcher became hfgate (os.execve keeps the PID): the process that imported
			// spaces to report is the gateway's.
			if pids := importPIDs(t, imports); !slices.Contains(pids, g.cmd.Process.Pid) {
				t.Errorf("processes that imported spaces: %v, want the launcher's, %d", pids, g.cmd.Process.Pid)
			}

			g.awaitReady(ctx, 50*time.Millisecond)
			r := g.mustRequest(ctx, http.MethodGet, "/generate?prompt=hello", "")
			var got struct {
				Text      string `json:"text"`
				PID       int    `json:"pid"`
				ZeroGPU   string `json:"SPACES_ZERO_GPU"`
				DeviceAPI string `json:"SPACES_ZERO_DEVICE_API_URL"`
			}
			if err := json.Unmarshal(r.body, &got); err != nil || r.status != http.StatusOK {
				t.Fatalf("GET /generate: %s (%v)", r, err)
			}
			if got.Text != "HELLO" || got.ZeroGPU != "true" || got.DeviceAPI != api.url {
				t.Errorf("the backend answered %+v, want text HELLO, SPACES_ZERO_GPU=true and the device API %s", got, api.url)
			}
			if got.PID == g.cmd.Process.Pid || got.PID == 0 {
				t.Errorf("the backend's pid is %d, want uvicorn's own (hfgate is %d)", got.PID, g.cmd.Process.Pid)
			}
			calls = api.snapshot()
			if len(calls) != 2 || calls[1].path != "/schedule" || calls[1].query.Get("pid") != strconv.Itoa(got.PID) ||
				calls[1].query.Get("durationSeconds") != "10" || !calls[1].portBound {
				t.Errorf("device API calls after GET /generate: got %+v, want /startup-report then /schedule from pid %d for 10 s", calls, got.PID)
			}
			if pids := importPIDs(t, imports); !slices.Contains(pids, got.PID) {
				t.Errorf("processes that imported spaces: %v, want the backend's, %d, too", pids, got.PID)
			}
			if code := g.stop(ctx); code != 0 {
				t.Errorf("exit code after SIGTERM: got %d, want 0", code)
			}
		})
	}
}

// TestZeroGPULauncher checks the launcher's other outcomes, with /usr/bin/env standing in for
// hfgate so that the environment hfgate would get is printed: nothing declared on ZeroGPU (one
// line, then hfgate starts all the same), a refused report (one line, exit 1, hfgate never
// started), and other hardware (no report, spaces not imported).
func TestZeroGPULauncher(t *testing.T) {
	t.Parallel()
	envBinary, err := os.ReadFile("/usr/bin/env")
	if err != nil {
		skipOrFail(t, "zerogpu: no /usr/bin/env to stand in for hfgate: "+err.Error())
	}
	tests := []struct {
		name     string
		call     string
		status   int
		extra    []string
		code     int
		stderr   string // the one line the launcher writes ("": none)
		reports  int
		imported bool
	}{
		{
			name: "nothing declared", call: `hfgate.space.run("plain:app")`, status: http.StatusOK, code: 0,
			stderr: `app.py: this Space runs on ZeroGPU hardware, which stops a Space that declares no @spaces.GPU ` +
				`function at start-up ("No @spaces.GPU function detected during startup"), and backend/plain.py declares none`,
		},
		{
			name: "report refused", call: `hfgate.space.run("app:app")`, status: http.StatusInternalServerError, code: 1,
			stderr:  "app.py: the ZeroGPU start-up report failed (RuntimeError: Error while initializing ZeroGPU: Unknown)",
			reports: 1, imported: true,
		},
		{
			name: "declared module missing", call: `hfgate.space.run("app:app", gpu="nope")`, status: http.StatusOK, code: 1,
			stderr: "app.py: gpu names the module nope, which is not in ",
		},
		{
			name: "other hardware", call: `hfgate.space.run("app:app")`, status: http.StatusOK, code: 0,
			extra: []string{"SPACES_ZERO_GPU=false"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			api := newDeviceAPI(t, freePort(t), tt.status)
			dir := zerogpuDir(t, tt.call, envBinary)
			imports := filepath.Join(t.TempDir(), "imports")
			stdout, stderr, code := runLauncher(t, dir, 0, zerogpuEnv(api, imports, tt.extra...)...)
			if code != tt.code {
				t.Errorf("exit code: got %d, want %d (stderr %q)", code, tt.code, stderr)
			}
			if tt.stderr == "" && stderr != "" {
				t.Errorf("stderr: got %q, want nothing", stderr)
			}
			if tt.stderr != "" && (strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, tt.stderr)) {
				t.Errorf("stderr: got %q, want one line starting %q", stderr, tt.stderr)
			}
			// hfgate (here env) started exactly when the exit code is 0, with ZeroGPU's variables.
			if started := strings.Contains(stdout, "SPACES_ZERO_DEVICE_API_URL="+api.url+"\n"); started != (tt.code == 0) {
				t.Errorf("hfgate started: %v, want %v (stdout %q)", started, tt.code == 0, stdout)
			}
			if got := len(api.snapshot()); got != tt.reports {
				t.Errorf("start-up reports: got %d, want %d", got, tt.reports)
			}
			if got := len(importPIDs(t, imports)) > 0; got != tt.imported {
				t.Errorf("the launcher imported spaces: %v, want %v", got, tt.imported)
			}
		})
	}
}
