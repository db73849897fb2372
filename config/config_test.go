package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// mustLoad loads environ and fails the test on any error.
func mustLoad(t *testing.T, environ map[string]string) Config {
	t.Helper()
	c, err := Load(environ)
	if err != nil {
		t.Fatalf("Load(%v): got error\n%v\nwant none", environ, err)
	}
	return c
}

// loadProblems loads environ, which must be invalid, and returns the
// problems.
func loadProblems(t *testing.T, environ map[string]string) []string {
	t.Helper()
	c, err := Load(environ)
	if err == nil {
		t.Fatalf("Load(%v): got no error, want one", environ)
	}
	var cerr *Error
	if !errors.As(err, &cerr) {
		t.Fatalf("Load: got error of type %T, want *config.Error", err)
	}
	if got := err.Error(); got != strings.Join(cerr.Problems, "\n") {
		t.Errorf("Error(): got %q, want the problems joined by newlines", got)
	}
	if !reflect.DeepEqual(c, Config{}) {
		t.Errorf("Load: got config %+v with the error, want the zero Config", c)
	}
	return cerr.Problems
}

func wantDefaults() Config {
	return Config{
		Port:                7860,
		PortSource:          "default",
		Host:                "0.0.0.0",
		HostSource:          "default",
		UpstreamURL:         mustURL("http://127.0.0.1:8000"),
		UpstreamHealthPath:  "/health",
		UpstreamTimeout:     55 * time.Second,
		UpstreamCmd:         nil,
		UpstreamDir:         "",
		UpstreamStopTimeout: 5 * time.Second,
		UpstreamMaxBackoff:  30 * time.Second,
		RequiredEnv:         []string{},
		CORSAllowOrigins:    []string{},
		CORSAllowHeaders:    []string{"Accept", "Authorization", "Content-Type", "Last-Event-ID", "X-Request-ID"},
		CORSMaxAge:          600,
		TrustedProxies: []netip.Prefix{
			netip.MustParsePrefix("127.0.0.0/8"),
			netip.MustParsePrefix("::1/128"),
			netip.MustParsePrefix("10.0.0.0/8"),
			netip.MustParsePrefix("172.16.0.0/12"),
			netip.MustParsePrefix("192.168.0.0/16"),
			netip.MustParsePrefix("100.64.0.0/10"),
			netip.MustParsePrefix("fc00::/7"),
		},
		MaxBodyBytes:    10 << 20,
		BufferBodyBytes: 64 << 10,
		BodyReadTimeout: 30 * time.Second,
		HoldTimeout:     10 * time.Second,
		HoldMax:         256,
		LogLevel:        slog.LevelInfo,
		LogFormat:       "text",
		LogClientAddr:   true,
		ShutdownTimeout: 10 * time.Second,
		Missing:         []string{},
		Secrets:         []string{},
		Warnings:        []Warning{},
	}
}

func TestLoadDefaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		environ map[string]string
	}{
		{name: "nil map", environ: nil},
		{name: "empty map", environ: map[string]string{}},
		{name: "unrelated variables", environ: map[string]string{"PATH": "/bin", "HOME": "/root"}},
		{name: "every variable empty", environ: emptyValues()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := mustLoad(t, tt.environ)
			want := wantDefaults()
			if _, ok := tt.environ["TRUSTED_PROXIES"]; ok {
				want.TrustedProxies = []netip.Prefix{} // set but empty: trust nobody
			}
			assertConfig(t, got, want)
		})
	}
}

// emptyValues sets every variable to "".
func emptyValues() map[string]string {
	environ := make(map[string]string)
	for _, v := range Vars() {
		environ[v.Name] = ""
	}
	return environ
}

// TestLoadEachDefaultExplicitly checks that the documented default of each
// variable, set explicitly, is what Load uses when it is unset.
func TestLoadEachDefaultExplicitly(t *testing.T) {
	t.Parallel()
	for _, v := range Vars() {
		if v.Default == "" {
			continue
		}
		t.Run(v.Name, func(t *testing.T) {
			t.Parallel()
			got := mustLoad(t, map[string]string{v.Name: v.Default})
			want := wantDefaults()
			switch v.Name {
			case "PORT":
				want.PortSource = "PORT"
			case "HOST":
				want.HostSource = "HOST"
			}
			assertConfig(t, got, want)
		})
	}
}

func TestLoadIgnoresProcessEnvironment(t *testing.T) {
	// Not parallel: t.Setenv changes the process environment.
	t.Setenv("PORT", "1234")
	t.Setenv("OPENAI_API_KEY", "process-secret")
	for _, environ := range []map[string]string{nil, {}} {
		c := mustLoad(t, environ)
		if c.Port != 7860 {
			t.Errorf("Load(%v): got Port %d, want 7860 (the process environment must not be read)", environ, c.Port)
		}
		if len(c.Secrets) != 0 {
			t.Errorf("Load(%v): got %d secrets, want 0", environ, len(c.Secrets))
		}
	}
}

func assertConfig(t *testing.T, got, want Config) {
	t.Helper()
	gv, wv := reflect.ValueOf(got), reflect.ValueOf(want)
	for i := range gv.NumField() {
		name := gv.Type().Field(i).Name
		g, w := gv.Field(i).Interface(), wv.Field(i).Interface()
		if !reflect.DeepEqual(g, w) {
			t.Errorf("%s: got %#v, want %#v", name, g, w)
		}
	}
}

func TestLoadValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		environ map[string]string
		check   func(t *testing.T, c Config)
	}{
		{
			name:    "client address left out of logs",
			environ: map[string]string{"LOG_CLIENT_ADDR": "false"},
			check: func(t *testing.T, c Config) {
				if c.LogClientAddr {
					t.Error("LogClientAddr: got true, want false")
				}
			},
		},
		{
			name:    "values are trimmed",
			environ: map[string]string{"PORT": " 8080\n", "LOG_FORMAT": " JSON ", "UPSTREAM_TIMEOUT": "\t2m "},
			check: func(t *testing.T, c Config) {
				if c.Port != 8080 || c.LogFormat != "json" || c.UpstreamTimeout != 2*time.Minute {
					t.Errorf("got Port %d, LogFormat %q, UpstreamTimeout %v; want 8080, json, 2m", c.Port, c.LogFormat, c.UpstreamTimeout)
				}
			},
		},
		{
			name:    "upstream URL with path and credentials",
			environ: map[string]string{"UPSTREAM_URL": "https://user:pass-word@backend.internal:9000/api/"},
			check: func(t *testing.T, c Config) {
				if got, want := c.UpstreamURL.Redacted(), "https://user:xxxxx@backend.internal:9000/api"; got != want {
					t.Errorf("UpstreamURL: got %q, want %q", got, want)
				}
			},
		},
		{
			name:    "upstream command and dir",
			environ: map[string]string{"UPSTREAM_CMD": `python -m uvicorn app:app --root-path "/my app"`, "UPSTREAM_DIR": "/srv/app"},
			check: func(t *testing.T, c Config) {
				want := Command{"python", "-m", "uvicorn", "app:app", "--root-path", "/my app"}
				if !slices.Equal(c.UpstreamCmd, want) || c.UpstreamDir != "/srv/app" {
					t.Errorf("got UpstreamCmd %q, UpstreamDir %q; want %q, /srv/app", c.UpstreamCmd, c.UpstreamDir, want)
				}
			},
		},
		{
			name:    "health path and durations",
			environ: map[string]string{"UPSTREAM_HEALTH_PATH": "/api/health?full=1", "UPSTREAM_STOP_TIMEOUT": "1500ms", "SHUTDOWN_TIMEOUT": "1m30s"},
			check: func(t *testing.T, c Config) {
				if c.UpstreamHealthPath != "/api/health?full=1" || c.UpstreamStopTimeout != 1500*time.Millisecond || c.ShutdownTimeout != 90*time.Second {
					t.Errorf("got %q, %v, %v", c.UpstreamHealthPath, c.UpstreamStopTimeout, c.ShutdownTimeout)
				}
			},
		},
		{
			name:    "required env trimmed, empties dropped, deduplicated",
			environ: map[string]string{"REQUIRED_ENV": " OPENAI_API_KEY, ,_X1,OPENAI_API_KEY,", "OPENAI_API_KEY": "sk-12345", "_X1": "v"},
			check: func(t *testing.T, c Config) {
				if want := []string{"OPENAI_API_KEY", "_X1"}; !slices.Equal(c.RequiredEnv, want) {
					t.Errorf("RequiredEnv: got %q, want %q", c.RequiredEnv, want)
				}
			},
		},
		{
			name:    "cors headers list",
			environ: map[string]string{"CORS_ALLOW_HEADERS": " Content-Type , X-Custom ,"},
			check: func(t *testing.T, c Config) {
				if want := []string{"Content-Type", "X-Custom"}; !slices.Equal(c.CORSAllowHeaders, want) {
					t.Errorf("CORSAllowHeaders: got %q, want %q", c.CORSAllowHeaders, want)
				}
			},
		},
		{
			name:    "cors credentials and max age",
			environ: map[string]string{"CORS_ALLOW_ORIGINS": "https://a.example", "CORS_ALLOW_CREDENTIALS": "true", "CORS_MAX_AGE": "0"},
			check: func(t *testing.T, c Config) {
				if !c.CORSAllowCredentials || c.CORSMaxAge != 0 {
					t.Errorf("got credentials %v, max age %d; want true, 0", c.CORSAllowCredentials, c.CORSMaxAge)
				}
			},
		},
		{
			name:    "space variables and metrics address",
			environ: map[string]string{"SPACE_HOST": "alice-chat.hf.space", "SPACE_ID": "alice/chat", "METRICS_ADDR": "127.0.0.1:0"},
			check: func(t *testing.T, c Config) {
				if c.SpaceHost != "alice-chat.hf.space" || c.SpaceID != "alice/chat" || c.MetricsAddr != "127.0.0.1:0" {
					t.Errorf("got SpaceHost %q, SpaceID %q, MetricsAddr %q", c.SpaceHost, c.SpaceID, c.MetricsAddr)
				}
				if got, want := c.PublicURL(), "https://alice-chat.hf.space"; got != want {
					t.Errorf("PublicURL: got %q, want %q", got, want)
				}
			},
		},
		{
			name:    "space host with a scheme is kept",
			environ: map[string]string{"SPACE_HOST": "http://localhost:7860", "METRICS_ADDR": ":9090"},
			check: func(t *testing.T, c Config) {
				if got, want := c.PublicURL(), "http://localhost:7860"; got != want {
					t.Errorf("PublicURL: got %q, want %q", got, want)
				}
			},
		},
		{
			name:    "cors max age upper bound",
			environ: map[string]string{"CORS_MAX_AGE": "86400"},
			check: func(t *testing.T, c Config) {
				if c.CORSMaxAge != 86400 {
					t.Errorf("CORSMaxAge: got %d, want 86400", c.CORSMaxAge)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.check(t, mustLoad(t, tt.environ))
		})
	}
}

