package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// `hfbench overload` (make bench-overload) measures what each way of serving one uvicorn worker
// does when more is asked of it than it can do: uvicorn alone, uvicorn with its own limit,
// HAProxy and nginx with theirs, and hfgate. The backend (overload_app.py) has a CPU-bound
// endpoint, whose capacity the harness measures first, and an I/O-bound one; the load is open
// loop (requests arrive at a fixed rate whatever the answers) and each client gives up at 60 s,
// as HF's edge does. Every cell (endpoint, rate, target) gets a fresh backend and a fresh proxy,
// so that no queue, abandoned work or health state leaks from one cell to the next.

// overloadOpts are `hfbench overload`'s flags.
type overloadOpts struct {
	hfgate, python, app, out, command string
	args                              []string // as given, for the report
	duration, timeout                 time.Duration
	multiples, ioRates                []float64
	capacity                          float64 // req/s; 0: measure it
	cpuMS, ioMS                       int
	limit, uvicornLimit               int
	queueTimeout                      time.Duration
	targets                           map[string]bool // nil: all
	quietLoad                         float64
	quietWait                         time.Duration
	keep                              bool
}

// endpointKind is one of the backend's endpoints under load.
type endpointKind struct {
	key, path, about string
}

var (
	cpuEndpoint = endpointKind{"cpu", "/chat", "CPU-bound: `POST /chat`"}
	ioEndpoint  = endpointKind{"io", "/remote", "I/O-bound: `POST /remote`"}
)

func runOverload(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseOverloadFlags(args, stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stderr, "hfbench overload: %v\n", err)
		}
		return 2
	}
	logf := stampLogger(stderr, "hfbench overload")
	rep, err := overload(ctx, o, logf)
	if err != nil {
		logf("error: %v", err)
		return 1
	}
	md := rep.markdown()
	fmt.Fprintln(stdout, md)
	if o.out != "" {
		if err := spliceBetween(o.out, overloadBegin, overloadEnd, md); err != nil {
			logf("report: %v", err)
			return 1
		}
		logf("report written to %s", o.out)
	}
	return 0
}

