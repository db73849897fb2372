package main

import (
	"testing"
	"time"
)

func TestParseWrk(t *testing.T) {
	out := `Running 3s test @ http://127.0.0.1:40000/json
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.51ms  425.07us  12.19ms   85.95%
    Req/Sec    42.69k     1.38k   44.46k    80.00%
  Latency Distribution
     50%    1.40ms
     75%    1.62ms
     90%    1.97ms
     99%    2.91ms
  127432 requests in 3.00s, 23.82MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:  42468.97
Transfer/sec:      7.94MB
`
	r, err := parseWrk(out)
	if err != nil {
		t.Fatal(err)
	}
	if r.rps != 42468.97 || r.requests != 127432 || r.errors != 7 {
		t.Errorf("rps, requests, errors: got %v, %d, %d, want 42468.97, 127432, 7", r.rps, r.requests, r.errors)
	}
	if r.p50 != 1400*time.Microsecond || r.p99 != 2910*time.Microsecond {
		t.Errorf("p50, p99: got %v, %v, want 1.4ms, 2.91ms", r.p50, r.p99)
	}
	if _, err := parseWrk("garbage"); err == nil {
		t.Error("garbage: got no error")
	}
}
