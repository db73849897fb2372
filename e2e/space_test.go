package e2e

// The Space kit (hfgate.space in python/, behind `make space`): a folder written from the example
// backend is run the way a Python-runtime Hugging Face Space runs it (python app.py, with the
// variables the Space sets), and the launcher's checks and environment are tested on their own.
// wheel_test.go runs the wheel-based folder; this file the vendored one (VENDOR_BINARY=1).
//
// Run: go test -count=1 -run TestSpace ./e2e/

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hfgate/hfgate/config"
	"github.com/prometheus/procfs"
)

// assembleSpace runs `make space` for the example backend into a temporary folder, with the
// extra make variables given, and returns the folder.
func assembleSpace(t *testing.T, vars ...string) string {
	t.Helper()
	dir, _ := assembleSpaceOutput(t, vars...)
	return dir
}

// assembleSpaceOutput is assembleSpace that also returns what make space printed.
func assembleSpaceOutput(t *testing.T, vars ...string) (dir, output string) {
	t.Helper()
	if testing.Short() {
		t.Skip("space: skipped with -short")
	}
	if _, err := exec.LookPath("make"); err != nil {
		skipOrFail(t, "space: make is not installed")
	}
	out := filepath.Join(t.TempDir(), "chat-space")
	args := append([]string{"--no-print-directory", "space", "BACKEND=examples/chatbot", "APP=app:app",
		"OUT=" + out, "TITLE=Chat test"}, vars...)
	cmd := exec.Command("make", args...)
	cmd.Dir = moduleRoot
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make space: %v\n%s", err, b)
	}
	return out, string(b)
}

// warningLines returns the lines of output that are hfgate.space's warnings.
func warningLines(output string) []string {
	var w []string
	for _, l := range strings.Split(output, "\n") {
		if strings.HasPrefix(l, "hfgate.space: warning: ") {
			w = append(w, l)
		}
	}
	return w
}

// TestSpaceDevelopmentVersion: between releases make space asks for the checkout's own
// version, a development build with a local part no package index serves. The folder is
// written (it can be tried locally), and the output says so once, with what to do; a release
// version gets no warning.
func TestSpaceDevelopmentVersion(t *testing.T) {
	t.Parallel()
	requirePython(t)
	tests := []struct {
		name, version, wantReq string
		warned                 bool
	}{
		{name: "between releases", version: "v1.2.3-4-gabcdef0", wantReq: "hfgate==1.2.4.dev4+gabcdef0", warned: true},
		{name: "uncommitted changes", version: "v0.0.0-181-ge61ca42-dirty", wantReq: "hfgate==0.0.1.dev181+ge61ca42.dirty", warned: true},
		{name: "a release", version: "v1.2.3", wantReq: "hfgate==1.2.3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir, output := assembleSpaceOutput(t, "VERSION="+tt.version)
			if reqs := strings.Fields(mustReadFile(t, filepath.Join(dir, "requirements.txt"))); !slices.Contains(reqs, tt.wantReq) {
				t.Errorf("requirements.txt: got %q, want a line %s", reqs, tt.wantReq)
			}
			warnings := warningLines(output)
			if !tt.warned {
				if len(warnings) != 0 {
					t.Errorf("got warnings %q for a release, want none", warnings)
				}
				return
			}
			if len(warnings) != 1 {
				t.Fatalf("got %d warnings, want exactly one; output:\n%s", len(warnings), output)
			}
			for _, want := range []string{tt.wantReq + ", a development build", "No matching distribution found", "publish the wheel", "--requirement 'hfgate @ https://"} {
				if !strings.Contains(warnings[0], want) {
					t.Errorf("warning %q lacks %q", warnings[0], want)
				}
			}
		})
	}
}

