package main

import (
	"strings"
	"testing"
)

// A trimmed `perf script -F tid,period,ip,sym` of hfgate: three samples of 0.5 ms each.
const perfScript = ` 4242     500000 
	ffffffff81c4a1b0 tcp_sendmsg
	ffffffff81000c82 entry_SYSCALL_64_after_hwframe
	          4a1f20 internal/runtime/syscall.Syscall6
	          52c3e0 net/http.(*persistConn).writeLoop
	          47d9a1 runtime.goexit.abi0

 4243     500000 
	          61f2a0 github.com/lmittmann/tint.(*handler).Handle
	          6a0b11 github.com/hfgate/hfgate/middleware.AccessLogConfig.log
	          6a0c02 github.com/labstack/echo/v4.(*Echo).ServeHTTP
	          54e000 net/http.(*conn).serve

 4244     1000000 
	ffffffff81bd0000 __schedule
	ffffffff81bd0100 schedule
	ffffffff81bd0200 do_nanosleep
	          43a000 runtime.usleep.abi0
	          43b000 runtime.sysmon

`

func TestParsePerfScript(t *testing.T) {
	var got []sample
	if err := parsePerfScript(strings.NewReader(perfScript), func(s sample) { got = append(got, s) }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("samples: got %d, want 3", len(got))
	}
	if got[0].period != 500000 || len(got[0].kernel) != 2 || len(got[0].user) != 3 || got[0].kernel[0] != "tcp_sendmsg" {
		t.Errorf("sample 0: got %+v", got[0])
	}
	tests := []struct{ area, kernel string }{
		{"Transport writeLoop", "TCP send (loopback: with the receiver's softirq)"},
		{"access log", ""}, // before echo and net/http, which are further up its chain
		{"runtime: sysmon", "context switch"},
	}
	for i, tt := range tests {
		if a, k := got[i].classify(); a != tt.area || k != tt.kernel {
			t.Errorf("sample %d: got %q, %q, want %q, %q", i, a, k, tt.area, tt.kernel)
		}
	}
	if err := parsePerfScript(strings.NewReader(" 1 notanumber\n"), func(sample) {}); err == nil {
		t.Error("bad period: got no error")
	}
}

func TestPerfAreas(t *testing.T) {
	// 2 ms sampled over 10 requests: 200 µs per request; sysmon 100, the other two 50 each.
	out, err := perfAreas(strings.NewReader(perfScript), 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| runtime: sysmon | 100.0 | 50.0 % |\n| Transport writeLoop | 50.0 | 25.0 % |",
		"| **all sampled** | **200.0** | 100 % |",
		"| context switch | 100.0 | 66.7 % |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("tables lack %q:\n%s", want, out)
		}
	}
	if _, err := perfAreas(strings.NewReader(perfScript), 0); err == nil {
		t.Error("no requests: got no error")
	}
}
