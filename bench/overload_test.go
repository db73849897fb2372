package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseOverloadFlags(t *testing.T) {
	o, err := parseOverloadFlags(nil, io.Discard)
	if err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if o.duration != 20*time.Second || o.timeout != 60*time.Second || !slices.Equal(o.multiples, []float64{1, 2, 5, 10}) ||
		!slices.Equal(o.ioRates, []float64{25}) || o.limit != 2 || o.targets != nil || o.capacity != 0 {
		t.Errorf("defaults: got %+v", o)
	}
	o, err = parseOverloadFlags([]string{"-duration", "10s", "-io-rates", "25,100", "-targets", "hfgate,haproxy"}, io.Discard)
	if err != nil || o.duration != 10*time.Second || !slices.Equal(o.ioRates, []float64{25, 100}) || !o.targets["hfgate"] || !o.targets["haproxy"] || o.targets["direct"] {
		t.Errorf("got %+v, %v", o, err)
	}
	if got := overloadTargets(o); len(got) != 2 || got[0].key != "haproxy" || got[1].key != "hfgate" {
		t.Errorf("targets: got %v, want haproxy then hfgate (table order)", got)
	}

	bad := []struct {
		name string
		args []string
		want string
	}{
		{"duration too short", []string{"-duration", "500ms"}, "-duration"},
		{"timeout too long", []string{"-timeout", "1h"}, "-timeout"},
		{"unknown target", []string{"-targets", "caddy"}, `unknown target "caddy"`},
		{"limit zero", []string{"-limit", "0"}, "-limit"},
		{"queue timeout not whole seconds", []string{"-queue-timeout", "1500ms"}, "-queue-timeout"},
		{"negative rate", []string{"-multiples", "1,-2"}, "rate"},
		{"stray argument", []string{"now"}, "unexpected arguments"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseOverloadFlags(tt.args, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error naming %q", err, tt.want)
			}
		})
	}
}

// The peers get the limit, the queue timeout and the backend's address the run asks for.
func TestOverloadPeerConfigs(t *testing.T) {
	dir := t.TempDir()
	d := confData{Dir: dir, Name: "x", Port: 8080, Limit: 3, QueueSeconds: 7, UpstreamSeconds: 55}.at("http://127.0.0.1:9000")
	for _, tc := range []struct {
		name, tmpl string
		want       []string
	}{
		{"haproxy", haproxyOverloadConf, []string{"server app1 127.0.0.1:9000 maxconn 3", "timeout queue 7s", "timeout server 55s", "bind 127.0.0.1:8080"}},
		{"nginx", nginxOverloadConf, []string{"server 127.0.0.1:9000 max_conns=3;", "zone app 64k;", "proxy_read_timeout 55s;", "listen 127.0.0.1:8080"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name)
			if err := writeConf(path, tc.tmpl, d); err != nil {
				t.Fatal(err)
			}
			raw, _ := os.ReadFile(path)
			for _, w := range tc.want {
				if !strings.Contains(string(raw), w) {
					t.Errorf("config lacks %q:\n%s", w, raw)
				}
			}
		})
	}
}

// syntheticReport is a run at 1x and 5x and the I/O rate, through hfgate and HAProxy.
func syntheticReport() *overloadReport {
	o, _ := parseOverloadFlags([]string{"-multiples", "1,5", "-targets", "haproxy,hfgate"}, io.Discard)
	s := time.Second
	cell := func(kind endpointKind, m, rate float64, target string, st cellStats, ready *readyStats) overloadCell {
		return overloadCell{kind: kind, multiple: m, rate: rate, target: target, stats: st, ready: ready, peakRSS: 40 << 20, idleRSS: 30 << 20}
	}
	return &overloadReport{
		opts: o, capacity: 5, serviceTime: 200 * time.Millisecond, hfgateVer: "hfgate v1 (commit abc)", versions: map[string]string{},
		targets: overloadTargets(o),
		cells: []overloadCell{
			cell(cpuEndpoint, 1, 5, "haproxy", cellStats{offered: 100, ok: 100, p99: s}, nil),
			cell(cpuEndpoint, 1, 5, "hfgate", cellStats{offered: 100, ok: 99, refused: 1, refusedBy: map[int]int{503: 1}, p99: s}, &readyStats{polls: 80}),
			cell(cpuEndpoint, 5, 25, "haproxy", cellStats{offered: 500, ok: 145, p99: 10 * s, refused: 355, refusedBy: map[int]int{503: 355}}, nil),
			cell(cpuEndpoint, 5, 25, "hfgate", cellStats{offered: 500, ok: 140, p99: 11 * s, refused: 300, refusedFast: 290, refusedBy: map[int]int{503: 300}, timeouts: 0, gw504: 60},
				&readyStats{polls: 80, notOK: 12, states: map[string]int{"unavailable": 12}, firstNotOK: 14 * s}),
			cell(ioEndpoint, 0, 25, "hfgate", cellStats{offered: 500, ok: 500, p99: 2010 * time.Millisecond}, &readyStats{polls: 80}),
		},
	}
}