func parseOverloadFlags(args []string, stderr io.Writer) (overloadOpts, error) {
	o := overloadOpts{multiples: []float64{1, 2, 5, 10}, ioRates: []float64{25}, args: args}
	var targets string
	fs := flag.NewFlagSet("hfbench overload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.hfgate, "hfgate", "../bin/hfgate", "hfgate binary (make build)")
	fs.StringVar(&o.python, "python", "/usr/bin/python3", "Python with fastapi and uvicorn")
	fs.StringVar(&o.app, "app", "overload_app.py", "the backend's FastAPI app")
	fs.StringVar(&o.out, "out", "", "markdown file to write the results into, between the overload:begin/end markers (empty: stdout only)")
	fs.StringVar(&o.command, "command", "make bench-overload", "the command to reproduce, as printed in the report")
	fs.DurationVar(&o.duration, "duration", 20*time.Second, "how long each cell offers its load (then it drains: up to -timeout more)")
	fs.DurationVar(&o.timeout, "timeout", 60*time.Second, "a client gives up this long after its request's scheduled time (HF's edge: 60 s)")
	fs.Func("multiples", "comma list of CPU-bound rates, as multiples of the measured capacity (default 1,2,5,10)", func(s string) error {
		v, err := parseRates(s)
		o.multiples = v
		return err
	})
	fs.Func("io-rates", "comma list of I/O-bound rates, req/s (default 25; empty: none)", func(s string) error {
		v, err := parseRates(s)
		o.ioRates = v
		return err
	})
	fs.Float64Var(&o.capacity, "capacity", 0, "the CPU-bound endpoint's capacity in req/s (0: measure it, one request at a time, at the start)")
	fs.IntVar(&o.cpuMS, "cpu-ms", 200, "CPU time POST /chat burns, ms")
	fs.IntVar(&o.ioMS, "io-ms", 2000, "time POST /remote awaits, ms")
	fs.IntVar(&o.limit, "limit", 2, "the hand-set limit: HAProxy's server maxconn, nginx's max_conns, hfgate-fixed's UPSTREAM_CONCURRENCY")
	fs.IntVar(&o.uvicornLimit, "uvicorn-limit", 3, "uvicorn --limit-concurrency (it counts the connection asking, so 3 serves 2)")
	fs.DurationVar(&o.queueTimeout, "queue-timeout", 10*time.Second, "HAProxy's timeout queue (whole seconds)")
	fs.StringVar(&targets, "targets", "", "comma list of targets ("+strings.Join(overloadTargetNames, ",")+"); empty: all")
	fs.Float64Var(&o.quietLoad, "quiet-load", 0.7, "wait for the 1-minute load average to fall below this before starting")
	fs.DurationVar(&o.quietWait, "quiet-wait", time.Minute, "longest wait for a quiet machine (then run anyway, and say so)")
	fs.BoolVar(&o.keep, "keep", false, "keep the run's temporary directory (configs, logs) and print its path")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var problems []string
	if o.duration < time.Second || o.duration > 10*time.Minute {
		problems = append(problems, "-duration: want 1s to 10m")
	}
	if o.timeout < time.Second || o.timeout > 5*time.Minute {
		problems = append(problems, "-timeout: want 1s to 5m")
	}
	if o.capacity < 0 || o.capacity > 10000 {
		problems = append(problems, "-capacity: want 0 (measure) or a rate up to 10000 req/s")
	}
	if o.cpuMS < 1 || o.cpuMS > 10000 || o.ioMS < 1 || o.ioMS > 60000 {
		problems = append(problems, "-cpu-ms: want 1 to 10000; -io-ms: 1 to 60000")
	}
	if o.limit < 1 || o.uvicornLimit < 1 {
		problems = append(problems, "-limit, -uvicorn-limit: want at least 1")
	}
	if o.queueTimeout < time.Second || o.queueTimeout != o.queueTimeout.Truncate(time.Second) {
		problems = append(problems, "-queue-timeout: want whole seconds, at least 1s")
	}
	if targets != "" {
		o.targets = map[string]bool{}
		for t := range strings.SplitSeq(targets, ",") {
			if !slices.Contains(overloadTargetNames, t) {
				problems = append(problems, fmt.Sprintf("-targets: unknown target %q (want some of %s)", t, strings.Join(overloadTargetNames, ",")))
			}
			o.targets[t] = true
		}
	}
	if len(problems) > 0 {
		return o, errors.New(strings.Join(problems, "; "))
	}
	return o, nil
}

// overloadReport holds a run's results.
type overloadReport struct {
	opts               overloadOpts
	date               time.Time
	machine, hfgateVer string
	hfgateKnowsLimit   bool // the binary's help names UPSTREAM_CONCURRENCY
	versions           map[string]string
	uvicornVer         string
	loadStart, loadEnd float64
	quiet              bool
	took               time.Duration
	capacity           float64       // req/s of the CPU-bound endpoint
	serviceTime        time.Duration // median, one request at a time (0 when -capacity was given)
	targets            []overloadTarget
	cells              []overloadCell
}

// overloadCell is one endpoint at one rate through one target.
type overloadCell struct {
	kind     endpointKind
	rate     float64
	multiple float64 // of the capacity (CPU-bound cells), else 0
	target   string
	stats    cellStats
	ready    *readyStats // hfgate targets only
	idleRSS  int64       // the backend's VmRSS before the load, bytes
	peakRSS  int64       // its VmHWM at the end of the cell (it was started for this cell)
	died     bool        // the backend exited during the cell
	wall     time.Duration
}

func overload(ctx context.Context, o overloadOpts, logf func(string, ...any)) (*overloadReport, error) {
	raiseNoFile(logf)
	hfgate, err := filepath.Abs(o.hfgate)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(hfgate); err != nil {
		return nil, fmt.Errorf("hfgate binary: %w (run make build)", err)
	}
	app, err := filepath.Abs(o.app)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(app); err != nil || !strings.HasSuffix(app, ".py") {
		return nil, fmt.Errorf("-app %s: want an existing .py file", o.app)
	}
	if err := exec.Command(o.python, "-c", "import fastapi, uvicorn").Run(); err != nil {
		return nil, fmt.Errorf("%s cannot import fastapi and uvicorn (Debian: apt-get install python3-fastapi python3-uvicorn)", o.python)
	}
	dir, err := os.MkdirTemp("", "hfbench-overload-")
	if err != nil {
		return nil, err
	}
	if o.keep {
		logf("keeping %s", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	_ = os.Chmod(dir, 0o755) // nginx's workers run as nobody when started as root
	e := &env{dir: dir, hfgate: hfgate, ps: newProcs(), logf: logf}
	defer e.ps.stopAll()

	rep := &overloadReport{opts: o, machine: machine(), versions: versions(), targets: overloadTargets(o)}
	rep.uvicornVer = pythonVersion(o.python, "uvicorn")
	rep.hfgateVer, rep.hfgateKnowsLimit = hfgateVersion(hfgate)
	rep.loadStart, rep.quiet = waitQuiet(ctx, o.quietLoad, o.quietWait, logf)
	logf("load average %.2f at start (quiet: %v)", rep.loadStart, rep.quiet)
	began := time.Now()
	rep.date = began.UTC()

	back := backend{python: o.python, dir: filepath.Dir(app), module: strings.TrimSuffix(filepath.Base(app), ".py") + ":app",
		env: []string{fmt.Sprintf("CPU_MS=%d", o.cpuMS), fmt.Sprintf("IO_MS=%d", o.ioMS), noBytecode}}
	rep.capacity = o.capacity
	if rep.capacity == 0 {
		if rep.capacity, rep.serviceTime, err = back.calibrate(ctx, e); err != nil {
			return nil, err
		}
		logf("capacity of POST /chat: %.2f req/s (median %v per request, one at a time)", rep.capacity, rep.serviceTime.Round(time.Millisecond))
	}

	type plan struct {
		kind           endpointKind
		rate, multiple float64
	}
	var plans []plan
	for _, m := range o.multiples {
		plans = append(plans, plan{cpuEndpoint, m * rep.capacity, m})
	}
	for _, r := range o.ioRates {
		plans = append(plans, plan{ioEndpoint, r, 0})
	}
	for _, p := range plans {
		for _, t := range rep.targets {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			c, err := back.cell(ctx, e, o, p.kind, p.rate, t)
			if err != nil {
				return nil, fmt.Errorf("%s at %.1f req/s through %s: %w", p.kind.key, p.rate, t.key, err)
			}
			c.multiple = p.multiple
			rep.cells = append(rep.cells, c)
			logf("%s", c.summary())
		}
	}
	rep.loadEnd = loadAvg()
	rep.took = time.Since(began)
	return rep, nil
}

// noBytecode keeps Python from writing __pycache__ beside overload_app.py, in the source tree.
const noBytecode = "PYTHONDONTWRITEBYTECODE=1"

// backend is how the overload backend is started: a fresh one for every cell.
type backend struct {
	python, dir, module string
	env                 []string
}

func (b backend) start(ctx context.Context, e *env, name string, extra ...string) (*proc, string, error) {
	return e.runUvicorn(ctx, b.python, b.dir, b.module, name, b.env, extra...)
}

// calibrate starts a backend and measures its CPU-bound endpoint's capacity, one request at a
// time.
func (b backend) calibrate(ctx context.Context, e *env) (float64, time.Duration, error) {
	up, base, err := startRetrying(ctx, e, func() (*proc, string, error) { return b.start(ctx, e, "uvicorn-calibrate") })
	if err != nil {
		return 0, 0, err
	}
	defer e.ps.stop(up)
	client := overloadClient()
	defer client.CloseIdleConnections()
	return calibrate(ctx, client, overloadRequest{url: base + cpuEndpoint.path, timeout: 30 * time.Second}, 15)
}

// cell runs one endpoint at one rate through one target, with a backend and a proxy started
// for it and stopped after it.
func (b backend) cell(ctx context.Context, e *env, o overloadOpts, kind endpointKind, rate float64, t overloadTarget) (overloadCell, error) {
	c := overloadCell{kind: kind, rate: rate, target: t.key}
	began := time.Now()
	up, upBase, err := startRetrying(ctx, e, func() (*proc, string, error) { return b.start(ctx, e, "uvicorn-"+t.key, t.backendArgs...) })
	if err != nil {
		return c, err
	}
	defer e.ps.stop(up)
	gw, base, err := startRetrying(ctx, e, func() (*proc, string, error) { return t.start(ctx, e, upBase) })
	if err != nil {
		return c, err
	}
	if gw != nil {
		defer e.ps.stop(gw)
	}
	c.idleRSS, _ = vmRSS(up.pid())

	var (
		readyDone = make(chan readyStats, 1)
		stopReady = func() {}
	)
	if t.hfgate {
		rctx, cancel := context.WithCancel(ctx)
		stopReady = cancel
		go func() { readyDone <- pollReady(rctx, base+"/ready", 250*time.Millisecond) }()
	}
	client := overloadClient()
	outs := loadCell(ctx, client, overloadRequest{url: base + kind.path, timeout: o.timeout},
		pacedOpts{rate: rate, duration: o.duration})
	client.CloseIdleConnections()
	if t.hfgate {
		stopReady()
		st := <-readyDone
		c.ready = &st
	}
	if ctx.Err() != nil {
		return c, ctx.Err()
	}
	c.peakRSS = vmHWM(up.pid())
	select {
	case <-up.done:
		c.died = true
	default:
	}
	c.stats = summarize(outs)
	c.wall = time.Since(began)
	return c, nil
}

// startRetrying calls start up to three times until it succeeds, stopping what a failed
// attempt left running. A port that freePort found free can be taken before the process binds
// it, and the load's thousands of outgoing connections draw their local ports from the same
// range: a start then fails with "address already in use", and a new port does it.
func startRetrying(ctx context.Context, e *env, start func() (*proc, string, error)) (*proc, string, error) {
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		var p *proc
		var base string
		if p, base, err = start(); err == nil {
			return p, base, nil
		}
		if p != nil {
			e.ps.stop(p)
		}
		if ctx.Err() != nil {
			return nil, "", ctx.Err()
		}
		e.logf("start failed (attempt %d of 3): %v", attempt, err)
	}
	return nil, "", err
}

// summary is the cell in one log line.
func (c overloadCell) summary() string {
	s := c.stats
	line := fmt.Sprintf("%s %.1f req/s %s: 200 %d/%d (p99 %s), refused %s (%.0f%% within 1 s), timed out %d, 504 %d, other %s, backend peak %.0f MB",
		c.kind.key, c.rate, c.target, s.ok, s.offered, fmtDur(s.p99), s.refusedCell(), s.fastShare(), s.timeouts, s.gw504, s.otherCell(), mb(c.peakRSS))
	if c.ready != nil {
		line += ", /ready " + c.ready.cell()
	}
	return line + fmt.Sprintf(" (%v)", c.wall.Round(100*time.Millisecond))
}

// vmHWM reads VmHWM (the peak resident set size) from /proc/<pid>/status, in bytes.
func vmHWM(pid int) int64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range splitLines(string(raw)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(v), "%d", &kb)
			return kb << 10
		}
	}
	return 0
}

// hfgateVersion returns the binary's version line and whether its help names
// UPSTREAM_CONCURRENCY (a build that does not know it ignores it).
func hfgateVersion(bin string) (string, bool) {
	v, _ := exec.Command(bin, "--version").CombinedOutput()
	help, _ := exec.Command(bin, "--help").CombinedOutput()
	return strings.TrimSpace(string(v)), strings.Contains(string(help), "UPSTREAM_CONCURRENCY")
}

// pythonVersion returns module's __version__ under python, or "?".
func pythonVersion(python, module string) string {
	out, err := exec.Command(python, "-c", "import "+module+"; print("+module+".__version__)").Output()
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(out))
}
