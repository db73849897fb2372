package gateway

import (
	"slices"
	"testing"
)

// TestChildEnv: the backend gets the gateway's environment as it is, the user's GODEBUG
// included, plus PYTHONUNBUFFERED=1 unless the user set it.
func TestChildEnv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		environ []string
		want    []string
	}{
		{"unbuffered added", []string{"A=b"}, []string{"A=b", "PYTHONUNBUFFERED=1"}},
		{"the user's GODEBUG passes", []string{"GODEBUG=http2client=0,schedtrace=1000"}, []string{"GODEBUG=http2client=0,schedtrace=1000", "PYTHONUNBUFFERED=1"}},
		{"the user's PYTHONUNBUFFERED kept", []string{"PYTHONUNBUFFERED=0", "A=b"}, []string{"PYTHONUNBUFFERED=0", "A=b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := childEnv(tt.environ); !slices.Equal(got, tt.want) {
				t.Errorf("childEnv(%q) = %q, want %q", tt.environ, got, tt.want)
			}
		})
	}
}