func TestOverloadChecks(t *testing.T) {
	got := map[string]bool{}
	for _, c := range syntheticReport().checks() {
		got[c.what] = c.met
	}
	want := map[string]bool{
		"CPU-bound 1x: no 503 at all":                              false, // one refused
		"CPU-bound 5x: 0 timeouts, 0 504s":                         false, // 60 504s
		"CPU-bound 5x: 200s >= 0.95x HAProxy's":                    true,  // 140 >= 137.75
		"CPU-bound 5x: p99 of the 200s <= HAProxy's + 2 s":         true,  // 11 s <= 12 s
		"CPU-bound 5x: >= 90 % of the 503s within 1 s":             true,  // 290 of 300
		"CPU-bound 5x: /ready never unavailable":                   false,
		"I/O-bound 2 s at 25 req/s: every request 200, p99 <= 3 s": true,
	}
	for what, met := range want {
		if g, ok := got[what]; !ok || g != met {
			t.Errorf("%s: got met=%v (present %v), want %v", what, g, ok, met)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d checks, want %d: %v", len(got), len(want), got)
	}
}

func TestOverloadMarkdown(t *testing.T) {
	md := syntheticReport().markdown()
	for _, want := range []string{
		"**this build does not know `UPSTREAM_CONCURRENCY`**",
		"**5.00 req/s** measured at the start",
		"| 25.0 (5x) | hfgate | 140 / 500 |",
		"| 300 (503) | 97 % |",
		"| 40 MB (30) | unavailable ×12 of 80, first at 14.0 s |",
		"#### I/O-bound: `POST /remote`, `await asyncio.sleep(2)` each",
		"| 25.0 | hfgate | 500 / 500 |",
		"- **haproxy**: HAProxy hand-tuned: `server ... maxconn 2`",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

func TestSpliceBetween(t *testing.T) {
	path := filepath.Join(t.TempDir(), "doc.md")
	if err := os.WriteFile(path, []byte("# Prose\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := spliceBetween(path, overloadBegin, overloadEnd, "first"); err != nil {
		t.Fatal(err)
	}
	if err := spliceBetween(path, overloadBegin, overloadEnd, "second"); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	if want := "# Prose\n\n" + overloadBegin + "\nsecond\n" + overloadEnd + "\n"; string(raw) != want {
		t.Errorf("got %q, want %q", raw, want)
	}
}

func TestStartRetrying(t *testing.T) {
	e := &env{ps: newProcs(), logf: t.Logf}
	busy := errors.New("bind: address already in use")
	calls := 0
	_, base, err := startRetrying(t.Context(), e, func() (*proc, string, error) {
		calls++
		if calls < 3 {
			return nil, "", busy
		}
		return nil, "http://127.0.0.1:1", nil
	})
	if err != nil || base != "http://127.0.0.1:1" || calls != 3 {
		t.Errorf("fails twice, then starts: got %q, %v after %d calls, want the third start", base, err, calls)
	}
	calls = 0
	_, _, err = startRetrying(t.Context(), e, func() (*proc, string, error) { calls++; return nil, "", busy })
	if !errors.Is(err, busy) || calls != 3 {
		t.Errorf("always fails: got %v after %d calls, want the error after 3", err, calls)
	}
}
