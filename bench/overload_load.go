package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// outcome is what became of one request of an overload cell.
type outcome struct {
	at         time.Duration // its scheduled send time, from the cell's start
	took       time.Duration // from the scheduled send time to the end of the answer, or to giving up
	status     int           // 0: no answer
	timedOut   bool          // the client gave up (its deadline passed) before the answer was whole
	connErr    bool          // no answer for another reason (refused, reset)
	retryAfter string        // the answer's Retry-After header, if any
}

// overloadClient is the load's client: keep-alive, as HF's edge keeps its connections to a
// Space, with no bound on connections (each outstanding request has its own; the open loop
// bounds how many there are). Idle connections are closed after 4 s, before uvicorn's 5 s
// keep-alive timeout closes them, so that a POST is never sent on a connection the backend is
// closing (Go does not resend a POST that may have reached the server).
func overloadClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     4 * time.Second,
		DisableCompression:  true,
	}}
}

// overloadRequest is what a cell sends: a POST with a small JSON body.
type overloadRequest struct {
	url     string
	timeout time.Duration // the client gives up this long after the scheduled send time
}

const overloadBody = `{"message":"hello there"}`

// send sends one request, due at due, and records its outcome. ctx's own end (the harness
// stopping) shows as a connection error; the client's deadline as a time-out.
func (r overloadRequest) send(ctx context.Context, client *http.Client, due time.Time) outcome {
	ctx, cancel := context.WithDeadline(ctx, due.Add(r.timeout))
	defer cancel()
	var out outcome
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url, strings.NewReader(overloadBody))
	if err != nil {
		out.connErr = true
		return out
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := client.Do(req)
	if err == nil {
		_, err = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		out.status, out.retryAfter = res.StatusCode, res.Header.Get("Retry-After")
	}
	out.took = time.Since(due)
	if err != nil {
		out.status = 0
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			out.timedOut = true
		} else {
			out.connErr = true
		}
	}
	return out
}

// loadCell offers o.slots() requests of r at o.rate through client, open loop, and returns
// every outcome in schedule order. Nothing is missed: o.maxInFlight is set to the number of
// requests, so each has its goroutine and connection however long the target keeps it (at
// 10x of 5 req/s for 20 s, 1,000 at most; each ends within r.timeout).
func loadCell(ctx context.Context, client *http.Client, r overloadRequest, o pacedOpts) []outcome {
	o.maxInFlight = o.slots()
	outs := make([]outcome, o.slots())
	var mu sync.Mutex
	openLoop(ctx, o, func(ctx context.Context, i int, due time.Time) {
		out := r.send(ctx, client, due)
		out.at = o.at(i)
		mu.Lock()
		outs[i] = out
		mu.Unlock()
	})
	return outs
}

// readyStats is what hfgate's /ready said during a cell.
type readyStats struct {
	polls, notOK, failed int
	states               map[string]int // the "state" field of the answers that were not 200
	firstNotOK           time.Duration  // from the start of the polling; valid when notOK > 0
}

// pollReady polls url every interval (each poll bounded by 1 s) until ctx ends, and returns
// what it saw.
func pollReady(ctx context.Context, url string, interval time.Duration) readyStats {
	st := readyStats{states: map[string]int{}}
	client := &http.Client{Timeout: time.Second}
	defer client.CloseIdleConnections()
	start := time.Now()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		code, state, err := readyOnce(ctx, client, url)
		if ctx.Err() != nil {
			return st
		}
		st.polls++
		switch {
		case err != nil:
			st.failed++
		case code != http.StatusOK:
			if st.notOK == 0 {
				st.firstNotOK = time.Since(start)
			}
			st.notOK++
			st.states[state]++
		}
		select {
		case <-ctx.Done():
			return st
		case <-tick.C:
		}
	}
}

// readyOnce asks /ready once and returns its status and the state it names.
func readyOnce(ctx context.Context, client *http.Client, url string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	res, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	var body struct {
		State string `json:"state"`
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, 64<<10)).Decode(&body); err != nil {
		body.State = fmt.Sprintf("status %d, no JSON", res.StatusCode)
	}
	return res.StatusCode, body.State, nil
}

// calibrate sends n requests of r one after another (a closed loop of one: the backend never
// has more than one) after two unmeasured ones, and returns the backend's capacity, requests
// answered per second, and the median time of one request.
func calibrate(ctx context.Context, client *http.Client, r overloadRequest, n int) (float64, time.Duration, error) {
	var took []time.Duration
	var start time.Time
	for i := range n + 2 {
		if i == 2 {
			start = time.Now()
		}
		out := r.send(ctx, client, time.Now())
		if out.status != http.StatusOK {
			return 0, 0, fmt.Errorf("calibration request %d: status %d (timed out: %v)", i, out.status, out.timedOut)
		}
		if i >= 2 {
			took = append(took, out.took)
		}
	}
	return float64(n) / time.Since(start).Seconds(), quantile(took, 0.5), nil
}
