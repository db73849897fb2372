package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
)

// Config is hfgate's effective configuration. Fields with an `env` tag come
// from that variable, or from `envDefault` when it is unset or empty
// (TRUSTED_PROXIES is the exception: set but empty means "trust nobody").
// Values are trimmed of surrounding white space before they are read.
// The other fields are derived by [Load].
//
// The `help` tags are the one source of the meanings shown by [WriteHelp]
// and docs/configuration.md; keep each to one concrete line.
type Config struct {
	// Port is the TCP port to listen on. GRADIO_SERVER_PORT, when set,
	// wins over PORT (a PORT it overrides is a Warning, not an error).
	Port int `env:"PORT" envDefault:"7860" help:"TCP port to listen on (Hugging Face Spaces route to 7860 by default)"`

	// PortSource names where Port came from: "GRADIO_SERVER_PORT",
	// "PORT" or "default".
	PortSource string

	// Host is the address to bind. GRADIO_SERVER_NAME, when set, wins over
	// HOST (a HOST it overrides is a Warning, not an error).
	Host string `env:"HOST" envDefault:"0.0.0.0" help:"address to bind: an IP address (0.0.0.0 = all IPv4, :: = all) or a host name"`

	// HostSource names where Host came from: "GRADIO_SERVER_NAME", "HOST"
	// or "default".
	HostSource string

	// SpaceHost is the Space's public host name, which Hugging Face sets
	// (owner-name.hf.space); empty elsewhere. Only logged: see PublicURL.
	SpaceHost string `env:"SPACE_HOST" envDefault:"" help:"set by Hugging Face: the Space's host (owner-name.hf.space); https://SPACE_HOST is logged at start"`

	// SpaceID is the Space's owner/name, which Hugging Face sets; empty
	// elsewhere. Only logged.
	SpaceID string `env:"SPACE_ID" envDefault:"" help:"set by Hugging Face: the Space's owner/name; logged at start"`

	// UpstreamURL is the backend's base URL: http or https, with a host,
	// without query or fragment, and without a trailing slash on its path.
	// It is never nil after a successful Load. Log it with Redacted().
	UpstreamURL *url.URL `env:"UPSTREAM_URL" envDefault:"http://127.0.0.1:8000" help:"base URL of the FastAPI backend: http(s)://host[:port][/path], no query"`

	// UpstreamHealthPath is the backend path the readiness probe requests.
	// It starts with a single "/".
	UpstreamHealthPath string `env:"UPSTREAM_HEALTH_PATH" envDefault:"/health" help:"backend path the readiness probe requests; must start with /"`

	// UpstreamTimeout bounds the wait for the backend's response headers;
	// it does not limit how long a response body (a stream) may last. > 0.
	UpstreamTimeout time.Duration `env:"UPSTREAM_TIMEOUT" envDefault:"55s" help:"longest wait for the backend's response headers (a stream may then run longer)"`

	// UpstreamCmd is the command that starts the backend as a supervised
	// child process, split into words by [SplitCommand]. Empty (nil) means
	// hfgate supervises nothing. The program name is never empty.
	UpstreamCmd Command `env:"UPSTREAM_CMD" envDefault:"" help:"command line that starts the backend as a supervised child; empty = start none"`

	// UpstreamDir is the working directory for UpstreamCmd; empty means
	// hfgate's own.
	UpstreamDir string `env:"UPSTREAM_DIR" envDefault:"" help:"working directory for UPSTREAM_CMD; empty = hfgate's current directory"`

	// UpstreamStopTimeout is how long the child may take to exit after
	// SIGTERM before it is sent SIGKILL. > 0.
	UpstreamStopTimeout time.Duration `env:"UPSTREAM_STOP_TIMEOUT" envDefault:"5s" help:"wait between SIGTERM and SIGKILL when stopping the UPSTREAM_CMD child"`

	// UpstreamMaxBackoff caps the wait before restarting a child that keeps
	// crashing; the wait starts at 0.5 s (or this, if smaller) and doubles
	// per crash until the child has run 30 s or passed its health check.
	// > 0.
	UpstreamMaxBackoff time.Duration `env:"UPSTREAM_MAX_BACKOFF" envDefault:"30s" help:"longest wait before restarting a crashing UPSTREAM_CMD child (doubles from 0.5s; starts over after a healthy run)"`

	// RequiredEnv names variables (typically secrets) that must be set and
	// non-empty for the backend to work; see Missing. Valid names, without
	// duplicates, in the order given. Never nil.
	RequiredEnv []string `env:"REQUIRED_ENV" envDefault:"" help:"comma list of variable names that must be set and non-empty (e.g. OPENAI_API_KEY)"`

	// CORSAllowOrigins lists the exact origins (scheme://host[:port],
	// lower-cased) allowed to make cross-origin requests, or holds the
	// single entry "*". Empty means CORS is off. Never nil.
	CORSAllowOrigins []string `env:"CORS_ALLOW_ORIGINS" envDefault:"" help:"comma list of exact origins (https://app.example.com) or * for any; empty = CORS off"`

	// CORSAllowCredentials lets browsers send cookies and Authorization
	// cross-origin. It is never true together with the origin "*".
	CORSAllowCredentials bool `env:"CORS_ALLOW_CREDENTIALS" envDefault:"false" help:"true lets browsers send cookies/credentials cross-origin; not allowed with *"`

	// CORSAllowHeaders lists the request headers a preflight may allow.
	// Never nil.
	CORSAllowHeaders []string `env:"CORS_ALLOW_HEADERS" envDefault:"Accept,Authorization,Content-Type,Last-Event-ID,X-Request-ID" help:"comma list of request headers browsers may send cross-origin"`

	// CORSMaxAge is how many seconds a browser may cache a preflight
	// answer, 0 to 86400.
	CORSMaxAge int `env:"CORS_MAX_AGE" envDefault:"600" help:"seconds a browser may cache a preflight answer (0 to 86400)"`

	// TrustedProxies are the peers whose X-Forwarded-* headers are
	// believed. Empty means nobody is trusted.
	TrustedProxies []netip.Prefix `env:"TRUSTED_PROXIES" envDefault:"127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,100.64.0.0/10,fc00::/7" help:"comma list of CIDRs or IPs whose X-Forwarded-* headers are believed; set empty to trust none"`

	// MaxBodyBytes is the largest request body accepted, in bytes. > 0.
	MaxBodyBytes int64 `env:"MAX_BODY_BYTES" envDefault:"10MiB" help:"largest request body accepted: bytes, or a number with KiB/MiB/GiB or KB/MB/GB"`

	// BufferBodyBytes is the largest request body read whole before the
	// request is held or forwarded (so it can be sent again, and a slow
	// client ties up no backend connection); larger bodies stream. > 0.
	BufferBodyBytes int64 `env:"BUFFER_BODY_BYTES" envDefault:"64KiB" help:"request bodies up to this size are read whole before they are forwarded (larger ones stream)"`

	// BodyReadTimeout bounds how long a body read whole (see
	// BufferBodyBytes) may take to arrive; then the client gets 408. > 0.
	BodyReadTimeout time.Duration `env:"BODY_READ_TIMEOUT" envDefault:"30s" help:"a body read whole must arrive within this, else 408"`

	// HoldTimeout is how long a request may wait in line: for a backend
	// that was ready before to come back (see docs/states.md), or for a
	// free slot while it is busy (UPSTREAM_CONCURRENCY). 0 turns waiting
	// off: every request that would wait gets 503 + Retry-After at once.
	HoldTimeout time.Duration `env:"HOLD_TIMEOUT" envDefault:"10s" help:"how long a request may wait in line for a restarting or busy backend before it gets 503; 0 = answer 503 at once"`

	// HoldMax is how many requests may wait in line at once; more get 503
	// at once. 1 to 100000.
	HoldMax int `env:"HOLD_MAX" envDefault:"256" help:"most requests waiting in line at once (restarting or busy backend); more get 503 at once"`

	// UpstreamConcurrency is how many forwarded requests may be in flight
	// to the backend at once: auto (0) finds the limit from the backend's
	// behaviour, a number fixes it (docs/configuration.md, "Overload").
	UpstreamConcurrency Concurrency `env:"UPSTREAM_CONCURRENCY" envDefault:"auto" help:"requests in flight to the backend at once: auto (found from its latency) or a fixed number (1 to 1000)"`

	// LogLevel is the least severe level logged: debug, info, warn or
	// error.
	LogLevel slog.Level `env:"LOG_LEVEL" envDefault:"info" help:"least severe log level written: debug, info, warn or error"`

	// LogFormat is "text" (one plain line per record) or "json" (one JSON
	// object per line), lower-cased.
	LogFormat string `env:"LOG_FORMAT" envDefault:"text" help:"log format on stderr: text (plain key=value lines) or json (one object per line)"`

	// LogClientAddr puts the resolved client address (see TRUSTED_PROXIES)
	// on each access line as client=. It is not a secret, but it is
	// personal data where the law says so: false leaves it out.
	LogClientAddr bool `env:"LOG_CLIENT_ADDR" envDefault:"true" help:"true logs each request's resolved client address (client=) on its access line; false leaves it out"`

	// ShutdownTimeout bounds how long open requests may finish after
	// SIGTERM or SIGINT. > 0.
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"10s" help:"how long open requests may finish after SIGTERM or SIGINT"`

	// MetricsAddr is the host:port of the Prometheus metrics listener;
	// empty means no metrics. Port 0 picks a free port (logged).
	MetricsAddr string `env:"METRICS_ADDR" envDefault:"" help:"host:port of a separate Prometheus /metrics listener (e.g. 127.0.0.1:9090); empty = off"`

	// Missing lists the RequiredEnv names that are unset or empty (or only
	// white space), in RequiredEnv order. It is not an error for Load: the
	// gateway reports it as the "misconfigured" state. Never nil.
	Missing []string

	// Secrets lists the values a log handler must mask: see [Secrets] for
	// the rule. Longest first, without duplicates. Never nil. Never log it.
	Secrets []string

	// Warnings lists the variables that are set but not used, because another
	// variable overrides them, in the order of [Vars]. hfgate logs them and
	// runs on: an ignored value cannot stop it. Never nil.
	Warnings []Warning
}

// Warning is a variable that is set but overridden by another one, as PORT is by
// GRADIO_SERVER_PORT: a value hfgate does not use, reported rather than fatal. It
// never holds a value.
type Warning struct {
	// Var is the variable that is ignored, such as "PORT".
	Var string
	// By is the variable used instead, such as "GRADIO_SERVER_PORT".
	By string
	// Problem says what is wrong with Var's value if it were used ("must be
	// a whole number from 1 to 65535"); empty when the value is valid but
	// different from By's.
	Problem string
}

// String is the warning in the "VARIABLE: problem" form of [Error].
func (w Warning) String() string {
	s := w.Var + ": ignored, because " + w.By + " is set and wins"
	if w.Problem != "" {
		s += " (and it " + w.Problem + ")"
	}
	return s
}

// LogAttrs describes the warning for a log line.
func (w Warning) LogAttrs() []slog.Attr {
	attrs := []slog.Attr{slog.String("var", w.Var), slog.String("overridden_by", w.By)}
	if w.Problem != "" {
		attrs = append(attrs, slog.String("problem", w.Problem))
	}
	return attrs
}

// Sources reported in Config.PortSource and Config.HostSource.
const (
	SourceDefault          = "default"
	SourcePort             = "PORT"
	SourceHost             = "HOST"
	SourceGradioServerPort = "GRADIO_SERVER_PORT"
	SourceGradioServerName = "GRADIO_SERVER_NAME"
)

// Error lists every configuration problem found by [Load], one
// "VARIABLE: problem" per entry, in the order of [Vars]. No entry contains
// a variable's value.
type Error struct {
	Problems []string
}

// Error returns the problems, one per line.
func (e *Error) Error() string {
	return strings.Join(e.Problems, "\n")
}

// Load reads the configuration from environ (variable name to value, as
// from env.ToMap(os.Environ())). It reads nothing else: a nil map means an
// empty environment, not the process's.
//
// On any invalid value Load returns the zero Config and an [*Error]
// listing every problem at once. Unset REQUIRED_ENV variables are not an
// error: they are listed in Config.Missing. Nor is a PORT or HOST that
// GRADIO_SERVER_PORT or GRADIO_SERVER_NAME overrides, valid or not: it is
// listed in Config.Warnings. (On Hugging Face, the platform or gradio has
// been seen to set PORT to another port; it must not stop a Space that
// does not use it.)
func Load(environ map[string]string) (Config, error) {
	// Only the variables Config declares go to env, trimmed. Handing env a
	// non-nil map also keeps it from reading the process environment.
	parseEnv := make(map[string]string)
	for _, v := range Vars() {
		if value, ok := environ[v.Name]; ok {
			parseEnv[v.Name] = strings.TrimSpace(value)
		}
	}

	var c Config
	ps := newProblems()
	err := env.ParseWithOptions(&c, env.Options{
		Environment: parseEnv,
		FuncMap:     parsers(),
	})
	if err != nil {
		ps.addEnvError(err)
	}
	c.check(parseEnv, ps)
	if err := ps.err(); err != nil {
		return Config{}, err
	}

	c.Missing = Missing(environ, c.RequiredEnv)
	c.Secrets = Secrets(environ, c.RequiredEnv, c.UpstreamURL)
	return c, nil
}

// check validates what env could not and fills in the derived fields.
// Fields that failed to parse are skipped: they already have a problem.
func (c *Config) check(raw map[string]string, ps *problems) {
	c.Warnings = []Warning{}
	c.checkAddr(raw, ps)
	c.checkUpstream(ps)
	c.checkCORS(ps)
	// env applies the default to a set-but-empty variable; for
	// TRUSTED_PROXIES empty is a choice of its own.
	if v, ok := raw["TRUSTED_PROXIES"]; ok && v == "" {
		c.TrustedProxies = []netip.Prefix{}
	}
	c.checkRest(raw, ps)
}

// checkAddr checks PORT and HOST, and GRADIO_SERVER_PORT and GRADIO_SERVER_NAME, which
// override them (an overridden value that is bad or different is only a warning).
func (c *Config) checkAddr(raw map[string]string, ps *problems) {
	c.PortSource = SourceDefault
	if raw["PORT"] != "" {
		c.PortSource = SourcePort
	}
	if !ps.has("PORT") && (c.Port < 1 || c.Port > 65535) {
		ps.add("PORT", portProblem)
	}
	if s := raw[SourceGradioServerPort]; s != "" {
		c.PortSource = SourceGradioServerPort
		n, err := checkPort(s)
		ps.addErr(SourceGradioServerPort, err)
		if err == nil && raw["PORT"] != "" {
			c.overridden("PORT", SourceGradioServerPort, ps, c.Port != n)
		}
		c.Port = n
	}

	c.HostSource = SourceDefault
	if raw["HOST"] != "" {
		c.HostSource = SourceHost
	}
	ps.addErr("HOST", checkHost(c.Host))
	if s := raw[SourceGradioServerName]; s != "" {
		c.HostSource = SourceGradioServerName
		err := checkHost(s)
		ps.addErr(SourceGradioServerName, err)
		if err == nil && raw["HOST"] != "" {
			c.overridden("HOST", SourceGradioServerName, ps, c.Host != s)
		}
		c.Host = s
	}
}

// checkUpstream checks the UPSTREAM_* variables and REQUIRED_ENV.
func (c *Config) checkUpstream(ps *problems) {
	if c.UpstreamURL == nil && !ps.has("UPSTREAM_URL") {
		ps.add("UPSTREAM_URL", "must be set") // unreachable with the default; kept so nil never escapes
	}
	ps.addErr("UPSTREAM_HEALTH_PATH", checkHealthPath(c.UpstreamHealthPath))
	ps.checkPositive("UPSTREAM_TIMEOUT", c.UpstreamTimeout)
	if len(c.UpstreamCmd) > 0 && c.UpstreamCmd[0] == "" {
		ps.add("UPSTREAM_CMD", "the program name (first word) is empty")
	}
	ps.checkPositive("UPSTREAM_STOP_TIMEOUT", c.UpstreamStopTimeout)
	ps.checkPositive("UPSTREAM_MAX_BACKOFF", c.UpstreamMaxBackoff)

	if !ps.has("REQUIRED_ENV") {
		names, err := checkNames(c.RequiredEnv)
		ps.addErr("REQUIRED_ENV", err)
		c.RequiredEnv = nonNil(names)
	}
}

// checkCORS checks the CORS_* variables together (credentials rule out a wildcard origin).
func (c *Config) checkCORS(ps *problems) {
	if !ps.has("CORS_ALLOW_ORIGINS") {
		origins, err := parseOrigins(c.CORSAllowOrigins)
		ps.addErr("CORS_ALLOW_ORIGINS", err)
		c.CORSAllowOrigins = nonNil(origins)
	}
	if c.CORSAllowCredentials && slices.Equal(c.CORSAllowOrigins, []string{"*"}) {
		ps.add("CORS_ALLOW_CREDENTIALS", "must be false when CORS_ALLOW_ORIGINS is * (browsers refuse credentials with a wildcard origin)")
	}
	if !ps.has("CORS_ALLOW_HEADERS") {
		ps.addErr("CORS_ALLOW_HEADERS", checkHeaderNames(c.CORSAllowHeaders))
		c.CORSAllowHeaders = nonNil(c.CORSAllowHeaders)
	}
	if !ps.has("CORS_MAX_AGE") && (c.CORSMaxAge < 0 || c.CORSMaxAge > 86400) {
		ps.add("CORS_MAX_AGE", parseProblem("CORS_MAX_AGE"))
	}
}

// checkRest checks the logs, the timeouts, the line's bounds and METRICS_ADDR.
func (c *Config) checkRest(raw map[string]string, ps *problems) {
	// slog.Level's own parser also takes forms such as "info+2"; accept
	// only the four names.
	if !ps.has("LOG_LEVEL") {
		switch strings.ToLower(raw["LOG_LEVEL"]) {
		case "", "debug", "info", "warn", "error":
		default:
			ps.add("LOG_LEVEL", parseProblem("LOG_LEVEL"))
		}
	}
	c.LogFormat = strings.ToLower(c.LogFormat)
	if c.LogFormat != "text" && c.LogFormat != "json" {
		ps.add("LOG_FORMAT", "must be text or json")
	}
	ps.checkPositive("SHUTDOWN_TIMEOUT", c.ShutdownTimeout)
	ps.checkPositive("BODY_READ_TIMEOUT", c.BodyReadTimeout)
	if !ps.has("HOLD_TIMEOUT") && c.HoldTimeout < 0 {
		ps.add("HOLD_TIMEOUT", holdTimeoutProblem)
	}
	if !ps.has("HOLD_MAX") && (c.HoldMax < 1 || c.HoldMax > 100000) {
		ps.add("HOLD_MAX", parseProblem("HOLD_MAX"))
	}
	if c.MetricsAddr != "" {
		ps.addErr("METRICS_ADDR", checkListenAddr(c.MetricsAddr))
	}
}

// overridden turns the problem of name, which the valid variable by overrides, into a
// Warning; a valid value of name gives one only when it differs from by's.
func (c *Config) overridden(name, by string, ps *problems, differs bool) {
	problem, bad := ps.byVar[name]
	delete(ps.byVar, name)
	if bad || differs {
		c.Warnings = append(c.Warnings, Warning{Var: name, By: by, Problem: problem})
	}
}

// PublicURL is the Space's public address, https://SPACE_HOST, or "" when
// SPACE_HOST is not set. A SPACE_HOST that already has a scheme is kept as
// it is.
func (c Config) PublicURL() string {
	if c.SpaceHost == "" {
		return ""
	}
	if strings.Contains(c.SpaceHost, "://") {
		return c.SpaceHost
	}
	return "https://" + c.SpaceHost
}

// Addr is the address to listen on, host:port, as net.Listen takes it.
func (c Config) Addr() string {
	return net.JoinHostPort(c.Host, strconv.Itoa(c.Port))
}

// LogAttrs describes the effective configuration for the start-up log
// line. It holds no secret value: UPSTREAM_URL is redacted and
// REQUIRED_ENV appears by name only. UPSTREAM_CMD is shown as given, so
// the log handler must still mask Secrets. Lists are joined with ",".
func (c Config) LogAttrs() []slog.Attr {
	upstream := ""
	if c.UpstreamURL != nil {
		upstream = c.UpstreamURL.Redacted()
	}
	proxies := make([]string, len(c.TrustedProxies))
	for i, p := range c.TrustedProxies {
		proxies[i] = p.String()
	}
	return []slog.Attr{
		slog.Int("port", c.Port),
		slog.String("port_source", c.PortSource),
		slog.String("host", c.Host),
		slog.String("host_source", c.HostSource),
		slog.String("upstream", upstream),
		slog.String("health_path", c.UpstreamHealthPath),
		slog.Duration("upstream_timeout", c.UpstreamTimeout),
		slog.String("upstream_cmd", c.UpstreamCmd.String()),
		slog.String("upstream_dir", c.UpstreamDir),
		slog.Duration("upstream_stop_timeout", c.UpstreamStopTimeout),
		slog.Duration("upstream_max_backoff", c.UpstreamMaxBackoff),
		slog.String("required_env", strings.Join(c.RequiredEnv, ",")),
		slog.String("cors_origins", strings.Join(c.CORSAllowOrigins, ",")),
		slog.Bool("cors_credentials", c.CORSAllowCredentials),
		slog.String("trusted_proxies", strings.Join(proxies, ",")),
		slog.Int64("max_body_bytes", c.MaxBodyBytes),
		slog.Int64("buffer_body_bytes", c.BufferBodyBytes),
		slog.Duration("body_read_timeout", c.BodyReadTimeout),
		slog.Duration("hold_timeout", c.HoldTimeout),
		slog.Int("hold_max", c.HoldMax),
		slog.String("upstream_concurrency", c.UpstreamConcurrency.String()),
		slog.String("log_level", strings.ToLower(c.LogLevel.String())),
		slog.String("log_format", c.LogFormat),
		slog.Bool("log_client_addr", c.LogClientAddr),
		slog.Duration("shutdown_timeout", c.ShutdownTimeout),
		slog.String("metrics_addr", c.MetricsAddr),
	}
}

// parseProblem says what a variable must look like when env's own parser
// (int, bool, time.Duration, slog.Level) rejects it; "" for the variables
// whose parsers in values.go return their own problems.
func parseProblem(name string) string {
	switch name {
	case "PORT":
		return portProblem
	case "UPSTREAM_TIMEOUT", "UPSTREAM_STOP_TIMEOUT", "SHUTDOWN_TIMEOUT", "BODY_READ_TIMEOUT":
		return durationProblem
	case "HOLD_TIMEOUT":
		return holdTimeoutProblem
	case "HOLD_MAX":
		return "must be a whole number from 1 to 100000"
	case "UPSTREAM_CONCURRENCY":
		return fmt.Sprintf("must be auto or a whole number from 1 to %d", MaxConcurrency)
	case "CORS_ALLOW_CREDENTIALS", "LOG_CLIENT_ADDR":
		return "must be true or false"
	case "CORS_MAX_AGE":
		return "must be a whole number of seconds from 0 to 86400"
	case "LOG_LEVEL":
		return "must be debug, info, warn or error"
	}
	return ""
}

const (
	durationProblem    = "must be a duration greater than zero, such as 30s, 2m or 1m30s"
	holdTimeoutProblem = "must be a duration such as 10s or 1m, or 0 to turn holding off"
)

// problems collects "VARIABLE: problem" lines, at most one per variable.
type problems struct {
	byVar map[string]string
	other []string // errors env reports without a field; a bug if ever seen
}

func newProblems() *problems {
	return &problems{byVar: make(map[string]string)}
}

func (ps *problems) has(name string) bool {
	_, ok := ps.byVar[name]
	return ok
}

// add records the first problem of each variable; a later one is usually
// a consequence of the first.
func (ps *problems) add(name, text string) {
	if !ps.has(name) {
		ps.byVar[name] = text
	}
}

func (ps *problems) addErr(name string, err error) {
	if err == nil {
		return
	}
	var p problem
	if errors.As(err, &p) {
		ps.add(name, string(p))
		return
	}
	ps.add(name, "has an invalid value")
}

func (ps *problems) checkPositive(name string, d time.Duration) {
	if !ps.has(name) && d <= 0 {
		ps.add(name, durationProblem)
	}
}

// addEnvError maps env's errors, which name Go fields, back to variable
// names. The text of a wrapped parser error is used only when it is one of
// this package's problems: the standard parsers quote the value.
func (ps *problems) addEnvError(err error) {
	var agg env.AggregateError
	errs := []error{err}
	if errors.As(err, &agg) {
		errs = agg.Errors
	}
	keys := fieldKeys()
	for _, e := range errs {
		var pe env.ParseError
		if !errors.As(e, &pe) {
			ps.other = append(ps.other, "config: unexpected error from env parser")
			continue
		}
		name, ok := keys[pe.Name]
		if !ok {
			ps.other = append(ps.other, "config: parse error on unknown field "+pe.Name)
			continue
		}
		var p problem
		switch {
		case errors.As(pe.Err, &p):
			ps.add(name, string(p))
		case parseProblem(name) != "":
			ps.add(name, parseProblem(name))
		default:
			ps.add(name, "has an invalid value")
		}
	}
}

// err returns nil or an *Error with the problems in the order of Vars.
func (ps *problems) err() error {
	if len(ps.byVar) == 0 && len(ps.other) == 0 {
		return nil
	}
	e := &Error{}
	for _, v := range Vars() {
		if text, ok := ps.byVar[v.Name]; ok {
			e.Problems = append(e.Problems, v.Name+": "+text)
		}
	}
	e.Problems = append(e.Problems, ps.other...)
	return e
}

// fieldKeys maps Config's Go field names to their variable names.
func fieldKeys() map[string]string {
	keys := make(map[string]string)
	t := reflect.TypeFor[Config]()
	for i := range t.NumField() {
		f := t.Field(i)
		if name, _, _ := strings.Cut(f.Tag.Get("env"), ","); name != "" && name != "-" {
			keys[f.Name] = name
		}
	}
	return keys
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
