package main

import (
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	s := time.Second
	outs := []outcome{
		{at: 0, took: 2 * s, status: 200},
		{at: 1 * s, took: 3 * s, status: 200},
		{at: 2 * s, took: 9 * s, status: 200}, // the last 200 ends at 11 s
		{at: 3 * s, took: 10 * s, status: 503, retryAfter: "10"},
		{at: 4 * s, took: 5 * time.Millisecond, status: 503, retryAfter: "3"},
		{at: 5 * s, took: 900 * time.Millisecond, status: 502},
		{at: 6 * s, took: 60 * s, timedOut: true},
		{at: 7 * s, took: 55 * s, status: 504},
		{at: 8 * s, took: 1 * s, status: 500},
		{at: 9 * s, took: 1 * s, connErr: true},
	}
	got := summarize(outs)
	if got.offered != 10 || got.ok != 3 || got.refused != 3 || got.timeouts != 1 || got.gw504 != 1 {
		t.Fatalf("offered, ok, refused, timeouts, 504: got %d, %d, %d, %d, %d, want 10, 3, 3, 1, 1",
			got.offered, got.ok, got.refused, got.timeouts, got.gw504)
	}
	if want := 3 / 11.0; got.goodput != want {
		t.Errorf("goodput: got %v, want %v (3 200s by 11 s)", got.goodput, want)
	}
	if got.p50 != 3*s || got.p99 != 9*s {
		t.Errorf("p50, p99: got %v, %v, want 3s, 9s", got.p50, got.p99)
	}
	if got.refusedFast != 2 || got.refusedMedian != 900*time.Millisecond {
		t.Errorf("refused within 1 s, median: got %d, %v, want 2, 900ms", got.refusedFast, got.refusedMedian)
	}
	if c := got.refusedCell(); c != "3 (503: 2, 502: 1)" {
		t.Errorf("refused cell: got %q", c)
	}
	if c := got.otherCell(); c != "500 ×1, conn error ×1" {
		t.Errorf("other cell: got %q", c)
	}
	if c := got.retryCell(); c != "10 ×1, 3 ×1" {
		t.Errorf("Retry-After cell: got %q", c)
	}
	if share := got.fastShare(); share != 100*2/3.0 {
		t.Errorf("fast share: got %v, want 66.7", share)
	}
}

func TestSummarizeNothingServed(t *testing.T) {
	got := summarize([]outcome{{took: time.Minute, timedOut: true}})
	if got.goodput != 0 || got.ok != 0 || got.refusedCell() != "0" || got.otherCell() != "-" || got.retryCell() != "none" || got.fastShare() != 100 {
		t.Errorf("got %+v; cells %q %q %q", got, got.refusedCell(), got.otherCell(), got.retryCell())
	}
}

func TestReadyCell(t *testing.T) {
	tests := []struct {
		name string
		r    readyStats
		want string
	}{
		{"always ready", readyStats{polls: 80}, "200 ×80"},
		{"unavailable", readyStats{polls: 80, notOK: 12, states: map[string]int{"unavailable": 12}, firstNotOK: 14200 * time.Millisecond},
			"unavailable ×12 of 80, first at 14.2 s"},
		{"no answer", readyStats{polls: 10, failed: 2}, "no answer ×2 of 10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.r.cell(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