func TestLoadLogLevel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want slog.Level
	}{
		{in: "debug", want: slog.LevelDebug},
		{in: "DEBUG", want: slog.LevelDebug},
		{in: "Info", want: slog.LevelInfo},
		{in: "warn", want: slog.LevelWarn},
		{in: "error", want: slog.LevelError},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			c := mustLoad(t, map[string]string{"LOG_LEVEL": tt.in})
			if c.LogLevel != tt.want {
				t.Errorf("LOG_LEVEL=%s: got %v, want %v", tt.in, c.LogLevel, tt.want)
			}
		})
	}
}

// TestLoadInvalid sets one variable to a bad value and checks the single
// problem: it names the variable, says what is wanted and never quotes the
// value.
func TestLoadInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		varName string
		value   string
		extra   map[string]string // other variables, all valid
		want    string            // substring of the problem
	}{
		{name: "port not a number", varName: "PORT", value: "zq9-port", want: "whole number"},
		{name: "port zero", varName: "PORT", value: "00000", want: "from 1 to 65535"},
		{name: "port too big", varName: "PORT", value: "70123", want: "from 1 to 65535"},
		{name: "port negative", varName: "PORT", value: "-8123", want: "from 1 to 65535"},
		{name: "gradio port", varName: "GRADIO_SERVER_PORT", value: "zq9-gport", want: "whole number"},
		{name: "gradio port range", varName: "GRADIO_SERVER_PORT", value: "99123", want: "from 1 to 65535"},
		{name: "host", varName: "HOST", value: "zq9 host!", want: "IP address or a host name"},
		{name: "host with port", varName: "HOST", value: "zq9host:80", want: "IP address or a host name"},
		{name: "gradio name", varName: "GRADIO_SERVER_NAME", value: "zq9/name", want: "IP address or a host name"},
		{name: "url relative", varName: "UPSTREAM_URL", value: "zq9-host:8000", want: "absolute http"},
		{name: "url no scheme", varName: "UPSTREAM_URL", value: "//zq9.example:8000", want: "absolute http"},
		{name: "url bad scheme", varName: "UPSTREAM_URL", value: "ftp://zq9.example", want: "absolute http"},
		{name: "url no host", varName: "UPSTREAM_URL", value: "http:///zq9", want: "absolute http"},
		{name: "url query", varName: "UPSTREAM_URL", value: "http://zq9.example/?a=b", want: "query"},
		{name: "url fragment", varName: "UPSTREAM_URL", value: "http://zq9.example/#frag", want: "fragment"},
		{name: "url unparsable", varName: "UPSTREAM_URL", value: "http://zq9 example\x7f", want: "absolute http"},
		{name: "url port", varName: "UPSTREAM_URL", value: "http://zq9.example:99999", want: "port from 1 to 65535"},
		{name: "health path relative", varName: "UPSTREAM_HEALTH_PATH", value: "zq9health", want: "starting with a single /"},
		{name: "health path other host", varName: "UPSTREAM_HEALTH_PATH", value: "//zq9.example/health", want: "starting with a single /"},
		{name: "health path space", varName: "UPSTREAM_HEALTH_PATH", value: "/zq9 health", want: "spaces"},
		{name: "timeout not duration", varName: "UPSTREAM_TIMEOUT", value: "zq9s", want: "duration"},
		{name: "timeout without unit", varName: "UPSTREAM_TIMEOUT", value: "30123", want: "duration"},
		{name: "timeout zero", varName: "UPSTREAM_TIMEOUT", value: "0s", want: "greater than zero"},
		{name: "timeout negative", varName: "UPSTREAM_TIMEOUT", value: "-5123s", want: "greater than zero"},
		{name: "cmd unterminated", varName: "UPSTREAM_CMD", value: "python 'zq9-arg", want: "unterminated single quote"},
		{name: "cmd unterminated double", varName: "UPSTREAM_CMD", value: `python "zq9-arg`, want: "unterminated double quote"},
		{name: "cmd trailing backslash", varName: "UPSTREAM_CMD", value: `python zq9-arg\`, want: "backslash"},
		{name: "cmd empty program", varName: "UPSTREAM_CMD", value: `'' zq9-arg`, want: "program name"},
		{name: "stop timeout", varName: "UPSTREAM_STOP_TIMEOUT", value: "zq9", want: "duration"},
		{name: "stop timeout zero", varName: "UPSTREAM_STOP_TIMEOUT", value: "0", want: "greater than zero"},
		{name: "max backoff zero", varName: "UPSTREAM_MAX_BACKOFF", value: "0s", want: "greater than zero"},
		{name: "required env name", varName: "REQUIRED_ENV", value: "GOOD,zq9-bad", want: "item 2 is not a variable name"},
		{name: "required env digit first", varName: "REQUIRED_ENV", value: "9ZQ,ZQ 9,OK", want: "items 1, 2 are not a variable name"},
		{name: "origin with path", varName: "CORS_ALLOW_ORIGINS", value: "https://zq9.example/app", want: "item 1 is not an origin"},
		{name: "origin trailing slash", varName: "CORS_ALLOW_ORIGINS", value: "https://ok.example,https://zq9.example/", want: "item 2 is not an origin"},
		{name: "origin without scheme", varName: "CORS_ALLOW_ORIGINS", value: "zq9.example", want: "item 1 is not an origin"},
		{name: "origin null", varName: "CORS_ALLOW_ORIGINS", value: "null", want: "item 1 is not an origin"},
		{name: "origin query", varName: "CORS_ALLOW_ORIGINS", value: "https://zq9.example?x", want: "item 1 is not an origin"},
		{name: "origin userinfo", varName: "CORS_ALLOW_ORIGINS", value: "https://zq9@ok.example", want: "item 1 is not an origin"},
		{name: "origin wildcard mixed", varName: "CORS_ALLOW_ORIGINS", value: "*,https://zq9.example", want: "* must be the only entry"},
		{name: "credentials not bool", varName: "CORS_ALLOW_CREDENTIALS", value: "zq9yes", want: "true or false"},
		{name: "client address not bool", varName: "LOG_CLIENT_ADDR", value: "zq9no", want: "true or false"},
		{name: "credentials with wildcard", varName: "CORS_ALLOW_CREDENTIALS", value: "true", extra: map[string]string{"CORS_ALLOW_ORIGINS": " * "}, want: "must be false when CORS_ALLOW_ORIGINS is *"},
		{name: "header name", varName: "CORS_ALLOW_HEADERS", value: "Accept,zq9 bad:header", want: "item 2 is not a header name"},
		{name: "max age not number", varName: "CORS_MAX_AGE", value: "zq9", want: "0 to 86400"},
		{name: "max age too big", varName: "CORS_MAX_AGE", value: "86401", want: "0 to 86400"},
		{name: "max age negative", varName: "CORS_MAX_AGE", value: "-1123", want: "0 to 86400"},
		{name: "proxy garbage", varName: "TRUSTED_PROXIES", value: "10.0.0.0/8,zq9-proxy", want: "item 2 is not a CIDR"},
		{name: "proxy bad bits", varName: "TRUSTED_PROXIES", value: "10.9.9.0/33", want: "item 1 is not a CIDR"},
		{name: "proxy zone", varName: "TRUSTED_PROXIES", value: "fe80::9%zq9", want: "item 1 is not a CIDR"},
		{name: "body size garbage", varName: "MAX_BODY_BYTES", value: "zq9", want: "whole number of bytes"},
		{name: "body size unknown unit", varName: "MAX_BODY_BYTES", value: "10zq9", want: "whole number of bytes"},
		{name: "body size fraction", varName: "MAX_BODY_BYTES", value: "1.5MiB", want: "whole number of bytes"},
		{name: "body size negative", varName: "MAX_BODY_BYTES", value: "-10123", want: "whole number of bytes"},
		{name: "body size zero", varName: "MAX_BODY_BYTES", value: "0KiB", want: "greater than zero"},
		{name: "body size overflow", varName: "MAX_BODY_BYTES", value: "99999999999GiB", want: "too large"},
		{name: "body size huge", varName: "MAX_BODY_BYTES", value: "99999999999999999999999", want: "too large"},
		{name: "buffer size zero", varName: "BUFFER_BODY_BYTES", value: "0", want: "greater than zero"},
		{name: "buffer size garbage", varName: "BUFFER_BODY_BYTES", value: "zq9KiB", want: "whole number of bytes"},
		{name: "body read timeout zero", varName: "BODY_READ_TIMEOUT", value: "0s", want: "greater than zero"},
		{name: "body read timeout garbage", varName: "BODY_READ_TIMEOUT", value: "zq9", want: "duration"},
		{name: "hold timeout negative", varName: "HOLD_TIMEOUT", value: "-1s", want: "0 to turn holding off"},
		{name: "hold timeout garbage", varName: "HOLD_TIMEOUT", value: "zq9", want: "0 to turn holding off"},
		{name: "hold max zero", varName: "HOLD_MAX", value: "0", want: "1 to 100000"},
		{name: "hold max huge", varName: "HOLD_MAX", value: "100001", want: "1 to 100000"},
		{name: "hold max garbage", varName: "HOLD_MAX", value: "zq9", want: "1 to 100000"},
		{name: "concurrency zero", varName: "UPSTREAM_CONCURRENCY", value: "0", want: "auto or a whole number from 1 to 1000"},
		{name: "concurrency huge", varName: "UPSTREAM_CONCURRENCY", value: "1001", want: "auto or a whole number from 1 to 1000"},
		{name: "concurrency garbage", varName: "UPSTREAM_CONCURRENCY", value: "many", want: "auto or a whole number from 1 to 1000"},
		{name: "log level", varName: "LOG_LEVEL", value: "zq9", want: "debug, info, warn or error"},
		{name: "log level offset", varName: "LOG_LEVEL", value: "info+2", want: "debug, info, warn or error"},
		{name: "log format", varName: "LOG_FORMAT", value: "zq9", want: "text or json"},
		{name: "shutdown timeout", varName: "SHUTDOWN_TIMEOUT", value: "zq9m", want: "duration"},
		{name: "shutdown timeout negative", varName: "SHUTDOWN_TIMEOUT", value: "-1m", want: "greater than zero"},
		{name: "metrics addr without port", varName: "METRICS_ADDR", value: "zq9.example", want: "host:port"},
		{name: "metrics addr port", varName: "METRICS_ADDR", value: "127.0.0.1:99123", want: "host:port"},
		{name: "metrics addr host", varName: "METRICS_ADDR", value: "zq9 host:9090", want: "host:port"},
		{name: "metrics addr url", varName: "METRICS_ADDR", value: "http://zq9:9090", want: "host:port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			environ := map[string]string{tt.varName: tt.value}
			for k, v := range tt.extra {
				environ[k] = v
			}
			problems := loadProblems(t, environ)
			if len(problems) != 1 {
				t.Fatalf("got %d problems %q, want 1", len(problems), problems)
			}
			p := problems[0]
			if !strings.HasPrefix(p, tt.varName+": ") {
				t.Errorf("problem %q: want it to start with %q", p, tt.varName+": ")
			}
			if !strings.Contains(p, tt.want) {
				t.Errorf("problem %q: want it to contain %q", p, tt.want)
			}
			assertNoValue(t, p, tt.value)
		})
	}
}

// assertNoValue fails if problem quotes value or its distinctive parts.
func assertNoValue(t *testing.T, problem, value string) {
	t.Helper()
	if strings.Contains(strings.ToLower(problem), "zq9") {
		t.Errorf("problem %q quotes the value", problem)
	}
	if len(strings.TrimSpace(value)) >= 4 && strings.Contains(problem, strings.TrimSpace(value)) {
		t.Errorf("problem %q quotes the value %q", problem, value)
	}
}

// TestLoadInvalidEveryVariable makes sure no variable is left out of
// TestLoadInvalid's promise: each one, set to garbage, gives exactly its
// own problem (or, for the variables that take any text, no problem).
func TestLoadInvalidEveryVariable(t *testing.T) {
	t.Parallel()
	anyText := map[string]bool{"UPSTREAM_DIR": true, "SPACE_HOST": true, "SPACE_ID": true}
	const garbage = "zq9 'garbage\x01"
	for _, v := range Vars() {
		t.Run(v.Name, func(t *testing.T) {
			t.Parallel()
			_, err := Load(map[string]string{v.Name: garbage})
			if anyText[v.Name] {
				if err != nil {
					t.Fatalf("got error %v, want none", err)
				}
				return
			}
			problems := loadProblems(t, map[string]string{v.Name: garbage})
			if len(problems) != 1 || !strings.HasPrefix(problems[0], v.Name+": ") {
				t.Fatalf("got problems %q, want one starting with %q", problems, v.Name+": ")
			}
			assertNoValue(t, problems[0], garbage)
		})
	}
}

func TestLoadReportsEveryProblem(t *testing.T) {
	t.Parallel()
	environ := map[string]string{
		"LOG_FORMAT":         "zq9-xml",
		"PORT":               "zq9-port",
		"UPSTREAM_URL":       "zq9-url",
		"UPSTREAM_CMD":       `"zq9-cmd`,
		"CORS_ALLOW_ORIGINS": "zq9.example",
		"MAX_BODY_BYTES":     "zq9",
		"SHUTDOWN_TIMEOUT":   "0s",
		"GRADIO_SERVER_PORT": "zq9",
		"LOG_LEVEL":          "zq9",
		"OPENAI_API_KEY":     "not a problem",
	}
	problems := loadProblems(t, environ)
	var gotVars []string
	for _, p := range problems {
		name, _, ok := strings.Cut(p, ": ")
		if !ok || strings.Contains(p, "\n") {
			t.Errorf("problem %q: want one line of the form VARIABLE: problem", p)
		}
		gotVars = append(gotVars, name)
		assertNoValue(t, p, environ[name])
	}
	// In the order of Vars, not of the map.
	wantVars := []string{"PORT", "GRADIO_SERVER_PORT", "UPSTREAM_URL", "UPSTREAM_CMD", "CORS_ALLOW_ORIGINS", "MAX_BODY_BYTES", "LOG_LEVEL", "LOG_FORMAT", "SHUTDOWN_TIMEOUT"}
	if !slices.Equal(gotVars, wantVars) {
		t.Errorf("got problems for %q, want %q", gotVars, wantVars)
	}
}

