package gateway

import (
	"slices"
	"testing"
)

func TestSysmonEnv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		environ []string
		want    []string // nil: no restart
	}{
		{"no GODEBUG", []string{"PORT=7860"}, []string{"PORT=7860", "GODEBUG=" + SysmonSchedtrace}},
		{"other settings kept", []string{"GODEBUG=http2client=0", "A=b"}, []string{"GODEBUG=http2client=0," + SysmonSchedtrace, "A=b"}},
		{"empty GODEBUG", []string{"GODEBUG="}, []string{"GODEBUG=" + SysmonSchedtrace}},
		{"already set", []string{"GODEBUG=" + SysmonSchedtrace}, nil},
		{"turned off", []string{"GODEBUG=gctrace=1, schedtrace=0"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, restart := SysmonEnv(tt.environ)
			if restart != (tt.want != nil) || !slices.Equal(got, tt.want) {
				t.Errorf("SysmonEnv(%q) = %q, %v; want %q", tt.environ, got, restart, tt.want)
			}
		})
	}
}

// TestChildEnvDropsSysmonSetting: the GODEBUG setting hfgate added for itself does not reach the
// backend; the user's own GODEBUG settings do.
func TestChildEnvDropsSysmonSetting(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		environ []string
		want    []string
	}{
		{"added alone", []string{"GODEBUG=" + SysmonSchedtrace, "A=b"}, []string{"A=b", "PYTHONUNBUFFERED=1"}},
		{"added to the user's", []string{"GODEBUG=http2client=0," + SysmonSchedtrace}, []string{"GODEBUG=http2client=0", "PYTHONUNBUFFERED=1"}},
		{"the user's own", []string{"GODEBUG=schedtrace=0", "PYTHONUNBUFFERED=0"}, []string{"GODEBUG=schedtrace=0", "PYTHONUNBUFFERED=0"}},
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
