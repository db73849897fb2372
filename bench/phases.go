package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// report holds every measurement.
type report struct {
	opts      options
	date      time.Time
	machine   string
	versions  map[string]string
	loadStart float64
	loadEnd   float64
	quiet     bool
	took      time.Duration // the measurements, after the wait for a quiet machine
	waited    time.Duration
	targets   []*target

	rounds    []map[string]wrkResult // per round, per target key
	afterLoad map[string]groupStats  // memory after the throughput rounds
	logLines  int64                  // hfgate access log lines written during the run

	sse       map[string][]time.Duration // per-event delays, per target
	sseErrors map[string]string

	streamsRSS map[string]groupStats
	streamsErr map[string]string

	uvRounds []map[string]wrkResult // "direct", "hfgate"
	uvErr    string

	pacedRounds []map[string]wrkResult // per round, per pacedID
	pacedErr    string

	startups []startupResult
	caddyUp  []time.Duration
}

func (r *report) byKey(key string) *target {
	for _, t := range r.targets {
		if t.key == key {
			return t
		}
	}
	return nil
}

// throughput runs wrk against every throughput target, o.rounds times, the order rotated each
// round so that drift in the machine's background load hits all targets alike.
func (r *report) throughput(ctx context.Context, e *env, logf func(string, ...any)) error {
	var ts []*target
	for _, t := range r.targets {
		if t.throughput {
			ts = append(ts, t)
		}
	}
	o := wrkOpts{threads: r.opts.threads, conns: r.opts.conns, duration: r.opts.duration}
	warm := o
	warm.duration = time.Second
	for _, t := range ts {
		if _, err := runWrk(ctx, t.base+"/json", warm, nil); err != nil {
			return err
		}
	}
	hfLog := filepath.Join(e.dir, "hfgate.log")
	linesBefore := countLines(hfLog)
	for round := range r.opts.rounds {
		res := map[string]wrkResult{}
		for i := range ts {
			t := ts[(i+round)%len(ts)]
			w, err := runWrk(ctx, t.base+"/json", o, t.proc)
			if err != nil {
				return err
			}
			res[t.key] = w
		}
		r.rounds = append(r.rounds, res)
		logf("round %d/%d: %s", round+1, r.opts.rounds, summarizeRound(ts, res))
	}
	r.logLines = countLines(hfLog) - linesBefore
	time.Sleep(time.Second)
	r.afterLoad = map[string]groupStats{}
	for _, t := range r.targets {
		r.afterLoad[t.key] = readGroup(t.proc.pid())
	}
	return nil
}

func summarizeRound(ts []*target, res map[string]wrkResult) string {
	var b strings.Builder
	for _, t := range ts {
		fmt.Fprintf(&b, "%s %.0f  ", t.key, res[t.key].rps)
	}
	return b.String()
}

func countLines(path string) int64 {
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return int64(strings.Count(string(raw), "\n"))
}

// sseDelay measures per-event delay through every event-stream target.
func (r *report) sseDelay(ctx context.Context, logf func(string, ...any)) error {
	o := sseOpts{streams: 8, events: 25, interval: 5 * time.Millisecond}
	var ts []*target
	for _, t := range r.targets {
		if t.sse {
			ts = append(ts, t)
		}
	}
	r.sse, r.sseErrors = map[string][]time.Duration{}, map[string]string{}
	tr := &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	for round := range r.opts.sseRounds {
		for i := range ts {
			t := ts[(i+round)%len(ts)]
			d, err := sseRound(ctx, client, t.base, o)
			r.sse[t.key] = append(r.sse[t.key], d...)
			if err != nil {
				r.sseErrors[t.key] = err.Error()
				logf("sse %s: %v", t.key, err)
			}
		}
	}
	return nil
}

// openStreams holds r.opts.streams streams open through each target in turn and reads its RSS.
func (r *report) openStreams(ctx context.Context, logf func(string, ...any)) error {
	r.streamsRSS, r.streamsErr = map[string]groupStats{}, map[string]string{}
	if r.opts.streams <= 0 {
		return nil
	}
	for _, t := range r.targets {
		if !t.streams {
			continue
		}
		n, err := openStreams(ctx, t.base, r.opts.streams, func() {
			r.streamsRSS[t.key] = readGroup(t.proc.pid())
		})
		if err != nil {
			r.streamsErr[t.key] = err.Error()
			logf("streams %s: %v", t.key, err)
		} else {
			logf("streams %s: %d open, RSS %.1f MB", t.key, n, mb(r.streamsRSS[t.key].rss))
		}
		// Let the closes propagate before the next target.
		time.Sleep(500 * time.Millisecond)
	}
	return nil
}

