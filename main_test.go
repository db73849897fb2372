package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hfgate/hfgate/logging/logtest"
)

func TestRunHelp(t *testing.T) {
	t.Parallel()
	for _, arg := range []string{"-h", "--help"} {
		var out bytes.Buffer
		if code := run(context.Background(), []string{arg}, nil, &out); code != 0 {
			t.Errorf("run %s = %d, want 0", arg, code)
		}
		for _, v := range []string{"PORT", "GRADIO_SERVER_PORT", "UPSTREAM_URL", "UPSTREAM_CMD", "REQUIRED_ENV", "CORS_ALLOW_ORIGINS", "SHUTDOWN_TIMEOUT", "7860", "55s"} {
			if !strings.Contains(out.String(), v) {
				t.Errorf("run %s output lacks %q", arg, v)
			}
		}
	}
}

func TestRunVersion(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if code := run(context.Background(), []string{"--version"}, nil, &out); code != 0 {
		t.Fatalf("run --version = %d, want 0", code)
	}
	line := out.String()
	// Under go test nothing is stamped: the fallbacks show.
	if !strings.HasPrefix(line, "hfgate ") || strings.Count(line, "\n") != 1 || !strings.Contains(line, "commit ") ||
		!strings.Contains(line, "built ") || !strings.Contains(line, runtime.Version()) {
		t.Errorf("run --version printed %q, want one line: hfgate VERSION (commit C, built D, goX os/arch)", line)
	}
}

func TestRunRejectsArguments(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if code := run(context.Background(), []string{"--port=80"}, nil, &out); code != 2 {
		t.Errorf("exit code = %d, want 2", code)
	}
	if !strings.Contains(out.String(), "environment variables") {
		t.Errorf("output = %q, want a pointer to the environment", out.String())
	}
}

func TestRunBadConfigExits2NamingEveryVariable(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	environ := []string{
		"UPSTREAM_URL=notaurl-s3cr3t",
		"PORT=99999",
		"LOG_LEVEL=loud",
		"CORS_ALLOW_ORIGINS=*",
		"CORS_ALLOW_CREDENTIALS=true",
	}
	if code := run(context.Background(), nil, environ, &out); code != 2 {
		t.Fatalf("exit code = %d, want 2; output:\n%s", code, out.String())
	}
	got := out.String()
	for _, v := range []string{"UPSTREAM_URL", "PORT", "LOG_LEVEL", "CORS_ALLOW_CREDENTIALS"} {
		if !strings.Contains(got, v+":") {
			t.Errorf("output lacks a line for %s:\n%s", v, got)
		}
	}
	if strings.Contains(got, "s3cr3t") {
		t.Errorf("output echoes a value:\n%s", got)
	}
}

func TestRunServesAndStopsCleanly(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close() // run binds it again; the race with another process is harmless here
	out := logtest.NewSink()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	environ := []string{
		// PORT is invalid, but GRADIO_SERVER_PORT overrides it: a warning, not exit 2.
		"GRADIO_SERVER_PORT=" + strconv.Itoa(port), "PORT=notaport-s3cr3t", "HOST=127.0.0.1",
		"UPSTREAM_URL=http://127.0.0.1:1", "HF_TOKEN=hf_abcdefghijklmnop",
		"SPACE_HOST=alice-chat.hf.space", "SPACE_ID=alice/chat",
	}
	go func() { done <- run(ctx, nil, environ, out) }()

	out.WaitText(t, "listening")
	resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/healthz")
	if err != nil {
		t.Fatalf("gateway does not answer after logging listening: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/healthz = %d, want 200", resp.StatusCode)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit code = %d, want 0", code)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return after cancel")
	}
	log := out.String()
	// The log is buffered: the last line is out by the time run returns.
	if !strings.HasSuffix(log, " INF stopped\n") {
		t.Errorf("log does not end with the stopped line:\n%s", log)
	}
	if !strings.Contains(log, "port_source=GRADIO_SERVER_PORT") {
		t.Errorf("start-up line does not name the port source:\n%s", log)
	}
	if want := ` WRN variable ignored var=PORT overridden_by=GRADIO_SERVER_PORT problem="must be a whole number from 1 to 65535"`; !strings.Contains(log, want+"\n") {
		t.Errorf("log lacks the line %q:\n%s", want, log)
	}
	if strings.Contains(log, "s3cr3t") {
		t.Errorf("the ignored value reached the log:\n%s", log)
	}
	if !strings.Contains(log, "INF space id=alice/chat url=https://alice-chat.hf.space") {
		t.Errorf("start-up log does not give the Space's public URL:\n%s", log)
	}
	if strings.Contains(log, "hf_abcdefghijklmnop") {
		t.Errorf("a secret reached the log:\n%s", log)
	}
	if strings.ContainsRune(log, 0x1b) {
		t.Errorf("log contains ESC:\n%s", log)
	}
}

func TestRunPortInUseExits1(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var out bytes.Buffer
	environ := []string{"PORT=" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port), "HOST=127.0.0.1"}
	if code := run(context.Background(), nil, environ, &out); code != 1 {
		t.Errorf("exit code = %d, want 1; output:\n%s", code, out.String())
	}
	if !strings.Contains(out.String(), "cannot listen") {
		t.Errorf("output = %q, want a listen error", out.String())
	}
}

// TestGOMAXPROCS: a GOMAXPROCS the runtime applies (the first in the environment, a whole
// number above 0) is reported as the source; any other leaves hfgate's default of one.
func TestGOMAXPROCS(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		environ    []string
		want       int
		wantSource string
	}{
		{"unset", []string{"PORT=7860"}, 1, procsDefault},
		{"set", []string{"GOMAXPROCS=4"}, 4, procsEnv},
		{"the first counts, as for the runtime", []string{"GOMAXPROCS=2", "GOMAXPROCS=3"}, 2, procsEnv},
		{"empty", []string{"GOMAXPROCS="}, 1, procsDefault},
		{"zero", []string{"GOMAXPROCS=0"}, 1, procsDefault},
		{"not a number", []string{"GOMAXPROCS=two"}, 1, procsDefault},
		{"above int32", []string{"GOMAXPROCS=4294967296"}, 1, procsDefault},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if n, source := gomaxprocs(tt.environ); n != tt.want || source != tt.wantSource {
				t.Errorf("gomaxprocs(%q) = %d, %q; want %d, %q", tt.environ, n, source, tt.want, tt.wantSource)
			}
		})
	}
}