func TestLoadPortAndHostSources(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name           string
		environ        map[string]string
		wantPort       int
		wantPortSource string
		wantHost       string
		wantHostSource string
		wantAddr       string
	}{
		{
			name:     "defaults",
			environ:  map[string]string{},
			wantPort: 7860, wantPortSource: "default", wantHost: "0.0.0.0", wantHostSource: "default", wantAddr: "0.0.0.0:7860",
		},
		{
			name:     "PORT and HOST",
			environ:  map[string]string{"PORT": "8080", "HOST": "127.0.0.1"},
			wantPort: 8080, wantPortSource: "PORT", wantHost: "127.0.0.1", wantHostSource: "HOST", wantAddr: "127.0.0.1:8080",
		},
		{
			name:     "GRADIO variables win",
			environ:  map[string]string{"PORT": "8080", "HOST": "127.0.0.1", "GRADIO_SERVER_PORT": "7861", "GRADIO_SERVER_NAME": "::"},
			wantPort: 7861, wantPortSource: "GRADIO_SERVER_PORT", wantHost: "::", wantHostSource: "GRADIO_SERVER_NAME", wantAddr: "[::]:7861",
		},
		{
			name:     "GRADIO variables alone",
			environ:  map[string]string{"GRADIO_SERVER_PORT": " 7000 ", "GRADIO_SERVER_NAME": "localhost"},
			wantPort: 7000, wantPortSource: "GRADIO_SERVER_PORT", wantHost: "localhost", wantHostSource: "GRADIO_SERVER_NAME", wantAddr: "localhost:7000",
		},
		{
			name:     "empty GRADIO variables do not count",
			environ:  map[string]string{"PORT": "8080", "GRADIO_SERVER_PORT": "", "GRADIO_SERVER_NAME": "  "},
			wantPort: 8080, wantPortSource: "PORT", wantHost: "0.0.0.0", wantHostSource: "default", wantAddr: "0.0.0.0:8080",
		},
		{
			name:     "empty PORT is the default",
			environ:  map[string]string{"PORT": "", "HOST": ""},
			wantPort: 7860, wantPortSource: "default", wantHost: "0.0.0.0", wantHostSource: "default", wantAddr: "0.0.0.0:7860",
		},
		{
			name:     "IPv6 host",
			environ:  map[string]string{"HOST": "::1", "PORT": "9000"},
			wantPort: 9000, wantPortSource: "PORT", wantHost: "::1", wantHostSource: "HOST", wantAddr: "[::1]:9000",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := mustLoad(t, tt.environ)
			if c.Port != tt.wantPort || c.PortSource != tt.wantPortSource {
				t.Errorf("got Port %d from %q, want %d from %q", c.Port, c.PortSource, tt.wantPort, tt.wantPortSource)
			}
			if c.Host != tt.wantHost || c.HostSource != tt.wantHostSource {
				t.Errorf("got Host %q from %q, want %q from %q", c.Host, c.HostSource, tt.wantHost, tt.wantHostSource)
			}
			if got := c.Addr(); got != tt.wantAddr {
				t.Errorf("Addr(): got %q, want %q", got, tt.wantAddr)
			}
		})
	}
}

