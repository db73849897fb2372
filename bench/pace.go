package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"
)

// The harness paces its own load rather than using wrk or `hey -q`. Both of those are closed
// loops: a client sends its next request only after the previous answer, so when a target is
// slow the offered rate drops with it, and the slow period is counted once instead of for every
// request that should have been sent (coordinated omission). CPU per request depends on the
// rate (at a low rate a gateway idles and wakes once per request), so the rate must be the
// same for every target whatever its latency: an open loop sends request i at start + i/rate,
// whether or not earlier ones have been answered, and measures latency from that scheduled
// time.

// pacedOpts are an open-loop load's parameters.
type pacedOpts struct {
	rate     float64       // requests offered per second; > 0
	duration time.Duration // how long they are offered
	// maxInFlight bounds the requests outstanding at once (and so the connections). A request
	// whose time comes while maxInFlight are outstanding is not sent and is counted as missed,
	// so that an overloaded target cannot turn the open loop into a closed one.
	maxInFlight int
}

// slots is the number of requests offered: rate x duration, rounded.
func (o pacedOpts) slots() int { return int(math.Round(o.rate * o.duration.Seconds())) }

// at is request i's scheduled time, as an offset from the start: i / rate.
func (o pacedOpts) at(i int) time.Duration {
	return time.Duration(math.Round(float64(i) * float64(time.Second) / o.rate))
}

// pacedResult is one paced load against one target.
type pacedResult struct {
	sent, ok, failed, missed int64
	elapsed                  time.Duration   // start to the later of the last answer and the end of the schedule
	latencies                []time.Duration // of the ok requests, each from its scheduled time
	firstErr                 error
}

// openLoop calls send for each of o.slots() requests at its scheduled time, start + o.at(i)
// (at once if that time has passed: an open loop catches up rather than skipping), each in its
// own goroutine, at most o.maxInFlight at once: a request whose time comes while that many are
// outstanding is not sent and counted as missed. It returns when the last send has returned,
// with the start time. It uses the standard clock, so that tests run it in a testing/synctest
// bubble, on virtual time.
func openLoop(ctx context.Context, o pacedOpts, send func(ctx context.Context, i int, due time.Time)) (sent, missed int64, start time.Time) {
	var (
		wg  sync.WaitGroup
		sem = make(chan struct{}, max(o.maxInFlight, 1))
	)
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	start = time.Now()
	for i := range o.slots() {
		due := start.Add(o.at(i))
		if d := time.Until(due); d > 0 {
			timer.Reset(d)
			select {
			case <-ctx.Done():
			case <-timer.C:
			}
		}
		if ctx.Err() != nil {
			break
		}
		select {
		case sem <- struct{}{}:
		default:
			missed++
			continue
		}
		sent++
		wg.Go(func() {
			defer func() { <-sem }()
			send(ctx, i, due)
		})
	}
	wg.Wait()
	return sent, missed, start
}

// runPaced offers o.slots() calls of do through openLoop and sums up their results.
func runPaced(ctx context.Context, o pacedOpts, do func(context.Context) error) pacedResult {
	var (
		res  pacedResult
		mu   sync.Mutex
		last time.Time
	)
	sent, missed, start := openLoop(ctx, o, func(ctx context.Context, _ int, due time.Time) {
		err := do(ctx)
		done := time.Now()
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			res.failed++
			if res.firstErr == nil {
				res.firstErr = err
			}
		} else {
			res.ok++
			res.latencies = append(res.latencies, done.Sub(due))
		}
		if done.After(last) {
			last = done
		}
	})
	res.sent, res.missed = sent, missed
	end := start.Add(o.duration)
	if last.After(end) {
		end = last
	}
	res.elapsed = end.Sub(start)
	return res
}

// summary turns a paced result into the figures the report shares with wrk's: req/s served,
// p50 and p99 latency, and errors (failed plus missed).
func (r pacedResult) summary() wrkResult {
	w := wrkResult{requests: r.ok, errors: r.failed + r.missed}
	if r.elapsed > 0 {
		w.rps = float64(r.ok) / r.elapsed.Seconds()
	}
	w.p50 = quantile(r.latencies, 0.5)
	w.p99 = quantile(r.latencies, 0.99)
	return w
}

// pacedRequest is what a paced load sends: GET when body is empty, else POST with a JSON body.
type pacedRequest struct {
	url, body string
}

// do sends one request through client and reads the answer whole; a status outside 2xx is
// an error.
func (pr pacedRequest) do(ctx context.Context, client *http.Client) error {
	method := http.MethodGet
	var body io.Reader
	if pr.body != "" {
		method, body = http.MethodPost, strings.NewReader(pr.body)
	}
	req, err := http.NewRequestWithContext(ctx, method, pr.url, body)
	if err != nil {
		return err
	}
	if pr.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := client.Do(req)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: status %d", method, pr.url, res.StatusCode)
	}
	return err
}

// newPacedClient returns a keep-alive client for paced loads with room for maxInFlight
// connections and a 5 s answer timeout (wrk's --timeout here).
func newPacedClient(maxInFlight int) *http.Client {
	tr := &http.Transport{
		MaxIdleConns:        maxInFlight,
		MaxIdleConnsPerHost: maxInFlight,
		MaxConnsPerHost:     maxInFlight,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}
}

// pacedLoad runs a paced load of pr through client and, when gw and up are set, measures their
// process groups' CPU over it, per request served.
func pacedLoad(ctx context.Context, client *http.Client, pr pacedRequest, o pacedOpts, gw, up *proc) (wrkResult, error) {
	// Bounded: the schedule plus the answer timeout plus a margin.
	ctx, cancel := context.WithTimeout(ctx, o.duration+10*time.Second)
	defer cancel()
	var gwBefore, upBefore groupStats
	if gw != nil {
		gwBefore = readGroup(gw.pid())
	}
	if up != nil {
		upBefore = readGroup(up.pid())
	}
	r := runPaced(ctx, o, func(ctx context.Context) error { return pr.do(ctx, client) })
	w := r.summary()
	if gw != nil {
		w.cpuPerOp = perRequest(gwBefore.cpu, readGroup(gw.pid()).cpu, w.requests)
	}
	if up != nil {
		w.upPerOp = perRequest(upBefore.cpu, readGroup(up.pid()).cpu, w.requests)
	}
	if err := ctx.Err(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return w, err
	}
	if r.ok == 0 {
		return w, fmt.Errorf("paced %s: no request answered: %v", pr.url, r.firstErr)
	}
	return w, nil
}