// uvicorn compares the example backend under uvicorn, direct and through hfgate, on POST /chat.
func (r *report) uvicorn(ctx context.Context, e *env, logf func(string, ...any)) error {
	if r.opts.example == "" || r.opts.uvicornRounds <= 0 {
		r.uvErr = "skipped (-example empty)"
		return nil
	}
	up, base, err := e.startUvicorn(ctx, r.opts.python, r.opts.example, "uvicorn")
	if errors.Is(err, errNoUvicorn) {
		r.uvErr = "skipped: " + err.Error()
		logf("uvicorn: %s", r.uvErr)
		return nil
	}
	if err != nil {
		return err
	}
	defer e.ps.stop(up)
	gw, gwBase, err := e.startHfgate(ctx, "hfgate-uvicorn", base)
	if err != nil {
		return err
	}
	defer e.ps.stop(gw)
	gw2, gw2Base, err := e.startHfgate(ctx, "hfgate-2p-uvicorn", base, "GOMAXPROCS=2")
	if err != nil {
		return err
	}
	defer e.ps.stop(gw2)
	script := filepath.Join(e.dir, "chat.lua")
	lua := `wrk.method = "POST"
wrk.body = '` + chatBody + `'
wrk.headers["Content-Type"] = "application/json"
`
	if err := os.WriteFile(script, []byte(lua), 0o644); err != nil {
		return err
	}
	o := wrkOpts{threads: r.opts.threads, conns: r.opts.conns, duration: r.opts.duration, script: script}
	warm := o
	warm.duration = time.Second
	pairs := []struct {
		key, url string
		p        *proc
	}{{"direct", base + "/chat", up}, {"hfgate", gwBase + "/chat", gw}, {"hfgate-2p", gw2Base + "/chat", gw2}}
	for _, pr := range pairs {
		if _, err := runWrk(ctx, pr.url, warm, nil); err != nil {
			return err
		}
	}
	for round := range r.opts.uvicornRounds {
		res := map[string]wrkResult{}
		for i := range pairs {
			pr := pairs[(i+round)%len(pairs)]
			upBefore := readGroup(up.pid())
			w, err := runWrk(ctx, pr.url, o, pr.p)
			if err != nil {
				return err
			}
			w.upPerOp = perRequest(upBefore.cpu, readGroup(up.pid()).cpu, w.requests)
			res[pr.key] = w
		}
		r.uvRounds = append(r.uvRounds, res)
		logf("uvicorn round %d: direct %.0f, hfgate %.0f, hfgate-2p %.0f req/s", round+1, res["direct"].rps, res["hfgate"].rps, res["hfgate-2p"].rps)
	}
	return nil
}

// startup measures hfgate's (and, for reference, Caddy's) start-up.
func (r *report) startup(ctx context.Context, e *env, logf func(string, ...any)) error {
	if r.opts.startupRuns <= 0 {
		return nil
	}
	var err error
	if r.startups, err = e.measureStartup(ctx, r.opts.startupRuns); err != nil {
		return err
	}
	if r.byKey("caddy") != nil {
		if r.caddyUp, err = e.measureCaddyStartup(ctx, r.opts.startupRuns); err != nil {
			logf("caddy start-up: %v", err)
		}
	}
	return nil
}

// median of the per-round values f(res) for target key.
func medianOf(rounds []map[string]wrkResult, key string, f func(wrkResult) float64) float64 {
	var v []float64
	for _, res := range rounds {
		if w, ok := res[key]; ok {
			v = append(v, f(w))
		}
	}
	return median(v)
}

// ratioOf is the median over rounds of the per-round ratio of key's req/s to ref's.
func ratioOf(rounds []map[string]wrkResult, key, ref string) float64 {
	return pairedRatio(rounds, key, ref, rps)
}

// pairedRatio is the median over rounds of f(key's result) / f(ref's result) in the same
// round: a paired comparison, which drift in the machine's load between rounds disturbs less
// than a ratio of medians.
func pairedRatio(rounds []map[string]wrkResult, key, ref string, f func(wrkResult) float64) float64 {
	var v []float64
	for _, res := range rounds {
		a, ok1 := res[key]
		b, ok2 := res[ref]
		if ok1 && ok2 && f(b) > 0 {
			v = append(v, f(a)/f(b))
		}
	}
	return median(v)
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }
