package main

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"
)

// cellStats sums up one cell's outcomes.
type cellStats struct {
	offered int
	ok      int           // 200s
	goodput float64       // 200s per second, from the first send to the last 200
	p50     time.Duration // of the 200s, from their scheduled send time
	p99     time.Duration

	refused       int         // 503, 502 or 429: the target turned the request away
	refusedBy     map[int]int // per status
	refusedFast   int         // of the refused, answered within 1 s
	refusedMedian time.Duration

	timeouts int            // the client gave up (at its 60 s)
	gw504    int            // 504: a proxy gave up waiting for the backend
	other    map[string]int // any other status, or "conn error"
	retry    map[string]int // Retry-After values seen, over every answer
}

// isRefusal reports whether status is a target turning a request away (503 from uvicorn,
// HAProxy and hfgate; 502 from nginx at max_conns; 429 from a rate limiter).
func isRefusal(status int) bool {
	return status == http.StatusServiceUnavailable || status == http.StatusBadGateway || status == http.StatusTooManyRequests
}

// summarize sums up outs.
func summarize(outs []outcome) cellStats {
	s := cellStats{offered: len(outs), refusedBy: map[int]int{}, other: map[string]int{}, retry: map[string]int{}}
	var oks, refusals []time.Duration
	var lastOK time.Duration
	for _, o := range outs {
		if o.retryAfter != "" {
			s.retry[o.retryAfter]++
		}
		switch {
		case o.timedOut:
			s.timeouts++
		case o.connErr:
			s.other["conn error"]++
		case o.status == http.StatusOK:
			oks = append(oks, o.took)
			lastOK = max(lastOK, o.at+o.took)
		case isRefusal(o.status):
			refusals = append(refusals, o.took)
			s.refusedBy[o.status]++
			if o.took <= time.Second {
				s.refusedFast++
			}
		case o.status == http.StatusGatewayTimeout:
			s.gw504++
		default:
			s.other[fmt.Sprint(o.status)]++
		}
	}
	s.ok, s.refused = len(oks), len(refusals)
	if lastOK > 0 {
		s.goodput = float64(s.ok) / lastOK.Seconds()
	}
	s.p50, s.p99 = quantile(oks, 0.5), quantile(oks, 0.99)
	s.refusedMedian = quantile(refusals, 0.5)
	return s
}

// fastShare is the share of the refusals answered within 1 s, in percent (100 when none).
func (s cellStats) fastShare() float64 {
	if s.refused == 0 {
		return 100
	}
	return 100 * float64(s.refusedFast) / float64(s.refused)
}

// refusedCell renders the refusals: "152 (503)", "40 (502: 12, 503: 28)", or "0".
func (s cellStats) refusedCell() string {
	if s.refused == 0 {
		return "0"
	}
	return fmt.Sprintf("%d (%s)", s.refused, countsOf(s.refusedBy, func(k int) string { return fmt.Sprint(k) }, ""))
}

// otherCell renders the other answers: "-" or "conn error ×3, 500 ×1".
func (s cellStats) otherCell() string {
	if len(s.other) == 0 {
		return "-"
	}
	return countsOf(s.other, func(k string) string { return k }, " ×")
}

// retryCell renders the Retry-After values seen: "none" or "10 ×140, 9 ×12".
func (s cellStats) retryCell() string {
	if len(s.retry) == 0 {
		return "none"
	}
	return countsOf(s.retry, func(k string) string { return k }, " ×")
}

// countsOf renders a count per key, most frequent first: "k1 ×n1, k2 ×n2" (sep " ×"), or with
// sep "" just the keys ("503") when there is one, else "k: n, ...".
func countsOf[K comparable](m map[K]int, name func(K) string, sep string) string {
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b K) int {
		if m[a] != m[b] {
			return m[b] - m[a]
		}
		return strings.Compare(name(a), name(b))
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		switch {
		case sep != "":
			parts[i] = fmt.Sprintf("%s%s%d", name(k), sep, m[k])
		case len(keys) == 1:
			parts[i] = name(k)
		default:
			parts[i] = fmt.Sprintf("%s: %d", name(k), m[k])
		}
	}
	return strings.Join(parts, ", ")
}
