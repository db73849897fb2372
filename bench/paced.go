package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// pacedGateways are the gateways compared at fixed rates, in table order.
var pacedGateways = []string{"hfgate", "caddy", "go-line"}

// hfgateVariant is hfgate with extra environment, measured beside the default in the paced
// rounds (runtime settings: GOGC, GOMAXPROCS, ...); its key is "hfgate+name".
type hfgateVariant struct {
	name string
	env  []string
}

func (v hfgateVariant) key() string { return "hfgate+" + v.name }

// parseVariants reads "name=ENV=V[,ENV=V];name2=...".
func parseVariants(s string) ([]hfgateVariant, error) {
	var vs []hfgateVariant
	for item := range strings.SplitSeq(s, ";") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, envs, ok := strings.Cut(item, "=")
		if !ok || name == "" || strings.ContainsAny(name, " ,") {
			return nil, fmt.Errorf("variant %q: want name=ENV=V[,ENV=V]", item)
		}
		v := hfgateVariant{name: name}
		for kv := range strings.SplitSeq(envs, ",") {
			if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
				return nil, fmt.Errorf("variant %q: %q is not ENV=V", name, kv)
			}
			v.env = append(v.env, kv)
		}
		vs = append(vs, v)
	}
	return vs, nil
}

// pacedKeys are the gateway keys of the paced table, in order: the peers, then the variants.
func (r *report) pacedKeys() []string {
	keys := slices.Clone(pacedGateways)
	for _, v := range r.opts.pacedVariants {
		keys = append(keys, v.key())
	}
	return keys
}

// pacedUpstreams are the upstreams of the paced rounds, in table order, with what is sent.
var pacedUpstreams = []struct{ key, about string }{
	{"go", "Go upstream, `GET /json`"},
	{"uvicorn", "uvicorn example backend, `POST /chat`"},
}

// pacedTarget is one gateway in front of one upstream in the paced rounds.
type pacedTarget struct {
	upstream, key string // "go" or "uvicorn"; "hfgate", "caddy", "go-line" or "hfgate+variant"
	req           pacedRequest
	gw, up        *proc  // measured: the gateway, and the upstream behind it
	upBase        string // the upstream's base URL (uvicorn targets)
	client        *http.Client
}

// pacedID is the key of one gateway, upstream and rate in report.pacedRounds.
func pacedID(upstream string, rate float64, key string) string {
	return fmt.Sprintf("%s %g %s", upstream, rate, key)
}

// paced runs the fixed-rate rounds: every gateway in front of the Go upstream (the throughput
// targets already running) and in front of the example backend under uvicorn (started here),
// at each rate, interleaved: in each round every gateway and rate gets one run, the order of
// both rotated from round to round.
func (r *report) paced(ctx context.Context, e *env, logf func(string, ...any)) error {
	o := r.opts
	if len(o.pacedRates) == 0 || o.pacedRounds <= 0 {
		return nil
	}
	var pts, variants []*pacedTarget
	for _, k := range pacedGateways {
		if t := r.byKey(k); t != nil {
			pts = append(pts, &pacedTarget{upstream: "go", key: k, req: pacedRequest{url: t.base + "/json"}, gw: t.proc, up: e.upProc})
		}
	}
	uv, err := r.pacedUvicorn(ctx, e, logf)
	// The backend and the gateways in front of it (and the variants) are stopped when the phase
	// ends, so that the start-up measurements after it run beside no more processes than before.
	defer func() {
		for _, pt := range append(uv, variants...) {
			e.ps.stop(pt.gw)
		}
		if len(uv) > 0 {
			e.ps.stop(uv[0].up)
		}
	}()
	if err != nil {
		return err
	}
	for _, v := range o.pacedVariants {
		gw, base, err := e.startHfgate(ctx, "hfgate-"+v.name, e.upstream, v.env...)
		if err != nil {
			return err
		}
		variants = append(variants, &pacedTarget{upstream: "go", key: v.key(), req: pacedRequest{url: base + "/json"}, gw: gw, up: e.upProc})
		if len(uv) > 0 {
			gw, base, err := e.startHfgate(ctx, "hfgate-"+v.name+"-uvicorn", strings.TrimSuffix(uv[0].upBase, "/"), v.env...)
			if err != nil {
				return err
			}
			variants = append(variants, &pacedTarget{upstream: "uvicorn", key: v.key(), req: pacedRequest{url: base + "/chat", body: chatBody}, gw: gw, up: uv[0].up})
		}
	}
	pts = append(pts, variants...)
	pts = append(pts, uv...)
	if len(pts) == 0 {
		r.pacedErr = "no gateway to measure (-only left out hfgate, caddy and go-line)"
		return nil
	}
	for _, pt := range pts {
		pt.client = newPacedClient(o.conns)
		defer pt.client.CloseIdleConnections()
	}
	// Warm-up: open the connections and let each gateway's pools fill, unmeasured.
	for _, pt := range pts {
		if _, err := pacedLoad(ctx, pt.client, pt.req, pacedOpts{rate: o.pacedRates[0], duration: time.Second, maxInFlight: o.conns}, nil, nil); err != nil {
			return fmt.Errorf("warm-up %s in front of %s: %w", pt.key, pt.upstream, err)
		}
	}
	for round := range o.pacedRounds {
		res := map[string]wrkResult{}
		for j := range o.pacedRates {
			rate := o.pacedRates[(j+round)%len(o.pacedRates)]
			po := pacedOpts{rate: rate, duration: o.pacedDuration, maxInFlight: o.conns}
			for i := range pts {
				pt := pts[(i+round)%len(pts)]
				w, err := pacedLoad(ctx, pt.client, pt.req, po, pt.gw, pt.up)
				if err != nil {
					return fmt.Errorf("%s in front of %s at %g req/s: %w", pt.key, pt.upstream, rate, err)
				}
				res[pacedID(pt.upstream, rate, pt.key)] = w
			}
		}
		r.pacedRounds = append(r.pacedRounds, res)
		logf("paced round %d/%d: %s", round+1, o.pacedRounds, summarizePaced(pts, o.pacedRates, res))
	}
	return nil
}

