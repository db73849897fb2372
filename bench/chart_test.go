package main

import (
	"image/png"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestWriteChart(t *testing.T) {
	r := &report{
		targets: []*target{
			{key: "direct", throughput: true}, {key: "hfgate", throughput: true},
			{key: "caddy", throughput: true}, {key: "nginx-sse", sse: true},
		},
		rounds: []map[string]wrkResult{{
			"direct": {rps: 30000, p99: 3 * time.Millisecond},
			"hfgate": {rps: 9000, p99: 12 * time.Millisecond},
			"caddy":  {rps: 6000, p99: 20 * time.Millisecond},
		}},
	}
	path := filepath.Join(t.TempDir(), "chart.png")
	if err := r.writeChart(path); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() < 600 || b.Dy() < 200 {
		t.Errorf("chart size: got %dx%d, want at least 600x200", b.Dx(), b.Dy())
	}
}
