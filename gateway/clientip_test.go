package gateway

import (
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

// TestClientThroughGateway: through the whole gateway (echo, ReverseProxy) the upstream gets the
// resolved client as X-Forwarded-For's rightmost entry and as X-Real-IP, and the access line
// logs the same address, also for a request answered before the upstream (a cold 503), unless
// LOG_CLIENT_ADDR=false.
func TestClientThroughGateway(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		env        map[string]string
		xff        []string
		wantFor    string
		wantClient string // in the access line; "" for none
	}{
		{name: "trusted peer, spoofed hop and edge", env: map[string]string{"TRUSTED_PROXIES": "127.0.0.0/8,10.0.0.0/8"},
			xff: []string{"127.0.0.9, 203.0.113.7", "10.0.0.2"}, wantFor: "127.0.0.9, 203.0.113.7", wantClient: "203.0.113.7"},
		{name: "untrusted peer", env: map[string]string{"TRUSTED_PROXIES": "10.0.0.0/8"},
			xff: []string{"203.0.113.7"}, wantFor: "127.0.0.1", wantClient: "127.0.0.1"},
		{name: "left out of the log", env: map[string]string{"LOG_CLIENT_ADDR": "false"},
			xff: []string{"203.0.113.7"}, wantFor: "203.0.113.7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			up := newUpstream(t)
			tg := startGateway(t, up.Server, tt.env, false)
			h := http.Header{"X-Forwarded-For": tt.xff, "X-Real-Ip": {"198.51.100.66"}}
			if resp, _ := do(t, "GET", tg.URL+"/cold", h, nil); resp.StatusCode != http.StatusServiceUnavailable {
				t.Fatalf("cold: status %d, want 503", resp.StatusCode)
			}
			tg.gate.set(true)
			tg.waitReady(t)
			do(t, "GET", tg.URL+"/echo", h, nil)
			got := up.last()
			if v := got.Header.Values("X-Forwarded-For"); len(v) != 1 || v[0] != tt.wantFor {
				t.Errorf("X-Forwarded-For %q, want [%q]", v, tt.wantFor)
			}
			wantReal := tt.wantFor[strings.LastIndex(tt.wantFor, " ")+1:]
			if v := got.Header.Values("X-Real-Ip"); len(v) != 1 || v[0] != wantReal {
				t.Errorf("X-Real-IP %q, want [%q]", v, wantReal)
			}
			for _, path := range []string{"/cold", "/echo"} {
				rec := tg.logs.Wait(t, "request", func(r map[string]any) bool { return r["path"] == path })
				client, ok := rec["client"]
				if tt.wantClient == "" && ok {
					t.Errorf("%s: access line has client %v, want none", path, client)
				}
				if tt.wantClient != "" && client != tt.wantClient {
					t.Errorf("%s: access line has client %v, want %q", path, client, tt.wantClient)
				}
			}
		})
	}
}

// BenchmarkProxySmallJSONForwarded is BenchmarkProxySmallJSON (log=info) as on a Space: the
// trusted edge sends X-Forwarded-For with the user's address, which is resolved for the upstream
// and the access line. log_client=false is the same with LOG_CLIENT_ADDR=false.
func BenchmarkProxySmallJSONForwarded(b *testing.B) {
	up := newBenchUpstream(b)
	h := http.Header{"X-Forwarded-For": {"203.0.113.7"}}
	for _, bc := range []struct{ name, logClient string }{{"log_client=true", "true"}, {"log_client=false", "false"}} {
		b.Run(bc.name, func(b *testing.B) {
			gw := newBenchGateway(b, up.URL, map[string]string{"LOG_CLIENT_ADDR": bc.logClient}, slog.LevelInfo, true)
			c := newBenchClient(b)
			b.ReportAllocs()
			for b.Loop() {
				benchPost(b, c, gw.URL+"/chat", h, http.StatusOK)
			}
		})
	}
}
