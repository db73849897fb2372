package gateway

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hfgate/hfgate/gateway/health"
)

// TestStatusPageRefresh: the status page at "/" reloads itself after the
// current Retry-After estimate, which is how a visitor's tab turns into the
// backend's page once it is ready (e2e/browser_test.go watches that happen).
func TestStatusPageRefresh(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		elapsed time.Duration // since the gateway started, with no start-up measured yet
		want    int
	}{
		{name: "just started", elapsed: 0, want: 5},
		{name: "part-way", elapsed: 2500 * time.Millisecond, want: 3},
		{name: "overdue", elapsed: time.Minute, want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
			now := start
			clock := func() time.Time { return now }
			a := &answers{
				readiness: health.NewTracker(health.TrackerOptions{Logger: slog.New(slog.DiscardHandler), Now: clock}),
				startedAt: start,
				now:       clock,
				page:      newStatusPage(),
			}
			now = start.Add(tt.elapsed)

			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.Header.Set("Accept", "text/html,application/xhtml+xml")
			rec := httptest.NewRecorder()
			a.writeStatusPage(rec, req)
			body := rec.Body.String()
			if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
				t.Fatalf("got %d %q, want 200 text/html", rec.Code, rec.Header().Get("Content-Type"))
			}
			want := strconv.Itoa(tt.want)
			for _, s := range []string{
				`<meta http-equiv="refresh" content="` + want + `">`,
				"reloads by itself in " + want + " s",
				`<link rel="icon" href="data:,">`,
			} {
				if !strings.Contains(body, s) {
					t.Errorf("status page lacks %q:\n%s", s, body)
				}
			}
			if got := rec.Header().Get("Cache-Control"); got != "no-store" {
				t.Errorf("got Cache-Control %q, want no-store: a cached page would never turn", got)
			}
		})
	}
}
