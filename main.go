// Command hfgate is a gateway for a FastAPI chat backend on Hugging Face Spaces: it binds the
// Space's port at once, answers 503 with Retry-After while the backend is cold, forwards
// everything (event streams and WebSockets included) once it is ready, owns CORS, and can start
// and supervise the backend itself. It is configured only by environment variables; run
// `hfgate -h` for the list.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/hfgate/hfgate/config"
	"github.com/hfgate/hfgate/gateway"
	"github.com/hfgate/hfgate/logging"
)

// Set at link time by `make build`, `make space` and `make release`
// (-ldflags "-X main.version=... -X main.commit=... -X main.date=..."). Empty values fall back
// to the build information the Go toolchain records (module version, VCS revision and time).
var (
	version string
	commit  string
	date    string
)

func main() {
	// One P unless GOMAXPROCS says otherwise: process start-up, so it lives here, before
	// anything runs; run logs it ("runtime" line). hfgate shares a small machine (a 2-vCPU
	// Space) with the backend it fronts; with a second P its idle threads spin for work between
	// requests and take CPU the backend needs, while one P forwards far more than a Space's
	// rates (docs/performance.md, "The hot path": one P by default, has the figures). No
	// GODEBUG setting: schedtrace, which saved CPU, makes the runtime print to stderr outside
	// the log format on a host up for over 24.8 days (docs/performance.md, "sysmon").
	if _, source := gomaxprocs(os.Environ()); source == procsDefault {
		runtime.GOMAXPROCS(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	code := run(ctx, os.Args[1:], os.Environ(), os.Stderr)
	stop()
	os.Exit(code)
}

// run is hfgate without the process around it: it returns the exit code (0 after a clean
// shutdown, 2 for bad configuration or usage, 1 when the port cannot be bound or serving fails).
func run(ctx context.Context, args, environ []string, stderr io.Writer) int {
	start := time.Now()
	for _, a := range args {
		switch a {
		case "-h", "-help", "--help", "help":
			config.WriteHelp(stderr)
			return 0
		case "-version", "--version", "version":
			fmt.Fprintln(stderr, versionLine())
			return 0
		default:
			fmt.Fprintf(stderr, "hfgate: unknown argument %q: hfgate is configured by environment variables; see hfgate -h\n", a)
			return 2
		}
	}
	cfg, err := config.Load(env.ToMap(environ))
	if err != nil {
		fmt.Fprintf(stderr, "hfgate: invalid configuration:\n%v\n", err)
		return 2
	}
	// Lines go through a bounded buffer that one goroutine writes out, so that a console that
	// stops reading never stalls a request (docs/configuration.md, "Logs"). Deferred first, so
	// it runs last: every line is written before run returns.
	logOut := logging.NewWriter(stderr, logging.WriterOptions{})
	defer logOut.Close()
	logger := logging.New(logOut, logging.Options{Format: cfg.LogFormat, Level: cfg.LogLevel, Secrets: cfg.Secrets,
		Droppable: gateway.AccessLine})

	// Bind before anything slow, so the Space answers from the first moments.
	ln, err := net.Listen("tcp", cfg.Addr())
	if err != nil {
		logger.Error("cannot listen", "addr", cfg.Addr(), "err", err)
		return 1
	}
	logger.Info("listening", "addr", ln.Addr().String(), "port_source", cfg.PortSource, "host_source", cfg.HostSource,
		"bound_in", time.Since(start).Round(time.Microsecond), "version", buildVersion())
	_, procsSource := gomaxprocs(environ)
	logger.Info("runtime", "gomaxprocs", runtime.GOMAXPROCS(0), "source", procsSource)
	logger.LogAttrs(ctx, slog.LevelInfo, "config", cfg.LogAttrs()...)
	for _, w := range cfg.Warnings {
		// A variable that another overrides: reported, never fatal (see config.Warning).
		logger.LogAttrs(ctx, slog.LevelWarn, "variable ignored", w.LogAttrs()...)
	}
	if cfg.SpaceHost != "" || cfg.SpaceID != "" {
		// The Space's public address, which its Logs console does not show anywhere else.
		logger.Info("space", "id", cfg.SpaceID, "url", cfg.PublicURL())
	}

	g, err := gateway.New(cfg, gateway.Options{Logger: logger, DroppedLines: logOut.Dropped, Environ: environ})
	if err != nil {
		logger.Error("cannot start", "err", err)
		return 1
	}
	if err := g.Serve(ctx, ln); err != nil {
		logger.Error("stopped", "err", err)
		return 1
	}
	logger.Info("stopped")
	return 0
}

// procsDefault and procsEnv are the sources gomaxprocs reports.
const (
	procsDefault = "default"    // hfgate's default, one P
	procsEnv     = "GOMAXPROCS" // the variable, which the runtime has applied itself
)

// gomaxprocs returns the number of Ps hfgate runs Go code on and where it comes from: a
// GOMAXPROCS the runtime accepts (a whole number above 0, read by the runtime at start), else
// hfgate's default of one (the runtime ignores any other value, so hfgate's default applies).
// Like the runtime, it reads the first GOMAXPROCS in environ.
func gomaxprocs(environ []string) (int, string) {
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, "GOMAXPROCS="); ok {
			if n, err := strconv.ParseInt(v, 10, 32); err == nil && n > 0 {
				return int(n), procsEnv
			}
			break
		}
	}
	return 1, procsDefault
}

// versionLine is what `hfgate --version` prints: one line with the version, the commit, the
// build date, the Go release and the platform.
func versionLine() string {
	v, c, d := buildStamp()
	return fmt.Sprintf("hfgate %s (commit %s, built %s, %s %s/%s)", v, c, d, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// buildVersion is the version alone, for the start-up log line.
func buildVersion() string {
	v, _, _ := buildStamp()
	return v
}

// buildStamp returns the version, commit and build date: the link-time values when set, else
// the module version and VCS settings from the build information, else "unknown".
func buildStamp() (v, c, d string) {
	v, c, d = version, commit, date
	if info, ok := debug.ReadBuildInfo(); ok {
		if v == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			v = info.Main.Version
		}
		dirty := false
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				if c == "" {
					c = s.Value
				}
			case "vcs.time":
				if d == "" {
					d = s.Value
				}
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if dirty && commit == "" && c != "" {
			c += "-dirty"
		}
	}
	if len(c) > 12 {
		c = c[:12]
	}
	if v == "" {
		v = "devel"
	}
	if c == "" {
		c = "unknown"
	}
	if d == "" {
		d = "unknown"
	}
	return v, c, d
}
