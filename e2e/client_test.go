package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// TestE2EClientAddress: the example backend under real uvicorn, started with the flags `make
// run` and the Space launcher use (--proxy-headers --forwarded-allow-ips 127.0.0.1), sees the
// user hfgate resolved as request.client.host. A client on 127.0.0.5 stands in for HF's edge:
// when TRUSTED_PROXIES covers it (the default does), the X-Forwarded-For it sends names the
// user; when not, the backend sees 127.0.0.5 whatever it sent. The access line logs the same.
func TestE2EClientAddress(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		xff     string
		realIP  string
		want    string // request.client.host
		wantXFF string // the X-Forwarded-For the backend got
	}{
		{name: "edge trusted (default TRUSTED_PROXIES)", xff: "198.51.100.1, 203.0.113.7", realIP: "192.0.2.99",
			want: "203.0.113.7", wantXFF: "198.51.100.1, 203.0.113.7"},
		{name: "edge not trusted", env: map[string]string{"TRUSTED_PROXIES": "127.0.0.1/32"}, xff: "203.0.113.7", realIP: "192.0.2.99",
			want: "127.0.0.5", wantXFF: "127.0.0.5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			upPort := freePort(t)
			env := map[string]string{
				"UPSTREAM_URL": fmt.Sprintf("http://127.0.0.1:%d", upPort),
				"UPSTREAM_CMD": fmt.Sprintf("%s -m uvicorn app:app --host 127.0.0.1 --port %d --proxy-headers --forwarded-allow-ips 127.0.0.1", e2ePython, upPort),
			}
			for k, v := range tt.env {
				env[k] = v
			}
			g := startGateway(t, env)
			ctx := testContext(t, 60*time.Second)
			g.awaitReady(ctx, 50*time.Millisecond)

			who := whoamiFrom(ctx, t, g, "127.0.0.5", tt.xff, tt.realIP)
			if who.Client != tt.want {
				t.Errorf("request.client.host: got %q, want %q", who.Client, tt.want)
			}
			if who.XFF != tt.wantXFF {
				t.Errorf("X-Forwarded-For at the backend: got %q, want %q", who.XFF, tt.wantXFF)
			}
			if who.RealIP != tt.want {
				t.Errorf("X-Real-IP at the backend: got %q, want %q (set afresh, never the client's %q)", who.RealIP, tt.want, tt.realIP)
			}
			line := g.awaitLog(ctx, 1, "access line of GET /whoami", accessLine(http.MethodGet, "/whoami", http.StatusOK))
			if got := line.attr("client"); got != tt.want {
				t.Errorf("access line client=%q, want %q: %s", got, tt.want, line.raw)
			}
		})
	}
}

// whoamiBody is the example backend's GET /whoami answer.
type whoamiBody struct {
	Client string `json:"client"`
	XFF    string `json:"x_forwarded_for"`
	RealIP string `json:"x_real_ip"`
}

// whoamiFrom asks the backend, through the gateway, who it thinks the client is, from a
// connection bound to the loopback address local and with the given forwarding headers.
func whoamiFrom(ctx context.Context, t *testing.T, g *hfgateProc, local, xff, realIP string) whoamiBody {
	t.Helper()
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	tr := &http.Transport{Proxy: nil, DialContext: dialer.DialContext}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.base+"/whoami", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Forwarded-For", xff)
	req.Header.Set("X-Real-IP", realIP)
	withPlantedSecrets(req)
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatalf("GET /whoami from %s: %v", local, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /whoami: status %d, body %q, err %v", resp.StatusCode, body, err)
	}
	var who whoamiBody
	if err := json.Unmarshal(body, &who); err != nil {
		t.Fatalf("decode /whoami %s: %v", strconv.Quote(string(body)), err)
	}
	return who
}
