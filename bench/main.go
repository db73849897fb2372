package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "upstream":
			if len(os.Args) != 3 {
				fatalf("usage: hfbench upstream ADDR")
			}
			if err := runUpstream(os.Args[2]); err != nil {
				fatalf("upstream: %v", err)
			}
			return
		case "goline":
			if len(os.Args) != 4 {
				fatalf("usage: hfbench goline ADDR UPSTREAM_URL")
			}
			if err := runGoLine(os.Args[2], os.Args[3]); err != nil {
				fatalf("goline: %v", err)
			}
			return
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	var code int
	switch {
	case len(os.Args) > 1 && os.Args[1] == "profile":
		code = runProfile(ctx, os.Args[2:], os.Stderr)
	case len(os.Args) > 1 && os.Args[1] == "overload":
		code = runOverload(ctx, os.Args[2:], os.Stdout, os.Stderr)
	default:
		code = run(ctx, os.Args[1:], os.Stderr)
	}
	stop()
	os.Exit(code)
}

// stampLogger returns a log function that writes time-stamped lines, prefixed with name, to w.
func stampLogger(w io.Writer, name string) func(string, ...any) {
	return func(format string, args ...any) {
		fmt.Fprintf(w, "%s %s: %s\n", time.Now().Format("15:04:05"), name, fmt.Sprintf(format, args...))
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "hfbench: "+format+"\n", args...)
	os.Exit(2)
}

// phaseNames are the harness's phases, in the order they run (-phases picks some).
var phaseNames = []string{"throughput", "sse", "streams", "uvicorn", "paced", "startup"}

// options are the harness's flags.
type options struct {
	hfgate, out, chart, example, python, command string
	rounds, conns, threads                       int
	duration                                     time.Duration
	sseRounds, streams, startupRuns              int
	uvicornRounds                                int
	quietLoad                                    float64
	quietWait                                    time.Duration
	keep                                         bool
	only, phases                                 string
	pacedRates                                   []float64
	pacedDuration                                time.Duration
	pacedRounds                                  int
	pacedVariants                                []hfgateVariant
}

