package gateway

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/hfgate/hfgate/gateway/health"
)

// TestDrainingAnswers: once shutdown begins, /ready and new requests answer 503 "draining"
// with Retry-After, while a stream that was already open runs to its end.
func TestDrainingAnswers(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	tg := startGateway(t, up.Server, map[string]string{"SHUTDOWN_TIMEOUT": "10s"}, true)
	tg.waitReady(t)
	r := openFirstEvent(t, tg.URL+"/sse") // holds the drain open
	tg.cancel()                           // SIGTERM
	rec := tg.logs.Wait(t, "upstream state", func(r map[string]any) bool { return r["to"] == "draining" })
	if rec["level"] != "INFO" {
		t.Errorf("draining transition logged at %v, want INFO (a shutdown is not a fault)", rec["level"])
	}
	// New connections are refused by now, so ask the handler the server runs directly, as a
	// request arriving on a connection that was already open would.
	for _, path := range []string{"/ready", "/chat"} {
		w := httptest.NewRecorder()
		tg.g.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		var body struct {
			State      health.State `json:"state"`
			RetryAfter int          `json:"retry_after"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Fatalf("GET %s while draining: body %q: %v", path, w.Body, err)
		}
		ra, err := strconv.Atoi(w.Header().Get("Retry-After"))
		if w.Code != http.StatusServiceUnavailable || body.State != health.Draining || err != nil || ra < 1 || ra != body.RetryAfter {
			t.Errorf("GET %s while draining: got %d state %q Retry-After %q retry_after %d; want 503 draining with matching Retry-After",
				path, w.Code, body.State, w.Header().Get("Retry-After"), body.RetryAfter)
		}
	}
	w := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Accept", "text/html")
	tg.g.ServeHTTP(w, req)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "This Space is restarting") {
		t.Errorf("GET / (HTML) while draining: got %d %q, want 200 and the restarting page", w.Code, w.Body)
	}
	if last := up.last(); last != nil && last.URL.Path == "/chat" {
		t.Error("a request that arrived while draining reached the upstream")
	}
	close(up.release)
	rest, err := io.ReadAll(r)
	if err != nil || string(rest) != "\ndata: two\n\n" {
		t.Errorf("open stream after SIGTERM = %q, %v; want it to finish", rest, err)
	}
	tg.stop(t)
}
