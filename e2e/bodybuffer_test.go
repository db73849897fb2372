package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

var uvicornPortRE = regexp.MustCompile(`Uvicorn running on http://127\.0\.0\.1:(\d+)`)

// TestBodyBufferSlowClients: 50 clients that send their headers and half a small body (as
// slowhttptest -B does) open no connection to uvicorn, since the gateway reads small bodies whole
// before forwarding; meanwhile POST /chat is answered within a second; and once
// BODY_READ_TIMEOUT (1s) has passed each stalled body gets 408 JSON and its connection closed.
func TestBodyBufferSlowClients(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", freePort(t))
	g := startGateway(t, map[string]string{
		"BODY_READ_TIMEOUT": "1s",
		"METRICS_ADDR":      strings.TrimSuffix(strings.TrimPrefix(metricsURL, "http://"), "/metrics"),
	})
	g.awaitReady(ctx, 20*time.Millisecond)
	m := uvicornPortRE.FindStringSubmatch(g.awaitLog(ctx, 1, "Uvicorn running on", relayedContains("Uvicorn running on")).attr("line"))
	if m == nil {
		t.Fatal("no port in uvicorn's start-up line")
	}
	upPort, _ := strconv.Atoi(m[1])

	const slow = 50
	body := `{"message":"a message that arrives very slowly"}`
	head := fmt.Sprintf("POST /chat HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(body))
	conns := make([]net.Conn, slow)
	for i := range conns {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", g.port))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		_ = c.SetDeadline(time.Now().Add(30 * time.Second)) // a safety net, not the test
		if _, err := io.WriteString(c, head+body[:len(body)/2]); err != nil {
			t.Fatal(err)
		}
		conns[i] = c
	}
	// The gateway holds them all (counted in flight from their arrival) before anything is
	// measured.
	if err := poll(ctx, 10*time.Millisecond, func() bool {
		m, err := scrapeMetrics(ctx, metricsURL)
		n, _ := m.value("hfgate_requests_in_flight")
		return err == nil && n >= slow
	}); err != nil {
		t.Fatalf("the %d slow requests never were in flight at once: %v", slow, err)
	}

	during := establishedTo(t, upPort)
	start := time.Now()
	r := g.mustRequest(ctx, http.MethodPost, "/chat", `{"message": "still there?"}`)
	took := time.Since(start)
	checkChat(t, r, botReply("still there?"))
	after := establishedTo(t, upPort)
	scraped, err := scrapeMetrics(ctx, metricsURL)
	if err != nil {
		t.Fatal(err)
	}
	inFlight, _ := scraped.value("hfgate_requests_in_flight")
	t.Logf("%d slow bodies in flight: connections to uvicorn %d, after POST /chat %d; POST /chat took %v",
		slow, during, after, took.Round(time.Millisecond))
	if inFlight < slow {
		t.Fatalf("in flight after POST /chat: %v, want the %d slow requests still held (the machine is too slow for this test's 1s)", inFlight, slow)
	}
	if during > 5 || after > 5 {
		t.Errorf("connections to uvicorn with %d slow bodies: %d, then %d; want at most 5", slow, during, after)
	}
	if took >= time.Second {
		t.Errorf("POST /chat among %d slow bodies took %v, want under 1s", slow, took)
	}

	for i, c := range conns {
		br := bufio.NewReader(c)
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("slow client %d: read answer: %v", i, err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		var e struct {
			Error     string `json:"error"`
			RequestID string `json:"request_id"`
		}
		if res.StatusCode != http.StatusRequestTimeout || json.Unmarshal(b, &e) != nil || e.Error == "" || e.RequestID == "" {
			t.Errorf("slow client %d: got %d %s, want 408 with the JSON error and request ID", i, res.StatusCode, b)
		}
		if !res.Close {
			t.Errorf("slow client %d: 408 without Connection: close", i)
		}
		if _, err := br.ReadByte(); err != io.EOF {
			t.Errorf("slow client %d: after the 408 read got %v, want EOF (connection closed)", i, err)
		}
	}
}