func run(ctx context.Context, args []string, stderr io.Writer) int {
	var o options
	fs := flag.NewFlagSet("hfbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.hfgate, "hfgate", "../bin/hfgate", "hfgate binary (make build)")
	fs.StringVar(&o.out, "out", "", "markdown file to write the results into, between the bench:begin/end markers (empty: stdout only)")
	fs.StringVar(&o.chart, "chart", "", "PNG chart to write (empty: none)")
	fs.StringVar(&o.example, "example", "../examples/chatbot", "the example FastAPI backend's directory (empty: skip the uvicorn comparison)")
	fs.StringVar(&o.python, "python", "/usr/bin/python3", "Python with fastapi and uvicorn")
	fs.StringVar(&o.command, "command", "make bench", "the command to reproduce, as printed in the report")
	fs.IntVar(&o.rounds, "rounds", 7, "throughput rounds (all targets, interleaved, rotated each round)")
	fs.DurationVar(&o.duration, "duration", 3*time.Second, "wrk duration per target per round (whole seconds)")
	fs.IntVar(&o.conns, "conns", 64, "wrk connections")
	fs.IntVar(&o.threads, "threads", 1, "wrk threads")
	fs.IntVar(&o.sseRounds, "sse-rounds", 5, "event-stream delay rounds")
	fs.IntVar(&o.streams, "streams", 1000, "concurrent open event streams for the memory figure")
	fs.IntVar(&o.startupRuns, "startup-runs", 20, "start-up measurements")
	fs.IntVar(&o.uvicornRounds, "uvicorn-rounds", 5, "rounds against the example backend under uvicorn")
	fs.Float64Var(&o.quietLoad, "quiet-load", 0.7, "wait for the 1-minute load average to fall below this before starting")
	fs.DurationVar(&o.quietWait, "quiet-wait", time.Minute, "longest wait for a quiet machine (then run anyway, and say so)")
	fs.StringVar(&o.only, "only", "", "comma list of target names to run (direct always runs); empty: all")
	fs.Func("paced-rates", "comma list of fixed request rates (req/s) for the CPU-per-request rounds (default 200,1000)", func(s string) error {
		rates, err := parseRates(s)
		o.pacedRates = rates
		return err
	})
	fs.DurationVar(&o.pacedDuration, "paced-duration", 3*time.Second, "paced load per gateway per rate per round")
	fs.IntVar(&o.pacedRounds, "paced-rounds", 5, "fixed-rate rounds (0: none)")
	fs.Func("paced-variants", "hfgate variants added to the fixed-rate rounds, name=ENV=V[,ENV=V];... (e.g. gogc400=GOGC=400)", func(s string) error {
		vs, err := parseVariants(s)
		o.pacedVariants = vs
		return err
	})
	fs.StringVar(&o.phases, "phases", "", "comma list of phases to run ("+strings.Join(phaseNames, ",")+"); empty: all")
	fs.BoolVar(&o.keep, "keep", false, "keep the run's temporary directory (configs, logs) and print its path")
	o.pacedRates = []float64{200, 1000}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	for p := range strings.SplitSeq(o.phases, ",") {
		if p != "" && !slices.Contains(phaseNames, p) {
			fmt.Fprintf(stderr, "hfbench: -phases: unknown phase %q (want some of %s)\n", p, strings.Join(phaseNames, ","))
			return 2
		}
	}
	logf := stampLogger(stderr, "hfbench")
	rep, err := bench(ctx, o, logf)
	if err != nil {
		logf("error: %v", err)
		return 1
	}
	md := rep.markdown()
	fmt.Fprintln(os.Stdout, md)
	if o.chart != "" {
		if err := rep.writeChart(o.chart); err != nil {
			logf("chart: %v", err)
			return 1
		}
		logf("chart written to %s", o.chart)
	}
	if o.out != "" {
		if err := spliceReport(o.out, md); err != nil {
			logf("report: %v", err)
			return 1
		}
		logf("report written to %s", o.out)
	}
	return 0
}

// bench runs every phase and returns the results.
func bench(ctx context.Context, o options, logf func(string, ...any)) (*report, error) {
	began := time.Now()
	raiseNoFile(logf)
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	hfgate, err := filepath.Abs(o.hfgate)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(hfgate); err != nil {
		return nil, fmt.Errorf("hfgate binary: %w (run make build)", err)
	}
	dir, err := os.MkdirTemp("", "hfbench-")
	if err != nil {
		return nil, err
	}
	if o.keep {
		logf("keeping %s", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	// Make the directory usable by nginx's workers, which run as nobody when started as root.
	_ = os.Chmod(dir, 0o755)

	e := &env{dir: dir, self: self, hfgate: hfgate, ps: newProcs(), logf: logf}
	defer e.ps.stopAll()

	rep := &report{opts: o, date: began.UTC(), machine: machine(), versions: versions()}
	rep.loadStart, rep.quiet = waitQuiet(ctx, o.quietLoad, o.quietWait, logf)
	logf("load average %.2f at start (quiet: %v)", rep.loadStart, rep.quiet)
	rep.waited = time.Since(began)
	began = time.Now()
	rep.date = began.UTC()

	if err := e.startUpstream(ctx); err != nil {
		return nil, err
	}
	targets, err := e.startTargets(ctx, o.only)
	if err != nil {
		return nil, err
	}
	rep.targets = targets
	time.Sleep(time.Second)
	for _, t := range targets {
		t.idle = readGroup(t.proc.pid())
	}

	steps := []struct {
		name string
		run  func() error
	}{
		{"throughput", func() error { return rep.throughput(ctx, e, logf) }},
		{"sse", func() error { return rep.sseDelay(ctx, logf) }},
		{"streams", func() error { return rep.openStreams(ctx, logf) }},
		{"uvicorn", func() error { return rep.uvicorn(ctx, e, logf) }},
		{"paced", func() error { return rep.paced(ctx, e, logf) }},
		{"startup", func() error { return rep.startup(ctx, e, logf) }},
	}
	for _, s := range steps {
		if o.phases != "" && !slices.Contains(strings.Split(o.phases, ","), s.name) {
			continue
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		t0 := time.Now()
		logf("%s ...", s.name)
		if err := s.run(); err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
		logf("%s done in %v", s.name, time.Since(t0).Round(100*time.Millisecond))
	}
	rep.loadEnd = loadAvg()
	rep.took = time.Since(began)
	return rep, nil
}

// raiseNoFile raises the open-file limit for this process and its children: 1,000 open
// streams need 1,000 descriptors here, 2,000 in a proxy.
func raiseNoFile(logf func(string, ...any)) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return
	}
	want := uint64(16384)
	if lim.Cur >= want {
		return
	}
	nl := syscall.Rlimit{Cur: min(want, lim.Max), Max: lim.Max}
	if lim.Max < want {
		nl = syscall.Rlimit{Cur: want, Max: want} // needs root (CAP_SYS_RESOURCE)
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &nl); err != nil {
		nl = syscall.Rlimit{Cur: lim.Max, Max: lim.Max}
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &nl)
		logf("open-file limit raised to %d only (hard limit; 1,000 streams need ~4,000)", lim.Max)
	}
}

// machine describes the host for the report.
func machine() string {
	cpu := "unknown CPU"
	if raw, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range splitLines(string(raw)) {
			if k, v, ok := cut(line, ":"); ok && k == "model name" {
				cpu = v
				break
			}
		}
	}
	kernel := "?"
	if raw, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = string(trimSpace(raw))
	}
	mem := ""
	if raw, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range splitLines(string(raw)) {
			if k, v, ok := cut(line, ":"); ok && k == "MemTotal" {
				var kb int64
				fmt.Sscanf(v, "%d", &kb)
				mem = fmt.Sprintf(", %.0f GB RAM", float64(kb)/(1<<20))
			}
		}
	}
	return fmt.Sprintf("%d CPUs (%s)%s, Linux %s, %s/%s", runtime.NumCPU(), cpu, mem, kernel, runtime.GOOS, runtime.GOARCH)
}