// TestSpaceRunThrough assembles the vendored Space folder (make space VENDOR_BINARY=1: bin/hfgate
// and the hfgate package in the repository) and runs it as the Space's runtime does:
// app.py -> hfgate -> uvicorn -> cold 503 -> ready -> chat.
func TestSpaceRunThrough(t *testing.T) {
	requireBackend(t)
	dir := assembleSpace(t, "VENDOR_BINARY=1", "VERSION=v9.8.7-spacetest")
	checkSpaceFolder(t, dir, true)
	checkVendoredBinary(t, dir, "v9.8.7-spacetest")
	runSpace(t, spaceRun{dir: dir, python: e2ePython, exe: filepath.Join(dir, "bin", "hfgate"), version: "v9.8.7-spacetest"})
}

// spaceRun is one run of a Space folder as the Space's runtime runs it.
type spaceRun struct {
	dir     string // the Space folder: the working directory, holding app.py
	python  string // the interpreter that runs app.py (and, through UPSTREAM_CMD, uvicorn)
	exe     string // the binary the process must be once app.py has exec'd
	version string // the version stamp hfgate logs
	uid     int    // run as this uid and gid (0: as the test)
	home    string // HOME (default: a temporary folder)
}

// runSpace runs python app.py in sr.dir with the variables a Space sets, and checks that the
// process becomes hfgate, answers 503 while cold, becomes ready, chats plain and streamed,
// exits 0 on SIGTERM and leaves no backend behind.
func runSpace(t *testing.T, sr spaceRun) {
	t.Helper()
	ctx := testContext(t, 60*time.Second)
	port, metricsPort := freePort(t), freePort(t)
	if sr.home == "" {
		sr.home = t.TempDir()
	}
	cmd := exec.Command(sr.python, "app.py")
	cmd.Dir = sr.dir
	cmd.Env = []string{
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"HOME=" + sr.home,
		// What a Python-runtime Space sets (GRADIO_SERVER_NAME is 0.0.0.0 there; loopback here).
		"GRADIO_SERVER_PORT=" + strconv.Itoa(port),
		"GRADIO_SERVER_NAME=127.0.0.1",
		"SPACE_HOST=alice-chat-space.hf.space",
		"SPACE_ID=alice/chat-space",
		"SYSTEM=spaces",
		// A Space variable, passed through the launcher like any other.
		"METRICS_ADDR=127.0.0.1:" + strconv.Itoa(metricsPort),
		// The example backend: a 2 s model load, so the cold start is seen; fast tokens.
		"STARTUP_SECONDS=2",
		"TOKEN_DELAY=0.01",
		"PYTHONDONTWRITEBYTECODE=1",
	}
	if sr.uid != 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(sr.uid), Gid: uint32(sr.uid)}}
	}
	g := startProc(t, cmd, port)

	g.awaitPort(ctx)
	// app.py replaced itself with hfgate: the process started as python is the binary, run by
	// the Space's user.
	proc, err := procfs.NewProc(g.cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if exe, err := proc.Executable(); err != nil || exe != sr.exe {
		t.Errorf("process %d runs %q (%v), want %s (os.execve)", g.cmd.Process.Pid, exe, err, sr.exe)
	}
	if sr.uid != 0 {
		if st, err := proc.NewStatus(); err != nil || st.UIDs[1] != uint64(sr.uid) {
			t.Errorf("process %d: effective uid %d (%v), want %d", g.cmd.Process.Pid, st.UIDs[1], err, sr.uid)
		}
	}

	// Cold: the port answers at once, with the not-ready answer.
	r := g.mustRequest(ctx, http.MethodPost, "/chat", `{"message": "hello space"}`)
	checkNotReady(t, r, "starting")

	l := g.awaitLog(ctx, 1, "listening", msgIs("listening"))
	if got := l.attr("port_source"); got != "GRADIO_SERVER_PORT" {
		t.Errorf("listening line: got port_source %q, want GRADIO_SERVER_PORT", got)
	}
	if got := l.attr("version"); got != sr.version {
		t.Errorf("listening line: got version %q, want the stamp %s", got, sr.version)
	}
	l = g.awaitLog(ctx, 1, "space", msgIs("space"))
	if got, want := l.attr("url"), "https://alice-chat-space.hf.space"; got != want {
		t.Errorf("space line: got url %q, want %q", got, want)
	}
	if got, want := l.attr("id"), "alice/chat-space"; got != want {
		t.Errorf("space line: got id %q, want %q", got, want)
	}
	// The upstream command is the launcher's: its own interpreter running uvicorn on the
	// backend, trusting only hfgate's forwarding headers.
	l = g.awaitLog(ctx, 1, "config", msgIs("config"))
	words, err := config.SplitCommand(l.attr("upstream_cmd"))
	if err != nil {
		t.Fatalf("upstream_cmd %q: %v", l.attr("upstream_cmd"), err)
	}
	upstream, err := url.Parse(l.attr("upstream"))
	if err != nil || upstream.Hostname() != "127.0.0.1" || upstream.Port() == "" {
		t.Fatalf("config line: got upstream %q, want http://127.0.0.1:PORT", l.attr("upstream"))
	}
	wantCmd := []string{sr.python, "-m", "uvicorn", "app:app", "--app-dir", filepath.Join(sr.dir, "backend"),
		"--host", "127.0.0.1", "--port", upstream.Port(), "--proxy-headers", "--forwarded-allow-ips", "127.0.0.1"}
	if strings.Join(words, "\x00") != strings.Join(wantCmd, "\x00") {
		t.Errorf("upstream_cmd: got %q, want %q", words, wantCmd)
	}

	// Warm: ready, then the chat answers, plain and streamed.
	g.awaitReady(ctx, 50*time.Millisecond)
	checkChat(t, g.mustRequest(ctx, http.MethodPost, "/chat", `{"message": "hello space"}`), botReply("hello space"))
	resp, br := g.openStream(ctx, "hi there")
	var got strings.Builder
	for {
		ev, err := nextEvent(br)
		if err != nil {
			t.Fatalf("read event: %v (so far %q)", err, got.String())
		}
		if ev.event == "done" {
			break
		}
		got.WriteString(eventToken(t, ev))
	}
	resp.Body.Close()
	if got.String() != botReply("hi there") {
		t.Errorf("streamed reply: got %q, want %q", got.String(), botReply("hi there"))
	}
	// The metrics listener saw it all (counted after each answer, hence the poll).
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort)
	want := []struct {
		name   string
		labels []string
		value  float64
	}{
		{"hfgate_upstream_up", nil, 1},
		{"hfgate_requests_total", []string{"code", "503", "kind", "plain", "method", "POST"}, 1},
		{"hfgate_requests_total", []string{"code", "200", "kind", "plain", "method", "POST"}, 1},
		{"hfgate_requests_total", []string{"code", "200", "kind", "stream", "method", "GET"}, 1},
		{"hfgate_upstream_restarts_total", nil, 0},
	}
	var missing string
	if err := poll(ctx, 20*time.Millisecond, func() bool {
		m, err := scrapeMetrics(ctx, metricsURL)
		if err != nil {
			missing = err.Error()
			return false
		}
		for _, w := range want {
			if v, ok := m.value(w.name, w.labels...); !ok || v != w.value {
				missing = fmt.Sprintf("%s%q = %v (present: %v), want %v", w.name, w.labels, v, ok, w.value)
				return false
			}
		}
		return true
	}); err != nil {
		t.Errorf("metrics never showed what they should: %v; last: %s", err, missing)
	}

	// The backend's own output reaches the log (PYTHONUNBUFFERED), relayed line by line.
	g.awaitLog(ctx, 1, "backend output", relayedContains("model echo-bot-1 loaded"))

	if code := g.stop(ctx); code != 0 {
		t.Errorf("exit code after SIGTERM: got %d, want 0", code)
	}
	g.awaitLog(ctx, 1, "stopped", msgIs("stopped"))
	// hfgate waits for its child before it exits: the backend is gone, not orphaned.
	pids := g.childPIDs()
	if len(pids) == 0 {
		t.Errorf("no backend PID seen in the log")
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("backend process %d still exists after hfgate exited (kill 0: %v)", pid, err)
		}
	}
}

