package e2e

// The harness's view of a running gateway from outside, as an operator reads it: its process
// (descriptors, memory, threads, state) through prometheus/procfs, its TCP connections, and its
// metrics listener through Prometheus's own exposition parser.

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/procfs"
)

// procSample is what /proc says of a process at one moment. A figure that could not be read
// is -1, and the state "" (the process is gone).
type procSample struct {
	fds, rssKB, threads int
	state               string // R, S, Z, ... (proc(5))
}

func (s procSample) String() string {
	return fmt.Sprintf("fds %d, RSS %d kB, threads %d", s.fds, s.rssKB, s.threads)
}

// readProc samples pid.
func readProc(pid int) procSample {
	s := procSample{fds: -1, rssKB: -1, threads: -1}
	p, err := procfs.NewProc(pid)
	if err != nil {
		return s
	}
	if st, err := p.Stat(); err == nil {
		s.state, s.threads, s.rssKB = st.State, st.NumThreads, st.ResidentMemory()>>10
	}
	if n, err := p.FileDescriptorsLen(); err == nil {
		s.fds = n
	}
	return s
}

// establishedTo counts the established TCP connections whose remote end is the loopback port
// (the gateway's connections to uvicorn), read from /proc/net/tcp as `ss -tn` does. Read by
// hand: procfs's NetTCP is deprecated in favour of netlink's sock_diag, a dependency too many
// for two columns of a table.
func establishedTo(t *testing.T, port int) int {
	t.Helper()
	n := 0
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(table)
		if err != nil {
			t.Fatalf("read %s: %v", table, err)
		}
		want := fmt.Sprintf(":%04X", port)
		for line := range strings.Lines(string(b)) {
			// sl local_address rem_address st ...; st 01 is ESTABLISHED.
			f := strings.Fields(line)
			if len(f) > 3 && strings.HasSuffix(f[2], want) && f[3] == "01" {
				n++
			}
		}
	}
	return n
}

// metricFamilies is one scrape of a metrics listener, by metric name.
type metricFamilies map[string]*dto.MetricFamily

// scrapeMetrics reads the gateway's metrics listener once, on a connection of its own so that
// the reading leaves nothing open.
func scrapeMetrics(ctx context.Context, metricsURL string) (metricFamilies, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, metricsURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape metrics: status %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mf, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("parse metrics: %w", err)
	}
	return mf, nil
}

// series returns the series name{labels}, labels given as name, value pairs and matched whole,
// in any order; nil when there is none.
func (m metricFamilies) series(name string, labels ...string) *dto.Metric {
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	for _, s := range m[name].GetMetric() {
		if len(s.GetLabel()) != len(want) {
			continue
		}
		match := true
		for _, l := range s.GetLabel() {
			v, ok := want[l.GetName()]
			match = match && ok && v == l.GetValue()
		}
		if match {
			return s
		}
	}
	return nil
}

// value returns the value of the counter, gauge or untyped series name{labels} (see series); ok
// is false when there is no such series.
func (m metricFamilies) value(name string, labels ...string) (v float64, ok bool) {
	s := m.series(name, labels...)
	switch {
	case s.GetCounter() != nil:
		return s.GetCounter().GetValue(), true
	case s.GetGauge() != nil:
		return s.GetGauge().GetValue(), true
	case s.GetUntyped() != nil:
		return s.GetUntyped().GetValue(), true
	}
	return 0, false
}

// histogram returns the histogram series name{labels} (see series), or nil; its getters read a
// nil one as empty.
func (m metricFamilies) histogram(name string, labels ...string) *dto.Histogram {
	return m.series(name, labels...).GetHistogram()
}