// TestLoadOverriddenIsWarning: a PORT or HOST that the Gradio variable overrides is not used,
// so a bad (or merely different) value of it is a warning naming both variables, never an
// error: on a Space GRADIO_SERVER_PORT is set, and PORT has been seen set to another port.
func TestLoadOverriddenIsWarning(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		environ  map[string]string
		want     []Warning
		wantAddr string
	}{
		{
			name:     "invalid PORT overridden",
			environ:  map[string]string{"PORT": "zq9-port", "GRADIO_SERVER_PORT": "7860"},
			want:     []Warning{{Var: "PORT", By: "GRADIO_SERVER_PORT", Problem: portProblem}},
			wantAddr: "0.0.0.0:7860",
		},
		{
			name:     "PORT out of range overridden",
			environ:  map[string]string{"PORT": "99123", "GRADIO_SERVER_PORT": "7860"},
			want:     []Warning{{Var: "PORT", By: "GRADIO_SERVER_PORT", Problem: portProblem}},
			wantAddr: "0.0.0.0:7860",
		},
		{
			name:     "another valid PORT overridden",
			environ:  map[string]string{"PORT": "7861", "GRADIO_SERVER_PORT": "7860"},
			want:     []Warning{{Var: "PORT", By: "GRADIO_SERVER_PORT"}},
			wantAddr: "0.0.0.0:7860",
		},
		{
			name:     "the same PORT is no news",
			environ:  map[string]string{"PORT": "7860", "GRADIO_SERVER_PORT": " 7860"},
			want:     []Warning{},
			wantAddr: "0.0.0.0:7860",
		},
		{
			name:     "invalid HOST overridden",
			environ:  map[string]string{"HOST": "zq9/host", "GRADIO_SERVER_NAME": "0.0.0.0"},
			want:     []Warning{{Var: "HOST", By: "GRADIO_SERVER_NAME", Problem: "must be an IP address or a host name, such as 0.0.0.0, :: or localhost"}},
			wantAddr: "0.0.0.0:7860",
		},
		{
			name:    "both, in the order of Vars",
			environ: map[string]string{"HOST": "::1", "GRADIO_SERVER_NAME": "127.0.0.1", "PORT": "zq9", "GRADIO_SERVER_PORT": "8000"},
			want: []Warning{
				{Var: "PORT", By: "GRADIO_SERVER_PORT", Problem: portProblem},
				{Var: "HOST", By: "GRADIO_SERVER_NAME"},
			},
			wantAddr: "127.0.0.1:8000",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := mustLoad(t, tt.environ)
			if !reflect.DeepEqual(c.Warnings, tt.want) {
				t.Errorf("got warnings %+v, want %+v", c.Warnings, tt.want)
			}
			if got := c.Addr(); got != tt.wantAddr {
				t.Errorf("Addr(): got %q, want %q", got, tt.wantAddr)
			}
			for _, w := range c.Warnings {
				s := w.String()
				if !strings.HasPrefix(s, w.Var+": ") || !strings.Contains(s, w.By) || strings.Contains(s, "\n") {
					t.Errorf("warning %q: want one line naming %s first and %s", s, w.Var, w.By)
				}
				assertNoValue(t, s, tt.environ[w.Var])
			}
		})
	}
}