// checkSpaceFolder checks what make space wrote: the three files and backend/, and either the
// vendored binary and package or neither.
func checkSpaceFolder(t *testing.T, dir string, vendored bool) {
	t.Helper()
	read := func(name string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("space folder: %v", err)
		}
		return string(b)
	}
	readme := read("README.md")
	front, _, ok := strings.Cut(strings.TrimPrefix(readme, "---\n"), "\n---\n")
	if !strings.HasPrefix(readme, "---\n") || !ok {
		t.Fatalf("README.md does not open with a --- front matter block:\n%s", readme)
	}
	for _, want := range []string{"title: \"Chat test\"", "sdk: gradio", "app_file: app.py", "python_version: ", "sdk_version: ", "startup_duration_timeout: 30m"} {
		if !strings.Contains(front, "\n"+want) && !strings.HasPrefix(front, want) {
			t.Errorf("README.md front matter lacks %q:\n%s", want, front)
		}
	}
	reqs := strings.Fields(read("requirements.txt"))
	for _, want := range []string{"fastapi>=0.92", "uvicorn>=0.17.6", "websockets>=10.4"} {
		if !slices.Contains(reqs, want) {
			t.Errorf("requirements.txt lacks %q (the backend's own line): %q", want, reqs)
		}
	}
	if got, want := read("app.py"), "import hfgate.space\n\nhfgate.space.run(\"app:app\")\n"; got != want {
		t.Errorf("app.py: got %q, want %q", got, want)
	}
	if got, want := read("backend/app.py"), mustReadFile(t, repoPath("examples", "chatbot", "app.py")); got != want {
		t.Errorf("backend/app.py differs from examples/chatbot/app.py")
	}
	_, err := os.Stat(filepath.Join(dir, "bin"))
	_, errPkg := os.Stat(filepath.Join(dir, "hfgate", "space.py"))
	attrs, errAttrs := os.ReadFile(filepath.Join(dir, ".gitattributes"))
	if !vendored {
		if !os.IsNotExist(err) || !os.IsNotExist(errPkg) || !os.IsNotExist(errAttrs) {
			t.Errorf("wheel layout: bin/ (%v), hfgate/ (%v) or .gitattributes (%v) exists, want none", err, errPkg, errAttrs)
		}
		return
	}
	if errPkg != nil {
		t.Errorf("vendored layout: hfgate/space.py: %v", errPkg)
	}
	if !strings.Contains(string(attrs), "bin/** filter=lfs diff=lfs merge=lfs -text") {
		t.Errorf(".gitattributes does not send bin/ through LFS (%v)", errAttrs)
	}
	for _, r := range strings.Split(read("requirements.txt"), "\n") {
		if strings.HasPrefix(strings.ToLower(r), "hfgate") {
			t.Errorf("vendored layout: requirements.txt names %q, want no hfgate line", r)
		}
	}
}

