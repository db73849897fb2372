package e2e

// The harness every test of this package runs on, in three files: this one (the binary built
// once per run, the prerequisites, the planted secrets, hfgate processes started and stopped,
// their output read as log lines that tests await as events), harness_client_test.go (requests
// and the answers checked against the contract, /ready, load) and harness_proc_test.go (the
// process, its connections and its metrics read from outside).
//
// HFGATE_E2E_LOGS=1 (with -v) prints each hfgate's output even when its test
// passes.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// e2ePython is the interpreter the example backend runs under.
const e2ePython = "/usr/bin/python3"

// planted holds the secret values the end-to-end run plants: a secret variable (which the
// example backend prints at start-up) in every gateway's environment, and a bearer token, a
// session cookie and a query token on every request the harness sends. Each gateway's whole
// output is scanned for all of them when its test ends (see hfgateProc.cleanup).
var planted = struct {
	mu     sync.Mutex
	values []string
	// env, bearer, cookie and query are the values the harness itself plants.
	env, bearer, cookie, query string
}{
	env:    "envsecret-" + strconv.FormatInt(time.Now().UnixNano(), 36),
	bearer: "bearer-" + strconv.FormatInt(time.Now().UnixNano()^0x5deece66d, 36),
	cookie: "cookie-" + strconv.FormatInt(time.Now().UnixNano()^0x2545f491, 36),
	query:  "qtoken-" + strconv.FormatInt(time.Now().UnixNano()^0x9e3779b9, 36),
}

// plant records v as a secret that must never appear in any gateway's output, and returns it.
func plant(v string) string {
	planted.mu.Lock()
	planted.values = append(planted.values, v)
	planted.mu.Unlock()
	return v
}

func plantedSecrets() []string {
	planted.mu.Lock()
	defer planted.mu.Unlock()
	return append([]string{planted.env, planted.bearer, planted.cookie, planted.query}, planted.values...)
}

// withPlantedSecrets adds the planted bearer token, cookie and query token to req, unless the
// test set its own Authorization or Cookie.
func withPlantedSecrets(req *http.Request) {
	if req.Header.Get("Authorization") == "" {
		req.Header.Set("Authorization", "Bearer "+planted.bearer)
	}
	if req.Header.Get("Cookie") == "" {
		req.Header.Set("Cookie", "session="+planted.cookie)
	}
	q := req.URL.Query()
	q.Set("access_token", planted.query)
	req.URL.RawQuery = q.Encode()
}

// e2eBuild holds the hfgate binary built for this test run. It is built on
// first use, so running only unit tests does not pay for it.
var e2eBuild struct {
	dir  string
	once sync.Once
	path string
	err  error
}

// moduleRoot is the folder holding go.mod, set once by TestMain. go test runs these tests in
// e2e/, while what they build and read (the module, examples/, README.md) is named from the
// root, the way the README's commands name it: every such path goes through repoPath.
var moduleRoot string

// repoPath returns the path of elem, given from the module root.
func repoPath(elem ...string) string {
	return filepath.Join(append([]string{moduleRoot}, elem...)...)
}

// findModuleRoot walks up from dir to the first folder holding go.mod.
func findModuleRoot(dir string) (string, error) {
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod in %s or above", dir)
		}
	}
}

func TestMain(m *testing.M) {
	wd, err := os.Getwd()
	if err == nil {
		moduleRoot, err = findModuleRoot(wd)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: find the module root:", err)
		os.Exit(1)
	}
	dir, err := os.MkdirTemp("", "hfgate-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: make temp dir:", err)
		os.Exit(1)
	}
	e2eBuild.dir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// hfgateBinary returns the path of the binary built from this module,
// building it once per test run.
func hfgateBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e: skipped with -short")
	}
	e2eBuild.once.Do(func() {
		path := filepath.Join(e2eBuild.dir, "hfgate")
		cmd := exec.Command("go", "build", "-o", path, ".")
		cmd.Dir = moduleRoot
		out, err := cmd.CombinedOutput()
		if err != nil {
			e2eBuild.err = fmt.Errorf("go build: %w\n%s", err, out)
			return
		}
		e2eBuild.path = path
	})
	if e2eBuild.err != nil {
		t.Fatalf("build hfgate: %v", e2eBuild.err)
	}
	return e2eBuild.path
}

var pythonCheck struct {
	once sync.Once
	err  error
}

// backendProblem says why the example backend cannot run here, or returns
// nil when it can. It asks the interpreter once per test run.
func backendProblem() error {
	pythonCheck.once.Do(func() {
		out, err := exec.Command(e2ePython, "-c", "import fastapi, uvicorn").CombinedOutput()
		if err != nil {
			pythonCheck.err = fmt.Errorf("%s cannot import fastapi and uvicorn (install them with: sh examples/chatbot/deps.sh): %w %s",
				e2ePython, err, bytes.TrimSpace(out))
		}
	})
	return pythonCheck.err
}