// TestLoadOverridingVariableStillChecked: only a valid Gradio variable overrides; when it is
// invalid too, both are errors (the PORT behind a broken GRADIO_SERVER_PORT is not known to
// be unused).
func TestLoadOverridingVariableStillChecked(t *testing.T) {
	t.Parallel()
	problems := loadProblems(t, map[string]string{"PORT": "zq9-a", "GRADIO_SERVER_PORT": "zq9-b", "HOST": "zq9/x", "GRADIO_SERVER_NAME": "zq9/y"})
	var vars []string
	for _, p := range problems {
		name, _, _ := strings.Cut(p, ": ")
		vars = append(vars, name)
	}
	if want := []string{"PORT", "GRADIO_SERVER_PORT", "HOST", "GRADIO_SERVER_NAME"}; !slices.Equal(vars, want) {
		t.Errorf("got problems for %q, want %q", vars, want)
	}
}

func TestLoadCORSOrigins(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{name: "one", in: "https://app.example.com", want: []string{"https://app.example.com"}},
		{name: "trimmed, empties dropped", in: " https://a.example , ,http://localhost:5173,", want: []string{"https://a.example", "http://localhost:5173"}},
		{name: "lower-cased", in: "HTTPS://App.Example.COM:8443", want: []string{"https://app.example.com:8443"}},
		{name: "duplicates dropped", in: "https://a.example,https://A.example", want: []string{"https://a.example"}},
		{name: "IPv6", in: "http://[::1]:3000", want: []string{"http://[::1]:3000"}},
		{name: "wildcard", in: " * ", want: []string{"*"}},
		{name: "only commas", in: ",,", want: []string{}},
		{name: "hf space", in: "https://huggingface.co,https://user-space.hf.space", want: []string{"https://huggingface.co", "https://user-space.hf.space"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := mustLoad(t, map[string]string{"CORS_ALLOW_ORIGINS": tt.in})
			if !slices.Equal(c.CORSAllowOrigins, tt.want) || c.CORSAllowOrigins == nil {
				t.Errorf("CORSAllowOrigins: got %q, want %q", c.CORSAllowOrigins, tt.want)
			}
		})
	}
}