// checkVendoredBinary checks bin/hfgate: static, stripped linux/amd64, printing version.
func checkVendoredBinary(t *testing.T, dir, version string) {
	t.Helper()
	bin := filepath.Join(dir, "bin", "hfgate")
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatalf("bin/hfgate: %v", err)
	}
	defer f.Close()
	if f.Machine != elf.EM_X86_64 || f.Class != elf.ELFCLASS64 {
		t.Errorf("bin/hfgate: got machine %v class %v, want EM_X86_64 ELFCLASS64 (linux/amd64)", f.Machine, f.Class)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("bin/hfgate has an ELF interpreter: want a static binary (CGO_ENABLED=0)")
		}
	}
	if f.Section(".symtab") != nil {
		t.Errorf("bin/hfgate has a symbol table: want it stripped (-s -w)")
	}
	if runtime.GOOS == "linux" && runtime.GOARCH == "amd64" {
		out, err := exec.Command(bin, "--version").CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), "hfgate "+version+" (commit ") || !strings.Contains(string(out), "linux/amd64") {
			t.Errorf("bin/hfgate --version: got %q (%v), want hfgate %s (commit ..., linux/amd64)", out, err, version)
		}
	}
}

// TestSpaceNewRejects: bad arguments to python -m hfgate.space new (what make space runs) stop
// it with one clear line and status 2, before anything is written.
func TestSpaceNewRejects(t *testing.T) {
	t.Parallel()
	requirePython(t)
	tests := []struct {
		name, backend, app, want string
	}{
		{name: "no backend folder", backend: "examples/nope", app: "app:app", want: "is not a folder"},
		{name: "app without attribute", backend: "examples/chatbot", app: "app", want: "--app must be module:attribute"},
		{name: "app with a path", backend: "examples/chatbot", app: "../app:app", want: "--app must be module:attribute"},
		{name: "module not in backend", backend: "examples/chatbot", app: "server:app", want: "--app module server not found"},
		{name: "attribute not in module", backend: "examples/chatbot", app: "app:ap", want: `app:ap: examples/chatbot/app.py has no top-level name "ap" (did you mean "app"?)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out := filepath.Join(t.TempDir(), "space")
			cmd := exec.Command(e2ePython, "-m", "hfgate.space", "new", "--backend", tt.backend, "--app", tt.app,
				"--out", out, "--requirement", "hfgate==1.0")
			cmd.Dir = moduleRoot // the backends are named from the root, as make space names them
			cmd.Env = []string{"PATH=/usr/bin:/bin", "PYTHONPATH=python", "PYTHONDONTWRITEBYTECODE=1"}
			b, err := cmd.CombinedOutput()
			if cmd.ProcessState == nil {
				t.Fatalf("run hfgate.space new: %v", err)
			}
			if code := cmd.ProcessState.ExitCode(); code != 2 {
				t.Errorf("exit code: got %d, want 2", code)
			}
			if got := string(b); strings.Count(got, "\n") != 1 || !strings.HasPrefix(got, "hfgate.space: ") || !strings.Contains(got, tt.want) {
				t.Errorf("output: got %q, want one line starting hfgate.space: and containing %q", got, tt.want)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("OUT was created (%v), want nothing written", err)
			}
		})
	}
}

// launcherDir is a vendored Space folder in miniature: the three-line app.py, the hfgate
// package as hfgate/, a backend/ whose app.py defines app (and would leave a file "imported"
// beside itself if anything imported it), and bin/hfgate holding binary (absent when nil),
// non-executable so that the launcher has to fix that.
func launcherDir(t *testing.T, binary []byte) string {
	t.Helper()
	return launcherDirFor(t, "app:app", binary)
}

// launcherDirFor is launcherDir with app.py running app.
func launcherDirFor(t *testing.T, app string, binary []byte) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "app.py"), []byte("import hfgate.space\n\nhfgate.space.run(\""+app+"\")\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	copyTree(t, repoPath("python", "hfgate"), filepath.Join(dir, "hfgate"))
	if err := os.MkdirAll(filepath.Join(dir, "backend"), 0o755); err != nil {
		t.Fatal(err)
	}
	backendApp := "import os\n\nopen(os.path.join(os.path.dirname(__file__), 'imported'), 'w').close()\napp = object()  # stands in for FastAPI()\n"
	if err := os.WriteFile(filepath.Join(dir, "backend", "app.py"), []byte(backendApp), 0o644); err != nil {
		t.Fatal(err)
	}
	if binary != nil {
		if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "bin", "hfgate"), binary, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// runLauncher runs python app.py in dir with env (as uid when it is not 0) and returns stdout,
// stderr and the exit code.
func runLauncher(t *testing.T, dir string, uid int, env ...string) (stdout, stderr string, code int) {
	t.Helper()
	return launch(t, dir, []string{"app.py"}, uid, env...)
}

// launch runs python with args in the folder cwd, as runLauncher does.
func launch(t *testing.T, cwd string, args []string, uid int, env ...string) (stdout, stderr string, code int) {
	t.Helper()
	requirePython(t)
	ctx := testContext(t, 20*time.Second)
	cmd := exec.CommandContext(ctx, e2ePython, args...)
	cmd.Dir = cwd
	// No hfgate on PATH: the launcher must find the one in the folder.
	cmd.Env = append([]string{"PATH=/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE=1"}, env...)
	if uid != 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
	}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if err != nil && cmd.ProcessState == nil {
		t.Fatalf("run launcher: %v", err)
	}
	return o.String(), e.String(), cmd.ProcessState.ExitCode()
}

// elfHeader returns the first 64 bytes of a little-endian 64-bit ELF executable for machine.
func elfHeader(machine elf.Machine) []byte {
	h := make([]byte, 64)
	copy(h, "\x7fELF")
	h[4], h[5], h[6] = byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), 1
	h[16] = byte(elf.ET_EXEC)
	h[18], h[19] = byte(machine), byte(machine>>8)
	return h
}

// TestSpaceLauncherFails: each way the binary can be wrong gives one clear line on stderr and
// exit status 1, before anything is started.
func TestSpaceLauncherFails(t *testing.T) {
	t.Parallel()
	other := elf.EM_AARCH64
	if runtime.GOARCH == "arm64" {
		other = elf.EM_X86_64
	}
	tests := []struct {
		name   string
		binary []byte // nil: no bin/hfgate at all
		want   string
	}{
		{name: "missing", binary: nil, want: "hfgate binary not found; looked in: "},
		{name: "other architecture", binary: elfHeader(other), want: "bin/hfgate is built for "},
		{name: "git lfs pointer", binary: []byte("version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 10940578\n"), want: "Git LFS pointer"},
		{name: "not an executable", binary: []byte("<html>404</html>\n"), want: "is not a Linux or macOS executable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := launcherDir(t, tt.binary)
			stdout, stderr, code := runLauncher(t, dir, 0)
			if code != 1 {
				t.Errorf("exit code: got %d, want 1", code)
			}
			if stdout != "" {
				t.Errorf("stdout: got %q, want nothing", stdout)
			}
			if strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "app.py: ") || !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr: got %q, want one line starting app.py: and containing %q", stderr, tt.want)
			}
			if tt.binary == nil && !strings.Contains(stderr, filepath.Join(dir, "bin", "hfgate")+" (target layout)") {
				t.Errorf("stderr: got %q, want the folder's bin/hfgate among the places looked in", stderr)
			}
		})
	}
}

// TestSpaceLauncherTypo: run("app:ap") names an attribute the backend does not define. The
// launcher says so in one line and exits 1 before hfgate starts (the stand-in binary would
// print its environment), without importing the backend; `new` says the same of the same
// folder, and exits 2 without writing anything.
func TestSpaceLauncherTypo(t *testing.T) {
	t.Parallel()
	envBinary, err := os.ReadFile("/usr/bin/env")
	if err != nil {
		skipOrFail(t, "space: no /usr/bin/env to stand in for hfgate: "+err.Error())
	}
	dir := launcherDirFor(t, "app:ap", envBinary)
	backend := filepath.Join(dir, "backend")
	want := fmt.Sprintf(`app:ap: %s has no top-level name "ap" (did you mean "app"?)`, filepath.Join(backend, "app.py"))

	stdout, stderr, code := runLauncher(t, dir, 0)
	if code != 1 || stdout != "" || stderr != "app.py: "+want+"\n" {
		t.Errorf("launcher: got exit %d, stdout %q, stderr %q; want exit 1, no stdout and the one line %q", code, stdout, stderr, "app.py: "+want)
	}

	out := filepath.Join(t.TempDir(), "space")
	stdout, stderr, code = launch(t, dir, []string{"-m", "hfgate.space", "new", "--backend", backend, "--app", "app:ap", "--out", out, "--requirement", "hfgate==1.0"}, 0)
	if code != 2 || stdout != "" || stderr != "hfgate.space: "+want+"\n" {
		t.Errorf("new: got exit %d, stdout %q, stderr %q; want exit 2 and the one line %q", code, stdout, stderr, "hfgate.space: "+want)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("new wrote %s (%v), want nothing written", out, err)
	}
	if _, err := os.Stat(filepath.Join(backend, "imported")); !os.IsNotExist(err) {
		t.Errorf("the backend's app.py was imported (%v): the check must read it, not run it", err)
	}
}

// TestSpaceLauncherEnvironment checks what the launcher hands hfgate, with /usr/bin/env (an
// executable for this machine) standing in for the binary, so the environment is printed.
func TestSpaceLauncherEnvironment(t *testing.T) {
	t.Parallel()
	envBinary, err := os.ReadFile("/usr/bin/env")
	if err != nil {
		skipOrFail(t, "space: no /usr/bin/env to stand in for hfgate: "+err.Error())
	}
	parse := func(t *testing.T, out string) map[string]string {
		t.Helper()
		m := map[string]string{}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if k, v, ok := strings.Cut(line, "="); ok {
				m[k] = v
			}
		}
		return m
	}

	t.Run("defaults", func(t *testing.T) {
		t.Parallel()
		dir := launcherDir(t, envBinary)
		out, stderr, code := runLauncher(t, dir, 0, "OPENAI_API_KEY=sk-kept-as-is", "PORT=7861")
		if code != 0 {
			t.Fatalf("exit code %d, stderr %q", code, stderr)
		}
		env := parse(t, out)
		u, err := url.Parse(env["UPSTREAM_URL"])
		if err != nil || u.Scheme != "http" || u.Hostname() != "127.0.0.1" || u.Port() == "" {
			t.Fatalf("UPSTREAM_URL: got %q, want http://127.0.0.1:PORT", env["UPSTREAM_URL"])
		}
		words, err := config.SplitCommand(env["UPSTREAM_CMD"])
		if err != nil {
			t.Fatalf("UPSTREAM_CMD %q does not parse as hfgate reads it: %v", env["UPSTREAM_CMD"], err)
		}
		backend := filepath.Join(dir, "backend")
		want := []string{e2ePython, "-m", "uvicorn", "app:app", "--app-dir", backend, "--host", "127.0.0.1",
			"--port", u.Port(), "--proxy-headers", "--forwarded-allow-ips", "127.0.0.1"}
		if strings.Join(words, "\x00") != strings.Join(want, "\x00") {
			t.Errorf("UPSTREAM_CMD: got %q, want %q", words, want)
		}
		for k, v := range map[string]string{"UPSTREAM_DIR": backend, "PYTHONUNBUFFERED": "1", "OPENAI_API_KEY": "sk-kept-as-is"} {
			if env[k] != v {
				t.Errorf("%s: got %q, want %q", k, env[k], v)
			}
		}
		// Without GRADIO_SERVER_PORT, a PORT is not the Space's (gradio's SSR sets 7861).
		if v, ok := env["PORT"]; ok {
			t.Errorf("PORT passed on as %q, want it dropped without GRADIO_SERVER_PORT", v)
		}
		st, err := os.Stat(filepath.Join(dir, "bin", "hfgate"))
		if err != nil || st.Mode().Perm()&0o111 != 0o111 {
			t.Errorf("bin/hfgate mode after launch: %v (%v), want executable by all", st.Mode(), err)
		}
	})

	// Some runtimes import app.py rather than run it: run() execs at import all the same, and
	// finds backend/ beside app.py whatever the working directory.
	t.Run("imported from elsewhere", func(t *testing.T) {
		t.Parallel()
		dir := launcherDir(t, envBinary)
		out, stderr, code := launch(t, t.TempDir(), []string{"-c", "import app; raise SystemExit('app.py returned')"}, 0, "PYTHONPATH="+dir)
		if code != 0 {
			t.Fatalf("exit code %d, stderr %q", code, stderr)
		}
		if env := parse(t, out); env["UPSTREAM_DIR"] != filepath.Join(dir, "backend") {
			t.Errorf("UPSTREAM_DIR: got %q, want %s", env["UPSTREAM_DIR"], filepath.Join(dir, "backend"))
		}
	})

	t.Run("space sets UPSTREAM_CMD", func(t *testing.T) {
		t.Parallel()
		out, stderr, code := runLauncher(t, launcherDir(t, envBinary), 0, "UPSTREAM_CMD=python serve.py", "PYTHONUNBUFFERED=0")
		if code != 0 {
			t.Fatalf("exit code %d, stderr %q", code, stderr)
		}
		env := parse(t, out)
		if env["UPSTREAM_CMD"] != "python serve.py" || env["PYTHONUNBUFFERED"] != "0" {
			t.Errorf("got UPSTREAM_CMD %q, PYTHONUNBUFFERED %q; want the Space's own", env["UPSTREAM_CMD"], env["PYTHONUNBUFFERED"])
		}
		for _, k := range []string{"UPSTREAM_URL", "UPSTREAM_DIR"} {
			if _, ok := env[k]; ok {
				t.Errorf("%s set to %q, want it left unset", k, env[k])
			}
		}
	})

	t.Run("space sets UPSTREAM_URL", func(t *testing.T) {
		t.Parallel()
		out, stderr, code := runLauncher(t, launcherDir(t, envBinary), 0, "UPSTREAM_URL=http://127.0.0.1:8123")
		if code != 0 {
			t.Fatalf("exit code %d, stderr %q", code, stderr)
		}
		env := parse(t, out)
		if env["UPSTREAM_URL"] != "http://127.0.0.1:8123" || !strings.Contains(env["UPSTREAM_CMD"], " --port 8123 ") {
			t.Errorf("got UPSTREAM_URL %q, UPSTREAM_CMD %q; want uvicorn on the URL's port 8123", env["UPSTREAM_URL"], env["UPSTREAM_CMD"])
		}
	})

	// A binary committed without its mode (an HTTP upload) in a folder this user cannot write:
	// the launcher runs an executable copy instead of failing.
	t.Run("not executable in a read-only folder", func(t *testing.T) {
		t.Parallel()
		if os.Geteuid() != 0 {
			skipOrFail(t, "space: running as uid 1000 needs root")
		}
		dir := launcherDir(t, envBinary)
		tmp := t.TempDir()
		for _, d := range []string{filepath.Dir(dir), dir, filepath.Dir(tmp)} {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chmod(tmp, 0o777); err != nil {
			t.Fatal(err)
		}
		out, stderr, code := runLauncher(t, dir, 1000, "TMPDIR="+tmp)
		if code != 0 {
			t.Fatalf("exit code %d, stderr %q", code, stderr)
		}
		if env := parse(t, out); env["UPSTREAM_DIR"] != filepath.Join(dir, "backend") {
			t.Errorf("the copy did not run: got output %q", out)
		}
		if st, err := os.Stat(filepath.Join(dir, "bin", "hfgate")); err != nil || st.Mode().Perm() != 0o644 {
			t.Errorf("bin/hfgate: mode %v (%v), want it left 0644", st.Mode(), err)
		}
		copies, _ := filepath.Glob(filepath.Join(tmp, "hfgate-*", "hfgate"))
		if len(copies) != 1 {
			t.Errorf("executable copies in TMPDIR: got %q, want one", copies)
		}
	})
}
