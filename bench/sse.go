package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// sseOpts shape the event-stream delay measurement.
type sseOpts struct {
	streams  int           // concurrent streams per round
	events   int           // events per stream
	interval time.Duration // between events
}

// sseRound opens o.streams concurrent streams through base and returns, for every event, the
// time from the upstream's send (stamped in the event) to the client's read.
func sseRound(ctx context.Context, client *http.Client, base string, o sseOpts) ([]time.Duration, error) {
	url := fmt.Sprintf("%s/sse?n=%d&interval=%d", base, o.events, o.interval.Milliseconds())
	// Bounded: the stream's own length plus a generous margin for a buffering proxy.
	ctx, cancel := context.WithTimeout(ctx, time.Duration(o.events)*o.interval+10*time.Second)
	defer cancel()
	var (
		mu     sync.Mutex
		delays []time.Duration
		firstE error
		wg     sync.WaitGroup
	)
	for range o.streams {
		wg.Go(func() {
			d, err := readStamped(ctx, client, url)
			mu.Lock()
			defer mu.Unlock()
			delays = append(delays, d...)
			if err != nil && firstE == nil {
				firstE = err
			}
		})
	}
	wg.Wait()
	if firstE == nil && len(delays) != o.streams*o.events {
		firstE = fmt.Errorf("%s: got %d events, want %d", base, len(delays), o.streams*o.events)
	}
	return delays, firstE
}

// readStamped reads one stream and returns each event's delay.
func readStamped(ctx context.Context, client *http.Client, url string) ([]time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	res, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d", url, res.StatusCode)
	}
	var out []time.Duration
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		now := time.Now().UnixNano()
		sent, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return out, fmt.Errorf("bad event %q", v)
		}
		out = append(out, time.Duration(now-sent))
	}
	return out, sc.Err()
}

// openStreams holds n event streams open through base at once and, while they are all open,
// calls measure. It returns how many streams were open.
func openStreams(ctx context.Context, base string, n int, measure func()) (int, error) {
	tr := &http.Transport{DisableKeepAlives: true, MaxConnsPerHost: 0, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	hold, release := context.WithCancel(ctx)
	var (
		open atomic.Int64
		wg   sync.WaitGroup
	)
	ready := make(chan struct{}, n)
	dials := make(chan struct{}, 64) // at most 64 connection attempts in flight
	for range n {
		wg.Go(func() {
			dials <- struct{}{}
			req, _ := http.NewRequestWithContext(hold, http.MethodGet, base+"/sse?n=1&hold=1", nil)
			res, err := client.Do(req)
			if err != nil {
				<-dials
				return
			}
			defer res.Body.Close()
			br := bufio.NewReader(res.Body)
			line, err := br.ReadString('\n')
			<-dials
			for err == nil && !strings.HasPrefix(line, "data: ") {
				line, err = br.ReadString('\n')
			}
			if err != nil {
				return
			}
			open.Add(1)
			ready <- struct{}{}
			<-hold.Done()
		})
	}
	got := 0
	timeout := time.After(30 * time.Second)
wait:
	for got < n {
		select {
		case <-ready:
			got++
		case <-timeout:
			break wait
		}
	}
	if got == n {
		// Let the proxy settle (its buffers allocated, GC'd) before reading its memory.
		time.Sleep(500 * time.Millisecond)
		measure()
	}
	release()
	wg.Wait()
	if got < n {
		return got, fmt.Errorf("%s: only %d of %d streams opened within 30 s", base, got, n)
	}
	return got, nil
}

// quantile returns the q-quantile (0..1) of d, nearest rank; d is sorted in place.
func quantile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	i := int(q*float64(len(d)-1) + 0.5)
	return d[i]
}