func TestLoadCORSWildcardWithoutCredentials(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, map[string]string{"CORS_ALLOW_ORIGINS": "*", "CORS_ALLOW_CREDENTIALS": "false"})
	if !slices.Equal(c.CORSAllowOrigins, []string{"*"}) || c.CORSAllowCredentials {
		t.Errorf("got origins %q, credentials %v; want [*], false", c.CORSAllowOrigins, c.CORSAllowCredentials)
	}
}

func TestLoadTrustedProxies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{name: "empty trusts nobody", in: "", want: []string{}},
		{name: "blank trusts nobody", in: "   ", want: []string{}},
		{name: "commas only trust nobody", in: " , ", want: []string{}},
		{name: "CIDRs", in: "10.0.0.0/8, fd00::/8", want: []string{"10.0.0.0/8", "fd00::/8"}},
		{name: "bare IPs", in: "10.1.2.3,::1", want: []string{"10.1.2.3/32", "::1/128"}},
		{name: "host bits cleared", in: "10.1.2.3/8", want: []string{"10.0.0.0/8"}},
		{name: "mixed", in: "192.168.1.1, 172.16.0.0/12 ,", want: []string{"192.168.1.1/32", "172.16.0.0/12"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := mustLoad(t, map[string]string{"TRUSTED_PROXIES": tt.in})
			got := make([]string, len(c.TrustedProxies))
			for i, p := range c.TrustedProxies {
				got[i] = p.String()
			}
			if !slices.Equal(got, tt.want) || c.TrustedProxies == nil {
				t.Errorf("TrustedProxies: got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLoadMaxBodyBytes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want int64
	}{
		{in: "1", want: 1},
		{in: "1048576", want: 1 << 20},
		{in: "512B", want: 512},
		{in: "1KiB", want: 1024},
		{in: "10MiB", want: 10 << 20},
		{in: "2GiB", want: 2 << 30},
		{in: "1KB", want: 1000},
		{in: "5MB", want: 5_000_000},
		{in: "3GB", want: 3_000_000_000},
		{in: "10mib", want: 10 << 20},
		{in: "10 MiB", want: 10 << 20},
		{in: " 7kb ", want: 7000},
		{in: "8589934591GiB", want: 8589934591 << 30},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			c := mustLoad(t, map[string]string{"MAX_BODY_BYTES": tt.in})
			if c.MaxBodyBytes != tt.want {
				t.Errorf("MAX_BODY_BYTES=%q: got %d, want %d", tt.in, c.MaxBodyBytes, tt.want)
			}
		})
	}
}

