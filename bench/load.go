package main

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// wrkResult is one wrk run against one target.
type wrkResult struct {
	rps      float64
	p50, p99 time.Duration
	requests int64
	errors   int64 // socket errors plus non-2xx/3xx answers
	cpuPerOp time.Duration
	upPerOp  time.Duration // the upstream's CPU per request, where measured (uvicorn)
}

// wrkOpts are the load's parameters.
type wrkOpts struct {
	threads, conns int
	duration       time.Duration
	script         string // optional Lua script (POST bodies)
}

// runWrk runs wrk against url and, when p is set, measures p's process group's CPU time over
// the run.
func runWrk(ctx context.Context, url string, o wrkOpts, p *proc) (wrkResult, error) {
	args := []string{
		"-t" + strconv.Itoa(o.threads), "-c" + strconv.Itoa(o.conns),
		"-d" + strconv.Itoa(int(o.duration.Seconds())) + "s", "--latency", "--timeout", "5s",
	}
	if o.script != "" {
		args = append(args, "-s", o.script)
	}
	args = append(args, url)
	// Bounded: wrk's own duration plus a margin.
	ctx, cancel := context.WithTimeout(ctx, o.duration+15*time.Second)
	defer cancel()
	var before groupStats
	if p != nil {
		before = readGroup(p.pid())
	}
	out, err := exec.CommandContext(ctx, "wrk", args...).CombinedOutput()
	var after groupStats
	if p != nil {
		after = readGroup(p.pid())
	}
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk %s: %w: %s", url, err, out)
	}
	r, err := parseWrk(string(out))
	if err != nil {
		return r, fmt.Errorf("wrk %s: %w", url, err)
	}
	if p != nil {
		r.cpuPerOp = perRequest(before.cpu, after.cpu, r.requests)
	}
	return r, nil
}

// parseWrk reads wrk's --latency report.
func parseWrk(out string) (wrkResult, error) {
	var r wrkResult
	var haveRPS bool
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 2 && f[0] == "Requests/sec:":
			r.rps, _ = strconv.ParseFloat(f[1], 64)
			haveRPS = true
		case len(f) == 2 && f[0] == "50%":
			r.p50, _ = parseWrkDuration(f[1])
		case len(f) == 2 && f[0] == "99%":
			r.p99, _ = parseWrkDuration(f[1])
		case len(f) >= 3 && f[1] == "requests" && f[2] == "in":
			r.requests, _ = strconv.ParseInt(f[0], 10, 64)
		case len(f) >= 2 && f[0] == "Socket" && f[1] == "errors:":
			// Socket errors: connect 0, read 0, write 0, timeout 0
			for i := 2; i+1 < len(f); i += 2 {
				n, _ := strconv.ParseInt(strings.TrimSuffix(f[i+1], ","), 10, 64)
				r.errors += n
			}
		case len(f) >= 5 && f[0] == "Non-2xx":
			n, _ := strconv.ParseInt(f[len(f)-1], 10, 64)
			r.errors += n
		}
	}
	if !haveRPS {
		return r, fmt.Errorf("no Requests/sec in wrk output: %q", out)
	}
	return r, nil
}

// parseWrkDuration parses wrk's "123.45us", "1.23ms", "2.00s", "1.00m".
func parseWrkDuration(s string) (time.Duration, error) {
	units := []struct {
		suffix string
		unit   time.Duration
	}{{"us", time.Microsecond}, {"ms", time.Millisecond}, {"s", time.Second}, {"m", time.Minute}}
	for _, u := range units {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return 0, err
			}
			return time.Duration(f * float64(u.unit)), nil
		}
	}
	return 0, fmt.Errorf("unknown duration %q", s)
}
