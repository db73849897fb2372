package supervise

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"syscall"
)

// This file answers "why did it crash?": the child's peak memory and, for a
// SIGKILL nobody in the gateway sent, the hint that it was most likely the
// out-of-memory killer.

// peakRSS returns the child's peak resident set size in bytes from the
// rusage that Wait read when it reaped the child, or 0 when there is none.
//
// That rusage is the reaped child's own (wait4/waitid for one PID), not the
// gateway's accumulated RUSAGE_CHILDREN. Linux takes ru_maxrss as the larger
// of the child's own peak and the peak of the descendants it reaped itself;
// grandchildren still running when it died (workers of a server killed with
// it) are not covered. Because Go starts children with vfork (CLONE_VM), the
// kernel also carries the gateway's own high-water mark at start time into
// the child across exec: the figure is never below the gateway's peak RSS at
// that moment (tens of MiB), which only matters for tiny children.
func peakRSS(ps *os.ProcessState) int64 {
	if ps == nil {
		return 0
	}
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok || ru == nil || ru.Maxrss <= 0 {
		return 0
	}
	return ru.Maxrss * maxrssUnit
}

// formatBytes renders n in binary units, whole KiB and MiB, GiB with one
// decimal: "812KiB", "312MiB", "15.8GiB".
func formatBytes(n int64) string {
	switch {
	case n < 1<<20:
		return fmt.Sprintf("%dKiB", (n+1<<9)>>10)
	case n < 1<<30:
		return fmt.Sprintf("%dMiB", (n+1<<19)>>20)
	default:
		return fmt.Sprintf("%.1fGiB", float64(n)/(1<<30))
	}
}

// memoryQuantity is what a memory size looks like ("16Gi", "512M", "2GB").
// Anything else in MEMORY is not repeated in the hint, because the hint is
// logged and shown on /ready and MEMORY could be a user's own variable.
var memoryQuantity = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?[A-Za-z]{0,3}$`)

// memoryLimit returns the MEMORY variable of the child's environment, which
// Hugging Face sets on a Space to its hardware's memory ("16Gi"), or "" when
// it is unset or does not look like a memory size. As with exec, the last
// entry for a key wins.
func memoryLimit(env []string) string {
	v := ""
	for _, kv := range env {
		if rest, ok := strings.CutPrefix(kv, "MEMORY="); ok {
			v = rest
		}
	}
	if !memoryQuantity.MatchString(v) {
		return ""
	}
	return v
}

// oomHint is the hint for a SIGKILL the gateway did not send. memory is the
// Space's MEMORY ("" when unknown).
func oomHint(memory string) string {
	h := "killed by a SIGKILL the gateway did not send; on a Space this is usually the out-of-memory killer"
	if memory != "" {
		h += " (the Space has MEMORY=" + memory + ")"
	}
	return h
}