// pacedUvicorn starts the example backend and the gateways in front of it, or notes why not.
// On an error, what it started is stopped with the harness's other processes at the end.
func (r *report) pacedUvicorn(ctx context.Context, e *env, logf func(string, ...any)) ([]*pacedTarget, error) {
	o := r.opts
	up, base, err := e.startUvicorn(ctx, o.python, o.example, "uvicorn-paced")
	if errors.Is(err, errNoUvicorn) {
		r.pacedErr = "uvicorn rows skipped: " + err.Error()
		logf("paced: %s", r.pacedErr)
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var pts []*pacedTarget
	add := func(key string, gw *proc, gwBase string) {
		pts = append(pts, &pacedTarget{upstream: "uvicorn", key: key, req: pacedRequest{url: gwBase + "/chat", body: chatBody}, gw: gw, up: up, upBase: base})
	}
	if r.byKey("hfgate") != nil {
		gw, gwBase, err := e.startHfgate(ctx, "hfgate-paced-uvicorn", base)
		if err != nil {
			return nil, err
		}
		add("hfgate", gw, gwBase)
	}
	if r.byKey("caddy") != nil {
		gw, gwBase, err := e.startCaddy(ctx, "caddy-paced-uvicorn", strings.TrimPrefix(base, "http://"))
		if err != nil {
			return nil, err
		}
		add("caddy", gw, gwBase)
	}
	if r.byKey("go-line") != nil {
		gw, gwBase, err := e.startGoLine(ctx, "goline-paced-uvicorn", base)
		if err != nil {
			return nil, err
		}
		add("go-line", gw, gwBase)
	}
	return pts, nil
}

func summarizePaced(pts []*pacedTarget, rates []float64, res map[string]wrkResult) string {
	var b strings.Builder
	for _, rate := range slices.Sorted(slices.Values(rates)) {
		fmt.Fprintf(&b, "@%g:", rate)
		for _, pt := range pts {
			fmt.Fprintf(&b, " %s/%s %.0f µs", pt.key, pt.upstream, cpu(res[pacedID(pt.upstream, rate, pt.key)]))
		}
		b.WriteString("  ")
	}
	return strings.TrimSpace(b.String())
}

// gwPerUp is a run's gateway CPU per request over its upstream's.
func gwPerUp(w wrkResult) float64 {
	if w.upPerOp <= 0 {
		return 0
	}
	return float64(w.cpuPerOp) / float64(w.upPerOp)
}

// pacedMarkdown renders the fixed-rate table.
func (r *report) pacedMarkdown(p func(string, ...any)) {
	o := r.opts
	if len(r.pacedRounds) == 0 {
		if r.pacedErr != "" {
			p("\nCPU per request at fixed rates: %s\n", r.pacedErr)
		}
		return
	}
	p("\n#### CPU per request at fixed rates\n\n")
	p("The regime a Space lives in: requests arrive at a moderate rate and the gateway idles between them, instead of being saturated as in the tables above. ")
	p("The harness's own open-loop load (request *i* sent at start + *i*/rate whatever the answers, up to %d outstanding; keep-alive), %v per gateway per rate per round, %d rounds, gateways and rates rotated each round; medians over rounds. ", o.conns, o.pacedDuration, len(r.pacedRounds))
	p("Latency counts from each request's scheduled send time. CPU per request is the process group's user+system time over the run (its CPU clock) divided by the requests answered; the backend's is the upstream's over the same run. ")
	p("\"vs Caddy\" and \"gateway/backend\" are medians of the per-run ratios (paired within a round). Errors include requests not sent because %d were outstanding.\n\n", o.conns)
	p("| upstream | req/s offered | gateway | CPU/req | vs Caddy | vs hfgate | backend CPU/req | gateway/backend | req/s | p50 | p99 | errors |\n|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, up := range pacedUpstreams {
		for _, rate := range slices.Sorted(slices.Values(o.pacedRates)) {
			caddyID, hfgateID := pacedID(up.key, rate, "caddy"), pacedID(up.key, rate, "hfgate")
			for _, k := range r.pacedKeys() {
				id := pacedID(up.key, rate, k)
				if _, ok := r.pacedRounds[0][id]; !ok {
					continue
				}
				vsCaddy, vsHfgate := "-", "-"
				if _, ok := r.pacedRounds[0][caddyID]; ok {
					vsCaddy = fmt.Sprintf("%.2fx", pairedRatio(r.pacedRounds, id, caddyID, cpu))
				}
				if _, ok := r.pacedRounds[0][hfgateID]; ok && k != "hfgate" && strings.HasPrefix(k, "hfgate") {
					vsHfgate = fmt.Sprintf("%.2fx", pairedRatio(r.pacedRounds, id, hfgateID, cpu))
				}
				p("| %s | %g | %s | %.0f µs | %s | %s | %.0f µs | %.2fx | %.0f | %s | %s | %.0f |\n", up.about, rate, k,
					medianOf(r.pacedRounds, id, cpu), vsCaddy, vsHfgate, medianOf(r.pacedRounds, id, upCPU), medianOf(r.pacedRounds, id, gwPerUp),
					medianOf(r.pacedRounds, id, rps), fmtMs(medianOf(r.pacedRounds, id, p50)), fmtMs(medianOf(r.pacedRounds, id, p99)),
					sumOf(r.pacedRounds, id, errs))
			}
		}
	}
	if r.pacedErr != "" {
		p("\n%s\n", r.pacedErr)
	}
	p("\n<details><summary>Per-round CPU per request (µs)</summary>\n\n| round |")
	var ids []string
	for _, up := range pacedUpstreams {
		for _, rate := range slices.Sorted(slices.Values(o.pacedRates)) {
			for _, k := range r.pacedKeys() {
				id := pacedID(up.key, rate, k)
				if _, ok := r.pacedRounds[0][id]; ok {
					ids = append(ids, id)
					p(" %s |", id)
				}
			}
		}
	}
	p("\n|---|%s\n", strings.Repeat("---:|", len(ids)))
	for i, res := range r.pacedRounds {
		p("| %d |", i+1)
		for _, id := range ids {
			p(" %.0f |", cpu(res[id]))
		}
		p("\n")
	}
	p("\n</details>\n")
}

// parseRates reads a comma list of positive request rates ("200,1000").
func parseRates(s string) ([]float64, error) {
	var rates []float64
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		v, err := strconv.ParseFloat(f, 64)
		if err != nil || !(v > 0 && v <= 100000) {
			return nil, fmt.Errorf("rate %q: want a number of requests per second in (0, 100000]", f)
		}
		if slices.Contains(rates, v) {
			return nil, fmt.Errorf("rate %q given twice", f)
		}
		rates = append(rates, v)
	}
	return rates, nil
}
