package main

import (
	"os"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	tests := []struct {
		name      string
		raw       string
		pgrp      int
		ticks     int64
		wantValid bool
	}{
		{
			name: "hfgate",
			raw: "4242 (hfgate) S 4200 4242 4200 0 -1 4194560 1093 0 0 0 153 47 0 0 20 0 5 0 " +
				"123456 1300000000 5120 18446744073709551615 1 1 0 0 0 0 0 0 2143420159 0 0 0 17 1 0 0 0 0 0\n",
			pgrp: 4242, ticks: 200, wantValid: true,
		},
		{
			// The command name may hold spaces and ')': the fields start after the last ')'.
			name: "name with spaces and parenthesis",
			raw: "77 (a) b (c)) R 1 70 70 0 -1 0 0 0 0 0 9 1 0 0 20 0 1 0 " +
				"5 100 10 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n",
			pgrp: 70, ticks: 10, wantValid: true,
		},
		{name: "truncated", raw: "1 (init) S 0 1 1 0", wantValid: false},
		{name: "no name", raw: "garbage", wantValid: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pgrp, ticks, ok := parseStat([]byte(tt.raw))
			if ok != tt.wantValid {
				t.Fatalf("ok: got %v, want %v", ok, tt.wantValid)
			}
			if ok && (pgrp != tt.pgrp || ticks != tt.ticks) {
				t.Errorf("pgrp, ticks: got %d, %d, want %d, %d", pgrp, ticks, tt.pgrp, tt.ticks)
			}
		})
	}
}

func TestPerRequest(t *testing.T) {
	tests := []struct {
		name          string
		before, after time.Duration
		requests      int64
		want          time.Duration
	}{
		// 150 ms of CPU over 1,000 requests: 150 µs each.
		{"1000 requests", 2 * time.Second, 2*time.Second + 150*time.Millisecond, 1000, 150 * time.Microsecond},
		{"600 requests at 200 req/s for 3 s", 0, 87 * time.Millisecond, 600, 145 * time.Microsecond},
		{"none served", time.Second, 2 * time.Second, 0, 0},
		{"negative count", 0, time.Second, -1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := perRequest(tt.before, tt.after, tt.requests); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestProcessCPUClock(t *testing.T) {
	// glibc's clock_getcpuclockid: ~pid << 3 | CPUCLOCK_SCHED (2).
	for _, tt := range []struct {
		pid  int
		want int32
	}{{1, -14}, {4242, -33942}} {
		if got := processCPUClock(tt.pid); got != tt.want {
			t.Errorf("pid %d: got %d, want %d", tt.pid, got, tt.want)
		}
	}
	// This process's own clock reads, and agrees with its ticks to within their resolution
	// (plus the time between the two reads, which this test does not bound: only the tick
	// count's rounding below it).
	raw, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Fatal(err)
	}
	_, ticks, ok := parseStat(raw)
	if !ok {
		t.Fatal("parseStat(/proc/self/stat) failed")
	}
	if got, floor := processCPU(os.Getpid(), ticks), time.Duration(ticks-2)*clockTick; got < floor {
		t.Errorf("processCPU: got %v, below the ticks' %v", got, floor)
	}
}