// requireBackend skips the test when the example backend cannot run here,
// or fails it in CI, where it must run.
func requireBackend(t *testing.T) {
	t.Helper()
	if err := backendProblem(); err != nil {
		skipOrFail(t, "e2e: "+err.Error())
	}
}

// requirePython skips (or in CI fails) the test when /usr/bin/python3 is missing.
func requirePython(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(e2ePython); err != nil {
		skipOrFail(t, "space: "+e2ePython+" is not installed")
	}
}

// mustReadFile returns the file's text, failing the test when it cannot be read.
func mustReadFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// copyTree copies the regular files and folders under src (no __pycache__) to dst.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			if d.Name() == "__pycache__" {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatalf("copy %s to %s: %v", src, dst, err)
	}
}

// skipOrFail skips the test for a missing prerequisite, explained by msg,
// or fails it when CI=true: CI must never pass by skipping.
func skipOrFail(t *testing.T, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// freePort returns a loopback port that was free a moment ago. Another
// process could take it before it is used; that race is accepted.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// poll calls check every interval until it reports true or ctx ends. It is
// for conditions that announce themselves by no event, such as a port
// starting to accept.
func poll(ctx context.Context, interval time.Duration, check func() bool) error {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		if check() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// logLine is one line of the gateway's output and when the reader saw it.
type logLine struct {
	at  time.Time
	raw string
}

// fields splits the line into its message and attributes, for both the text
// format (`TIME LVL message key=value key="quoted value"`) and the JSON one.
func (l logLine) fields() (msg string, attrs map[string]string) {
	attrs = map[string]string{}
	if strings.HasPrefix(l.raw, "{") {
		var m map[string]any
		dec := json.NewDecoder(strings.NewReader(l.raw))
		dec.UseNumber() // so a pid prints as 1234567, not 1.234567e+06
		if dec.Decode(&m) != nil {
			return "", attrs
		}
		for k, v := range m {
			if s, ok := v.(string); ok {
				attrs[k] = s
			} else {
				attrs[k] = fmt.Sprint(v)
			}
		}
		return attrs["msg"], attrs
	}
	rest := l.raw
	for range 2 { // time and level
		i := strings.IndexByte(rest, ' ')
		if i < 0 {
			return "", attrs
		}
		rest = rest[i+1:]
	}
	var words []string
	for rest = strings.TrimLeft(rest, " "); rest != ""; rest = strings.TrimLeft(rest, " ") {
		sp := strings.IndexByte(rest, ' ')
		if sp < 0 {
			sp = len(rest)
		}
		eq := strings.IndexByte(rest[:sp], '=')
		if eq <= 0 {
			if len(attrs) == 0 {
				words = append(words, rest[:sp])
			}
			rest = rest[sp:]
			continue
		}
		key := rest[:eq]
		rest = rest[eq+1:]
		if q, err := strconv.QuotedPrefix(rest); err == nil && strings.HasPrefix(rest, `"`) {
			v, _ := strconv.Unquote(q)
			attrs[key] = v
			rest = rest[len(q):]
			continue
		}
		sp = strings.IndexByte(rest, ' ')
		if sp < 0 {
			sp = len(rest)
		}
		attrs[key] = rest[:sp]
		rest = rest[sp:]
	}
	return strings.Join(words, " "), attrs
}

func (l logLine) msg() string {
	m, _ := l.fields()
	return m
}

func (l logLine) attr(key string) string {
	_, a := l.fields()
	return a[key]
}

// relayed reports whether the line is a relayed line of the child's output.
func (l logLine) relayed() bool {
	m, a := l.fields()
	return m == "upstream" && a["source"] == "upstream"
}

func msgIs(msg string) func(logLine) bool {
	return func(l logLine) bool { return l.msg() == msg }
}

func relayedContains(s string) func(logLine) bool {
	return func(l logLine) bool { return l.relayed() && strings.Contains(l.attr("line"), s) }
}

// accessLine matches the access-log line of one request; status 0 matches
// any status.
func accessLine(method, path string, status int) func(logLine) bool {
	return func(l logLine) bool {
		return l.msg() == "request" && l.attr("method") == method && l.attr("path") == path &&
			(status == 0 || l.attr("status") == strconv.Itoa(status))
	}
}

// logTail collects a process's output line by line and lets tests await
// lines as events.
type logTail struct {
	mu      sync.Mutex
	raw     bytes.Buffer
	lines   []logLine
	ended   bool
	changed chan struct{} // closed and replaced on every new line and at the end
}

func newLogTail(r io.ReadCloser) *logTail {
	lt := &logTail{changed: make(chan struct{})}
	go lt.read(r)
	return lt
}

func (lt *logTail) read(r io.ReadCloser) {
	defer r.Close()
	br := bufio.NewReader(r)
	for {
		s, err := br.ReadString('\n')
		if s != "" {
			lt.mu.Lock()
			lt.raw.WriteString(s)
			lt.lines = append(lt.lines, logLine{at: time.Now(), raw: strings.TrimRight(s, "\r\n")})
			lt.notifyLocked()
			lt.mu.Unlock()
		}
		if err != nil {
			lt.mu.Lock()
			lt.ended = true
			lt.notifyLocked()
			lt.mu.Unlock()
			return
		}
	}
}

func (lt *logTail) notifyLocked() {
	close(lt.changed)
	lt.changed = make(chan struct{})
}

// await returns the n-th (from 1) line that matches, waiting until it
// arrives, the output ends, or ctx ends.
func (lt *logTail) await(ctx context.Context, n int, match func(logLine) bool) (logLine, error) {
	for {
		lt.mu.Lock()
		seen := 0
		for _, l := range lt.lines {
			if match(l) {
				if seen++; seen == n {
					lt.mu.Unlock()
					return l, nil
				}
			}
		}
		changed, ended := lt.changed, lt.ended
		lt.mu.Unlock()
		if ended {
			return logLine{}, errors.New("output ended")
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return logLine{}, ctx.Err()
		}
	}
}

// awaitEnd waits until the output has been read to its end.
func (lt *logTail) awaitEnd(ctx context.Context) error {
	for {
		lt.mu.Lock()
		changed, ended := lt.changed, lt.ended
		lt.mu.Unlock()
		if ended {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (lt *logTail) snapshot() ([]logLine, []byte) {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	return slices.Clone(lt.lines), bytes.Clone(lt.raw.Bytes())
}

func (lt *logTail) count(match func(logLine) bool) int {
	lines, _ := lt.snapshot()
	n := 0
	for _, l := range lines {
		if match(l) {
			n++
		}
	}
	return n
}

// hfgateProc is one running hfgate process with the example backend configured
// as its supervised upstream.
type hfgateProc struct {
	t        *testing.T
	cmd      *exec.Cmd
	base     string // http://127.0.0.1:PORT
	port     int
	started  time.Time // just before exec
	logs     *logTail
	exited   chan struct{} // closed once the process has been waited for
	client   *http.Client
	mu       sync.Mutex
	childPID []int // child PIDs seen through /ready
}

// startGateway runs hfgate with a supervised example backend. env adds to
// and overrides the defaults below, PORT included (for a test that must
// know the address before the gateway starts); the environment of the test
// process is not inherited, so stray variables (or secrets) cannot leak in.
func startGateway(t *testing.T, env map[string]string) *hfgateProc {
	t.Helper()
	bin := hfgateBinary(t)
	requireBackend(t)
	dir := repoPath("examples", "chatbot")
	port, upPort := freePort(t), freePort(t)
	full := map[string]string{
		"PATH":                  os.Getenv("PATH"),
		"HOST":                  "127.0.0.1",
		"PORT":                  strconv.Itoa(port),
		"UPSTREAM_URL":          fmt.Sprintf("http://127.0.0.1:%d", upPort),
		"UPSTREAM_CMD":          fmt.Sprintf("%s -m uvicorn app:app --host 127.0.0.1 --port %d --use-colors", e2ePython, upPort),
		"UPSTREAM_DIR":          dir,
		"UPSTREAM_STOP_TIMEOUT": "3s",
		"SHUTDOWN_TIMEOUT":      "5s",
		"STARTUP_SECONDS":       "1",
		"TOKEN_DELAY":           "0.01",
		// Keep __pycache__ out of the source tree.
		"PYTHONDONTWRITEBYTECODE": "1",
		// A planted secret the backend prints at start-up (see planted).
		"E2E_PLANTED_TOKEN": planted.env,
		"EXAMPLE_ECHO_ENV":  "E2E_PLANTED_TOKEN",
	}
	maps.Copy(full, env)
	port, err := strconv.Atoi(full["PORT"])
	if err != nil {
		t.Fatalf("PORT %q: %v", full["PORT"], err)
	}
	environ := make([]string, 0, len(full))
	for k, v := range full {
		environ = append(environ, k+"="+v)
	}

	cmd := exec.Command(bin)
	cmd.Env = environ
	return startProc(t, cmd, port)
}

// startGatewayFor runs hfgate in front of a fake upstream, with no child process.
func startGatewayFor(t *testing.T, upstreamURL string, env map[string]string) *hfgateProc {
	t.Helper()
	full := map[string]string{"UPSTREAM_URL": upstreamURL, "UPSTREAM_CMD": "", "LOG_FORMAT": "json"}
	for k, v := range env {
		full[k] = v
	}
	return startGateway(t, full)
}

// startProc starts cmd, a process that becomes hfgate listening on the loopback port (the
// binary itself, or a launcher that execs it), with its output read as log lines.
func startProc(t *testing.T, cmd *exec.Cmd, port int) *hfgateProc {
	t.Helper()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatalf("pipe: %v", err)
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	// Its own process group, so clean-up can kill whatever it leaves (keeping, say, the
	// Credential of a test that runs it as another user).
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	g := &hfgateProc{
		t:      t,
		cmd:    cmd,
		base:   fmt.Sprintf("http://127.0.0.1:%d", port),
		port:   port,
		exited: make(chan struct{}),
		client: &http.Client{Transport: &http.Transport{Proxy: nil}},
	}
	g.started = time.Now()
	if err := cmd.Start(); err != nil {
		pw.Close()
		pr.Close()
		t.Fatalf("start hfgate: %v", err)
	}
	pw.Close()
	g.logs = newLogTail(pr)
	go func() {
		_ = cmd.Wait()
		close(g.exited)
	}()
	t.Cleanup(g.cleanup)
	return g
}

// cleanup stops the gateway if it still runs, kills any child it left
// behind, and prints its output when the test failed.
func (g *hfgateProc) cleanup() {
	select {
	case <-g.exited:
	default:
		_ = g.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-g.exited:
		case <-time.After(10 * time.Second):
			g.t.Errorf("hfgate did not exit within 10s of SIGTERM; killing its process group")
			_ = syscall.Kill(-g.cmd.Process.Pid, syscall.SIGKILL)
			<-g.exited
		}
	}
	for _, pid := range g.childPIDs() {
		if syscall.Kill(pid, 0) == nil {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	g.client.CloseIdleConnections()
	_, raw := g.logs.snapshot()
	for i, line := range strings.Split(string(raw), "\n") {
		for _, s := range plantedSecrets() {
			if strings.Contains(line, s) {
				g.t.Errorf("output line %d holds a planted secret (%.12s...): %q", i+1, s, line)
			}
		}
	}
	if g.t.Failed() || os.Getenv("HFGATE_E2E_LOGS") == "1" {
		_, raw := g.logs.snapshot()
		g.t.Logf("hfgate output:\n%s", raw)
	}
}

var startedServerRE = regexp.MustCompile(`Started server process \[(\d+)\]`)

// childPIDs returns every child PID the test learnt of: from /ready, the
// "upstream started" log lines and uvicorn's own start-up line.
func (g *hfgateProc) childPIDs() []int {
	g.mu.Lock()
	pids := slices.Clone(g.childPID)
	g.mu.Unlock()
	lines, _ := g.logs.snapshot()
	for _, l := range lines {
		if l.msg() == "upstream started" {
			if pid, err := strconv.Atoi(l.attr("pid")); err == nil {
				pids = append(pids, pid)
			}
		}
		if m := startedServerRE.FindStringSubmatch(l.attr("line")); m != nil {
			if pid, err := strconv.Atoi(m[1]); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	slices.Sort(pids)
	return slices.Compact(pids)
}

// awaitLog returns the n-th line that matches, failing the test if none comes.
func (g *hfgateProc) awaitLog(ctx context.Context, n int, what string, match func(logLine) bool) logLine {
	g.t.Helper()
	l, err := g.logs.await(ctx, n, match)
	if err != nil {
		g.t.Fatalf("await log line %q (#%d): %v", what, n, err)
	}
	return l
}

// stop sends SIGTERM and returns the exit code once the process has exited
// and its output has been read to the end. A process that has exited
// already is not an error here: its exit code tells.
func (g *hfgateProc) stop(ctx context.Context) int {
	g.t.Helper()
	if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		g.t.Fatalf("SIGTERM hfgate: %v", err)
	}
	return g.wait(ctx)
}

func (g *hfgateProc) wait(ctx context.Context) int {
	g.t.Helper()
	select {
	case <-g.exited:
	case <-ctx.Done():
		g.t.Fatalf("hfgate did not exit: %v", ctx.Err())
	}
	if err := g.logs.awaitEnd(ctx); err != nil {
		g.t.Fatalf("hfgate output did not end: %v", err)
	}
	return g.cmd.ProcessState.ExitCode()
}

// testContext returns a context that ends after d or with the test.
func testContext(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}
