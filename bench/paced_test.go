package main

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestParseVariants(t *testing.T) {
	vs, err := parseVariants("gogc400=GOGC=400; twop=GOMAXPROCS=2,GOGC=200;")
	if err != nil || len(vs) != 2 || vs[0].key() != "hfgate+gogc400" || strings.Join(vs[1].env, " ") != "GOMAXPROCS=2 GOGC=200" {
		t.Errorf("got %+v, %v", vs, err)
	}
	for _, bad := range []string{"noenv", "=GOGC=1", "x=GOGC", "a b=GOGC=1"} {
		if _, err := parseVariants(bad); err == nil {
			t.Errorf("parseVariants(%q): no error", bad)
		}
	}
}

func TestParseRates(t *testing.T) {
	tests := []struct {
		name, in string
		want     []float64
		wantErr  bool
	}{
		{name: "default", in: "200,1000", want: []float64{200, 1000}},
		{name: "spaces and fractions", in: " 0.5, 50 ,", want: []float64{0.5, 50}},
		{name: "empty: no paced rounds", in: "", want: nil},
		{name: "zero", in: "0", wantErr: true},
		{name: "negative", in: "-5", wantErr: true},
		{name: "not a number", in: "200rps", wantErr: true},
		{name: "NaN", in: "NaN", wantErr: true},
		{name: "twice", in: "200,200", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseRates(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err: got %v, want error %v", err, tt.wantErr)
			}
			if !tt.wantErr && fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// The fixed-rate table's figures: medians over rounds of CPU per request, and medians of the
// per-round ratios (to Caddy; gateway over backend).
func TestPacedMarkdown(t *testing.T) {
	us := time.Microsecond
	run := func(gw, up time.Duration, rps float64) wrkResult {
		return wrkResult{cpuPerOp: gw, upPerOp: up, rps: rps, requests: 600, p50: 800 * us, p99: 3 * time.Millisecond}
	}
	hf, cd := pacedID("uvicorn", 200, "hfgate"), pacedID("uvicorn", 200, "caddy")
	gc := pacedID("uvicorn", 200, "hfgate+gogc400")
	r := &report{opts: options{conns: 64, pacedRates: []float64{200}, pacedDuration: 3 * time.Second,
		pacedVariants: []hfgateVariant{{name: "gogc400", env: []string{"GOGC=400"}}}}}
	// Round 3 is slow for everyone (a busy moment): the paired ratio is not disturbed by it.
	r.pacedRounds = []map[string]wrkResult{
		{hf: run(150*us, 300*us, 199), cd: run(200*us, 300*us, 200), gc: run(135*us, 300*us, 200)},
		{hf: run(160*us, 320*us, 200), cd: run(200*us, 310*us, 200), gc: run(144*us, 320*us, 200)},
		{hf: run(300*us, 600*us, 198), cd: run(400*us, 600*us, 199), gc: run(270*us, 600*us, 200)},
	}
	var b strings.Builder
	r.pacedMarkdown(func(f string, a ...any) { fmt.Fprintf(&b, f, a...) })
	md := b.String()
	for _, want := range []string{
		"#### CPU per request at fixed rates",
		// hfgate: CPU median 160; vs Caddy median of 0.75, 0.8, 0.75; backend median 320;
		// gateway/backend median of 0.5, 0.5, 0.5; req/s median 199.
		"| uvicorn example backend, `POST /chat` | 200 | hfgate | 160 µs | 0.75x | - | 320 µs | 0.50x | 199 | 800 µs | 3.00 ms | 0 |",
		"| uvicorn example backend, `POST /chat` | 200 | caddy | 200 µs | 1.00x | - | 310 µs | 0.67x | 200 |",
		// The variant: 0.9x hfgate in every round.
		"| uvicorn example backend, `POST /chat` | 200 | hfgate+gogc400 | 144 µs | 0.68x | 0.90x | 320 µs |",
		"| 3 | 300 | 400 | 270 |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "Go upstream") {
		t.Errorf("markdown has Go upstream rows, none measured:\n%s", md)
	}
}