func TestLoadMissing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		environ map[string]string
		want    []string
	}{
		{name: "none required", environ: map[string]string{}, want: []string{}},
		{name: "all set", environ: map[string]string{"REQUIRED_ENV": "A_KEY,B_TOKEN", "A_KEY": "aaaa", "B_TOKEN": "b"}, want: []string{}},
		{name: "unset", environ: map[string]string{"REQUIRED_ENV": "A_KEY,B_TOKEN", "A_KEY": "aaaa"}, want: []string{"B_TOKEN"}},
		{name: "empty", environ: map[string]string{"REQUIRED_ENV": "A_KEY,B_TOKEN", "A_KEY": "", "B_TOKEN": "x"}, want: []string{"A_KEY"}},
		{name: "blank", environ: map[string]string{"REQUIRED_ENV": "A_KEY", "A_KEY": " \t"}, want: []string{"A_KEY"}},
		{name: "order kept", environ: map[string]string{"REQUIRED_ENV": "Z,A,M"}, want: []string{"Z", "A", "M"}},
		{name: "case matters", environ: map[string]string{"REQUIRED_ENV": "A_KEY", "a_key": "value"}, want: []string{"A_KEY"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := mustLoad(t, tt.environ)
			if !slices.Equal(c.Missing, tt.want) || c.Missing == nil {
				t.Errorf("Missing: got %q, want %q", c.Missing, tt.want)
			}
		})
	}
}

func TestLoadSecrets(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, map[string]string{
		"REQUIRED_ENV":   "MODEL_NAME,OPENAI_API_KEY",
		"MODEL_NAME":     "gpt-secret-model",
		"OPENAI_API_KEY": "sk-abcdef",
		"HF_TOKEN":       "hf_xyz123456",
		"UPSTREAM_URL":   "http://u:upstream-pw@127.0.0.1:8000",
		"PATH":           "/usr/bin",
	})
	want := []string{"gpt-secret-model", "hf_xyz123456", "upstream-pw", "sk-abcdef"}
	if !slices.Equal(c.Secrets, want) {
		t.Errorf("Secrets: got %q, want %q", c.Secrets, want)
	}
}

func TestLogAttrs(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, map[string]string{
		"GRADIO_SERVER_PORT": "7861",
		"UPSTREAM_URL":       "http://user:url-password@127.0.0.1:8000",
		"UPSTREAM_CMD":       `uvicorn app:app --header "X-A: b"`,
		"REQUIRED_ENV":       "OPENAI_API_KEY,HF_TOKEN",
		"OPENAI_API_KEY":     "sk-very-secret",
		"HF_TOKEN":           "hf_also_secret",
		"CORS_ALLOW_ORIGINS": "https://a.example,https://b.example",
		"TRUSTED_PROXIES":    "10.0.0.0/8,::1",
		"LOG_LEVEL":          "DEBUG",
	})
	got := make(map[string]string)
	var keys []string
	for _, a := range c.LogAttrs() {
		keys = append(keys, a.Key)
		got[a.Key] = a.Value.String()
	}
	wantKeys := []string{
		"port", "port_source", "host", "host_source", "upstream", "health_path",
		"upstream_timeout", "upstream_cmd", "upstream_dir", "upstream_stop_timeout", "upstream_max_backoff",
		"required_env", "cors_origins", "cors_credentials", "trusted_proxies",
		"max_body_bytes", "buffer_body_bytes", "body_read_timeout", "hold_timeout", "hold_max", "upstream_concurrency",
		"log_level", "log_format", "log_client_addr", "shutdown_timeout", "metrics_addr",
	}
	if !slices.Equal(keys, wantKeys) {
		t.Errorf("keys: got %q, want %q", keys, wantKeys)
	}
	want := map[string]string{
		"port":            "7861",
		"port_source":     "GRADIO_SERVER_PORT",
		"host":            "0.0.0.0",
		"host_source":     "default",
		"upstream":        "http://user:xxxxx@127.0.0.1:8000",
		"upstream_cmd":    `uvicorn app:app --header 'X-A: b'`,
		"required_env":    "OPENAI_API_KEY,HF_TOKEN",
		"cors_origins":    "https://a.example,https://b.example",
		"trusted_proxies": "10.0.0.0/8,::1/128",
		"max_body_bytes":  fmt.Sprint(10 << 20),
		"log_level":       "debug",
		"log_format":      "text",
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: got %q, want %q", k, got[k], w)
		}
	}
	for _, a := range c.LogAttrs() {
		for _, s := range append(c.Secrets, "url-password") {
			if strings.Contains(a.Value.String(), s) {
				t.Errorf("attr %s holds a secret value", a.Key)
			}
		}
	}
}

func TestErrorJoinsProblems(t *testing.T) {
	t.Parallel()
	e := &Error{Problems: []string{"PORT: a", "HOST: b"}}
	if got, want := e.Error(), "PORT: a\nHOST: b"; got != want {
		t.Errorf("Error(): got %q, want %q", got, want)
	}
}

// TestConcurrency: UPSTREAM_CONCURRENCY reads auto (the default, any case) as 0 and a number as
// itself.
func TestConcurrency(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, value string
		want        Concurrency
	}{
		{"default", "", 0},
		{"auto", "AUTO", 0},
		{"fixed", " 2 ", 2},
		{"most", "1000", 1000},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{"UPSTREAM_URL": "http://127.0.0.1:8000"}
			if tt.value != "" {
				env["UPSTREAM_CONCURRENCY"] = tt.value
			}
			c, err := Load(env)
			if err != nil {
				t.Fatal(err)
			}
			if c.UpstreamConcurrency != tt.want || (tt.want == 0) != (c.UpstreamConcurrency.String() == "auto") {
				t.Errorf("got %v (%s), want %d", int(c.UpstreamConcurrency), c.UpstreamConcurrency, tt.want)
			}
		})
	}
}
