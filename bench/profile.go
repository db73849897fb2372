package main

import (
	"context"
	"debug/elf"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// profileOpts are `hfbench profile`'s flags.
type profileOpts struct {
	target, upstream, out, hfgate, src, example, python string
	rate                                                float64
	duration                                            time.Duration
	freq, conns                                         int
}

// runProfile is `hfbench profile`: one gateway in front of one upstream under a paced load,
// profiled from outside with `perf record -g -p PID` (Linux perf; Go keeps frame pointers, so
// perf walks Go stacks). The gateway gets no profiling endpoint: the binary profiled is the
// production code, built with its symbols.
func runProfile(ctx context.Context, args []string, stderr io.Writer) int {
	var o profileOpts
	fs := flag.NewFlagSet("hfbench profile", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.target, "target", "hfgate", "gateway to profile: hfgate, caddy or go-line")
	fs.StringVar(&o.upstream, "upstream", "uvicorn", "upstream behind it: uvicorn (the example backend, POST /chat) or go (GET /json)")
	fs.Float64Var(&o.rate, "rate", 1000, "paced request rate, req/s")
	fs.DurationVar(&o.duration, "duration", 30*time.Second, "profile length (the load runs 3 s longer: warm-up and margin)")
	fs.StringVar(&o.out, "out", "", "directory for perf.data, report.txt, areas.md and the processes' logs (required)")
	fs.StringVar(&o.hfgate, "hfgate", "", "hfgate binary with symbols (empty: go build -trimpath from -src, without make build's -s -w)")
	fs.StringVar(&o.src, "src", "..", "the hfgate source tree, to build from")
	fs.StringVar(&o.example, "example", "../examples/chatbot", "the example FastAPI backend's directory")
	fs.StringVar(&o.python, "python", "/usr/bin/python3", "Python with fastapi and uvicorn")
	fs.IntVar(&o.freq, "freq", 2000, "perf sampling frequency, Hz")
	fs.IntVar(&o.conns, "conns", 64, "most requests outstanding at once")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if o.out == "" || !(o.rate > 0) || o.duration < time.Second || o.duration > 10*time.Minute {
		fmt.Fprintln(stderr, "hfbench profile: -out is required, -rate > 0, -duration in [1s, 10m]")
		return 2
	}
	logf := stampLogger(stderr, "hfbench profile")
	if err := profile(ctx, o, logf); err != nil {
		logf("error: %v", err)
		return 1
	}
	return 0
}

func profile(ctx context.Context, o profileOpts, logf func(string, ...any)) error {
	perf, err := exec.LookPath("perf")
	if err != nil {
		return fmt.Errorf("perf not found (Debian: apt-get install -y linux-perf): %w", err)
	}
	dir, err := filepath.Abs(o.out)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	e := &env{dir: dir, self: self, ps: newProcs(), logf: logf}
	defer e.ps.stopAll()

	var up *proc
	var req pacedRequest
	switch o.upstream {
	case "go":
		if err := e.startUpstream(ctx); err != nil {
			return err
		}
		up, req = e.upProc, pacedRequest{url: "/json"}
	case "uvicorn":
		p, base, err := e.startUvicorn(ctx, o.python, o.example, "uvicorn")
		if err != nil {
			return err
		}
		e.upstream, up, req = base, p, pacedRequest{url: "/chat", body: chatBody}
	default:
		return fmt.Errorf("-upstream %q: want go or uvicorn", o.upstream)
	}
	var gw *proc
	var base string
	switch o.target {
	case "hfgate":
		if e.hfgate, err = symbolBinary(ctx, o, dir, logf); err != nil {
			return err
		}
		gw, base, err = e.startHfgate(ctx, "hfgate", e.upstream)
	case "caddy":
		gw, base, err = e.startCaddy(ctx, "caddy", strings.TrimPrefix(e.upstream, "http://"))
		logf("note: Debian's caddy is stripped: perf names only the kernel's functions in it")
	case "go-line":
		gw, base, err = e.startGoLine(ctx, "goline", e.upstream)
	default:
		return fmt.Errorf("-target %q: want hfgate, caddy or go-line", o.target)
	}
	if err != nil {
		return err
	}
	req.url = base + req.url
	client := newPacedClient(o.conns)
	defer client.CloseIdleConnections()

	// The load runs 1 s before perf starts and 2 s after it should have stopped; requests and
	// CPU are counted over perf's own run.
	var served atomic.Int64
	loadDone := make(chan pacedResult, 1)
	lctx, cancel := context.WithTimeout(ctx, o.duration+15*time.Second)
	defer cancel()
	go func() {
		loadDone <- runPaced(lctx, pacedOpts{rate: o.rate, duration: o.duration + 3*time.Second, maxInFlight: o.conns}, func(ctx context.Context) error {
			err := req.do(ctx, client)
			if err == nil {
				served.Add(1)
			}
			return err
		})
	}()
	select {
	case <-time.After(time.Second):
	case <-ctx.Done():
		return ctx.Err()
	}
	data := filepath.Join(dir, "perf.data")
	cmd := exec.CommandContext(lctx, perf, "record", "-q", "-F", strconv.Itoa(o.freq), "-e", "cpu-clock", "-g",
		"-p", strconv.Itoa(gw.pid()), "-o", data, "--", "sleep", strconv.FormatFloat(o.duration.Seconds(), 'f', 3, 64))
	logf("%s in front of %s at %g req/s: perf record -g -p %d for %v ...", o.target, o.upstream, o.rate, gw.pid(), o.duration)
	n0, gwCPU0, upCPU0 := served.Load(), readGroup(gw.pid()).cpu, readGroup(up.pid()).cpu
	out, err := cmd.CombinedOutput()
	n1, gwCPU1, upCPU1 := served.Load(), readGroup(gw.pid()).cpu, readGroup(up.pid()).cpu
	if err != nil {
		return fmt.Errorf("perf record: %w: %s", err, out)
	}
	res := <-loadDone
	requests := n1 - n0
	summary := fmt.Sprintf("%s in front of %s, paced at %g req/s; %d requests answered during the %v profile (load: %d failed, %d not sent); CPU per request over it: %s %.1f µs, %s %.1f µs (process CPU clocks)",
		o.target, o.upstream, o.rate, requests, o.duration, res.failed, res.missed,
		o.target, float64(perRequest(gwCPU0, gwCPU1, requests))/1e3, o.upstream, float64(perRequest(upCPU0, upCPU1, requests))/1e3)
	logf("%s", summary)

	report := filepath.Join(dir, "report.txt")
	rep, err := exec.CommandContext(ctx, perf, "report", "-i", data, "--stdio", "--no-children", "--sort", "dso,sym", "-g", "none", "--percent-limit", "0.3").Output()
	if err != nil {
		return fmt.Errorf("perf report: %w", err)
	}
	if err := os.WriteFile(report, rep, 0o644); err != nil {
		return err
	}
	script := exec.CommandContext(ctx, perf, "script", "-i", data, "-F", "tid,period,ip,sym")
	stdout, err := script.StdoutPipe()
	if err != nil {
		return err
	}
	if err := script.Start(); err != nil {
		return fmt.Errorf("perf script: %w", err)
	}
	tables, perr := perfAreas(stdout, requests)
	if err := script.Wait(); err != nil {
		return fmt.Errorf("perf script: %w", err)
	}
	if perr != nil {
		return perr
	}
	md := fmt.Sprintf("%s.\n\nperf record -F %d -e cpu-clock -g -p PID (all threads); areas from `perf script` call chains (bench/perfareas.go); µs per request answered.\n\n%s",
		summary, o.freq, tables)
	if err := os.WriteFile(filepath.Join(dir, "areas.md"), []byte(md), 0o644); err != nil {
		return err
	}
	fmt.Println(md)
	fmt.Println("Top symbols (perf report --no-children --sort dso,sym):")
	lines := 0
	for l := range strings.SplitSeq(string(rep), "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		fmt.Println(l)
		if lines++; lines == 25 {
			break
		}
	}
	logf("written: %s, %s, %s", data, report, filepath.Join(dir, "areas.md"))
	return nil
}

// symbolBinary returns the hfgate binary to profile: -hfgate if given (it must carry a symbol
// table), else one built from -src with `go build -trimpath` (make build strips it with -s -w,
// and perf cannot name Go functions without .symtab).
func symbolBinary(ctx context.Context, o profileOpts, dir string, logf func(string, ...any)) (string, error) {
	bin := o.hfgate
	if bin == "" {
		src, err := filepath.Abs(o.src)
		if err != nil {
			return "", err
		}
		bin = filepath.Join(dir, "hfgate-sym")
		logf("go build -trimpath -o %s (in %s)", bin, src)
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin, ".")
		cmd.Dir = src
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("build hfgate with symbols: %w: %s", err, out)
		}
	}
	f, err := elf.Open(bin)
	if err != nil {
		return "", fmt.Errorf("hfgate binary: %w", err)
	}
	defer f.Close()
	if f.Section(".symtab") == nil {
		return "", errors.New(bin + " has no symbol table (built with -s?): perf could not name its functions; leave -hfgate empty to build one")
	}
	return bin, nil
}
