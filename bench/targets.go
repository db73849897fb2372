package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"text/template"
	"time"
)

// target is one thing the load is sent to: the upstream itself or a proxy in front of it.
type target struct {
	key   string // short name, used in the table and the chart
	about string // what it is and how it is configured
	base  string // http://127.0.0.1:port
	proc  *proc  // the process measured (CPU, RSS); for "direct", the upstream
	// Which measurements it takes part in.
	throughput, sse, streams bool
	idle                     groupStats
}

// env is what every phase needs.
type env struct {
	dir      string // per-run temp dir: configs, logs
	self     string // this executable
	hfgate   string // path to bin/hfgate
	ps       *procs
	logf     func(string, ...any)
	upstream string // base URL of the fast upstream
	upProc   *proc
}

const nginxConf = `# nginx as a reverse proxy, as an operator would set it up for an API: keep-alive to the
# upstream, HTTP/1.1 with the Connection header cleared, forwarding headers, no access log.
worker_processes auto;
worker_rlimit_nofile 16384;
pid {{.Dir}}/{{.Name}}.pid;
error_log {{.Dir}}/{{.Name}}-error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path {{.Dir}}/{{.Name}}-tmp/body;
  proxy_temp_path {{.Dir}}/{{.Name}}-tmp/proxy;
  fastcgi_temp_path {{.Dir}}/{{.Name}}-tmp/fastcgi;
  uwsgi_temp_path {{.Dir}}/{{.Name}}-tmp/uwsgi;
  scgi_temp_path {{.Dir}}/{{.Name}}-tmp/scgi;
  keepalive_requests 100000;
  upstream app {
    server {{.Upstream}};
    keepalive 256;
    keepalive_requests 100000;
  }
  server {
    listen 127.0.0.1:{{.Port}} backlog=4096;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
{{- if .SSE}}
      # Tuned for event streams: pass every chunk on as it arrives.
      proxy_buffering off;
      proxy_cache off;
      proxy_read_timeout 1h;
{{- end}}
    }
  }
}
`

const haproxyConf = `# HAProxy in HTTP mode with connection reuse to the upstream, no logging.
global
  maxconn 4096
  nbthread {{.Threads}}
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  http-reuse always
{{- if .SSE}}
  # Tuned for event streams: no delaying of small writes, long-lived streams allowed.
  option http-no-delay
  timeout server 1h
  timeout client 1h
  timeout tunnel 1h
{{- end}}
frontend fe
  bind 127.0.0.1:{{.Port}}
  default_backend app
backend app
  server app1 {{.Upstream}}
`

const caddyfile = `# Caddy's reverse_proxy with keep-alive sized for the load (the default idle pool is 32 per
# host); no access log, as Caddy ships.
{
	admin off
	auto_https off
}
http://127.0.0.1:{{.Port}} {
	reverse_proxy {{.Upstream}} {
		transport http {
			keepalive 90s
			keepalive_idle_conns 1024
			keepalive_idle_conns_per_host 1024
		}
	}
}
`

type confData struct {
	Dir, Name, Upstream string
	Port, Threads       int
	SSE                 bool
	// The overload peers' settings (overload_targets.go): the most requests in flight to the
	// backend, and timeouts in whole seconds.
	Limit, QueueSeconds, UpstreamSeconds int
}

func writeConf(path, tmpl string, d confData) error {
	t, err := template.New(filepath.Base(path)).Parse(tmpl)
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := t.Execute(f, d); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// startUpstream starts the fast upstream (this executable, "upstream" subcommand).
func (e *env) startUpstream(ctx context.Context) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	p, err := e.ps.start("upstream", exec.Command(e.self, "upstream", addr), filepath.Join(e.dir, "upstream.log"))
	if err != nil {
		return err
	}
	e.upstream, e.upProc = "http://"+addr, p
	return waitHTTP(ctx, p, e.upstream+"/health", 200, 10*time.Second)
}

// startHfgate starts bin/hfgate in front of upstream with the extra environment given.
// Its log (stderr) goes to a file, one line per request at the default level.
func (e *env) startHfgate(ctx context.Context, name, upstream string, extra ...string) (*proc, string, error) {
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	cmd := exec.Command(e.hfgate)
	cmd.Env = append([]string{
		fmt.Sprintf("PORT=%d", port), "HOST=127.0.0.1", "UPSTREAM_URL=" + upstream,
	}, extra...)
	p, err := e.ps.start(name, cmd, filepath.Join(e.dir, name+".log"))
	if err != nil {
		return nil, "", err
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	return p, base, waitHTTP(ctx, p, base+"/ready", 200, 15*time.Second)
}

// startTargets starts every proxy in front of the upstream and returns the targets in table
// order. A peer whose binary is missing is left out with a note in the log.
func (e *env) startTargets(ctx context.Context, only string) ([]*target, error) {
	want := func(name string) bool {
		return only == "" || slices.Contains(strings.Split(only, ","), name)
	}
	var ts []*target
	ts = append(ts, &target{key: "direct", about: "the fast upstream itself, no proxy (the physical line)",
		base: e.upstream, proc: e.upProc, throughput: true, sse: true})

	if want("hfgate") {
		p, base, err := e.startHfgate(ctx, "hfgate", e.upstream)
		if err != nil {
			return nil, err
		}
		ts = append(ts, &target{key: "hfgate", about: "hfgate, default settings (LOG_LEVEL=info: one access line per request, to a file; one P, GOMAXPROCS unset)",
			base: base, proc: p, throughput: true, sse: true, streams: true})
	}
	if want("hfgate-warn") {
		p, base, err := e.startHfgate(ctx, "hfgate-warn", e.upstream, "LOG_LEVEL=warn")
		if err != nil {
			return nil, err
		}
		ts = append(ts, &target{key: "hfgate-warn", about: "hfgate with LOG_LEVEL=warn (no access lines)",
			base: base, proc: p, throughput: true})
	}
	if want("hfgate-2p") {
		p, base, err := e.startHfgate(ctx, "hfgate-2p", e.upstream, "GOMAXPROCS=2")
		if err != nil {
			return nil, err
		}
		ts = append(ts, &target{key: "hfgate-2p", about: "hfgate with GOMAXPROCS=2 (Go's default on this machine; hfgate's own default is one P), LOG_LEVEL=info",
			base: base, proc: p, throughput: true})
	}
	if want("go-line") {
		p, base, err := e.startGoLine(ctx, "goline", e.upstream)
		if err != nil {
			return nil, err
		}
		ts = append(ts, &target{key: "go-line", about: "bare httputil.ReverseProxy, Transport idle pool 1024/host, no logging",
			base: base, proc: p, throughput: true, sse: true, streams: true})
	}
	up := strings.TrimPrefix(e.upstream, "http://")
	if want("caddy") {
		if p, base, err := e.startCaddy(ctx, "caddy", up); err != nil {
			e.logf("caddy left out: %v", err)
		} else {
			ts = append(ts, &target{key: "caddy", about: "Caddy reverse_proxy, idle pool 1024/host, no access log (Caddy's default)",
				base: base, proc: p, throughput: true, sse: true, streams: true})
		}
	}
	for _, sse := range []bool{false, true} {
		if !want(map[bool]string{false: "nginx", true: "nginx-sse"}[sse]) {
			continue
		}
		if t, err := e.startNginx(ctx, up, sse); err != nil {
			e.logf("nginx left out: %v", err)
		} else {
			ts = append(ts, t)
		}
	}
	for _, sse := range []bool{false, true} {
		if !want(map[bool]string{false: "haproxy", true: "haproxy-sse"}[sse]) {
			continue
		}
		if t, err := e.startHAProxy(ctx, up, sse); err != nil {
			e.logf("haproxy left out: %v", err)
		} else {
			ts = append(ts, t)
		}
	}
	return ts, nil
}

// startGoLine starts the bare ReverseProxy (this executable, "goline" subcommand) in front of
// upstream.
func (e *env) startGoLine(ctx context.Context, name, upstream string) (*proc, string, error) {
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	p, err := e.ps.start(name, exec.Command(e.self, "goline", addr, upstream), filepath.Join(e.dir, name+".log"))
	if err != nil {
		return nil, "", err
	}
	return p, "http://" + addr, waitHTTP(ctx, p, "http://"+addr+"/health", 200, 10*time.Second)
}

// startCaddy starts Caddy (from PATH) in front of upstream (host:port), its files named name.
func (e *env) startCaddy(ctx context.Context, name, upstream string) (*proc, string, error) {
	bin, err := exec.LookPath("caddy")
	if err != nil {
		return nil, "", err
	}
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	conf := filepath.Join(e.dir, name+".Caddyfile")
	if err := writeConf(conf, caddyfile, confData{Port: port, Upstream: upstream}); err != nil {
		return nil, "", err
	}
	home := filepath.Join(e.dir, name+"-home")
	if err := os.MkdirAll(home, 0o755); err != nil {
		return nil, "", err
	}
	cmd := exec.Command(bin, "run", "--config", conf, "--adapter", "caddyfile")
	cmd.Env = []string{"HOME=" + home, "XDG_DATA_HOME=" + home, "XDG_CONFIG_HOME=" + home}
	p, err := e.ps.start(name, cmd, filepath.Join(e.dir, name+".log"))
	if err != nil {
		return nil, "", err
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	return p, base, waitHTTP(ctx, p, base+"/health", 200, 15*time.Second)
}

// errNoUvicorn is startUvicorn's answer when the example backend cannot be run here.
var errNoUvicorn = errors.New("no example backend")

// chatBody is the JSON body sent to the example backend's POST /chat.
const chatBody = `{"message":"hello there"}`

// startUvicorn starts the example backend in dir under python's uvicorn, as `make run` starts
// it (uvicorn's access log on, to a file here). It returns an error wrapping errNoUvicorn when
// dir is empty or python cannot import fastapi and uvicorn.
func (e *env) startUvicorn(ctx context.Context, python, dir, name string) (*proc, string, error) {
	if dir == "" {
		return nil, "", fmt.Errorf("%w (-example empty)", errNoUvicorn)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, "", err
	}
	if err := exec.Command(python, "-c", "import fastapi, uvicorn").Run(); err != nil {
		return nil, "", fmt.Errorf("%w: %s cannot import fastapi and uvicorn", errNoUvicorn, python)
	}
	return e.runUvicorn(ctx, python, dir, "app:app", name, []string{"STARTUP_SECONDS=0"},
		"--proxy-headers", "--forwarded-allow-ips", "127.0.0.1")
}

// runUvicorn starts `python -m uvicorn module` in dir on a free loopback port, with env (besides
// PYTHONUNBUFFERED and a PATH of /usr/bin:/bin) and the extra arguments, and returns once its
// /health answers 200. On an error the process is stopped.
func (e *env) runUvicorn(ctx context.Context, python, dir, module, name string, env []string, extra ...string) (*proc, string, error) {
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	args := append([]string{"-m", "uvicorn", module, "--host", "127.0.0.1", "--port", fmt.Sprint(port)}, extra...)
	cmd := exec.Command(python, args...)
	cmd.Dir = dir
	cmd.Env = append([]string{"PYTHONUNBUFFERED=1", "PATH=/usr/bin:/bin"}, env...)
	p, err := e.ps.start(name, cmd, filepath.Join(e.dir, name+".log"))
	if err != nil {
		return nil, "", err
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	if err := waitHTTP(ctx, p, base+"/health", 200, 30*time.Second); err != nil {
		e.ps.stop(p)
		return nil, "", err
	}
	return p, base, nil
}

func (e *env) startNginx(ctx context.Context, upstream string, sse bool) (*target, error) {
	name := "nginx"
	if sse {
		name = "nginx-sse"
	}
	p, base, err := e.runNginx(ctx, name, nginxConf, confData{Upstream: upstream, SSE: sse})
	if err != nil {
		return nil, err
	}
	t := &target{key: name, base: base, proc: p}
	if sse {
		t.about = "nginx as above plus proxy_buffering off, proxy_read_timeout 1h (tuned for event streams)"
		t.sse, t.streams = true, true
	} else {
		t.about = "nginx, 2 workers, upstream keepalive 256, proxy_http_version 1.1, Connection \"\", buffering as shipped, no access log"
		t.throughput, t.sse = true, true
	}
	return t, nil
}

// runNginx starts nginx (from PATH) with the configuration tmpl filled from d (its Dir, Name
// and Port set here), its files named name, and returns once it answers /health with 200.
func (e *env) runNginx(ctx context.Context, name, tmpl string, d confData) (*proc, string, error) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		return nil, "", err
	}
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	if err := os.MkdirAll(filepath.Join(e.dir, name+"-tmp"), 0o777); err != nil {
		return nil, "", err
	}
	d.Dir, d.Name, d.Port = e.dir, name, port
	conf := filepath.Join(e.dir, name+".conf")
	if err := writeConf(conf, tmpl, d); err != nil {
		return nil, "", err
	}
	cmd := exec.Command(bin, "-p", e.dir, "-c", conf, "-e", filepath.Join(e.dir, name+"-error.log"), "-g", "daemon off;")
	p, err := e.ps.start(name, cmd, filepath.Join(e.dir, name+".log"))
	if err != nil {
		return nil, "", err
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	return p, base, waitHTTP(ctx, p, base+"/health", 200, 15*time.Second)
}

func (e *env) startHAProxy(ctx context.Context, upstream string, sse bool) (*target, error) {
	name := "haproxy"
	if sse {
		name = "haproxy-sse"
	}
	p, base, err := e.runHAProxy(ctx, name, haproxyConf, confData{Upstream: upstream, SSE: sse, Threads: 2})
	if err != nil {
		return nil, err
	}
	t := &target{key: name, base: base, proc: p}
	if sse {
		t.about = "HAProxy as above plus option http-no-delay, 1 h stream timeouts (tuned for event streams)"
		t.sse, t.streams = true, true
	} else {
		t.about = "HAProxy 2 threads, http-reuse always, no logging"
		t.throughput, t.sse = true, true
	}
	return t, nil
}

// runHAProxy starts HAProxy (from PATH) with the configuration tmpl filled from d (its Dir,
// Name and Port set here), its files named name, and returns once it answers /health with 200.
func (e *env) runHAProxy(ctx context.Context, name, tmpl string, d confData) (*proc, string, error) {
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		return nil, "", err
	}
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	d.Dir, d.Name, d.Port = e.dir, name, port
	conf := filepath.Join(e.dir, name+".cfg")
	if err := writeConf(conf, tmpl, d); err != nil {
		return nil, "", err
	}
	p, err := e.ps.start(name, exec.Command(bin, "-db", "-f", conf), filepath.Join(e.dir, name+".log"))
	if err != nil {
		return nil, "", err
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	return p, base, waitHTTP(ctx, p, base+"/health", 200, 15*time.Second)
}

// versions returns the peers' and tools' version strings, for the report.
func versions() map[string]string {
	v := map[string]string{}
	run := func(name string, args ...string) string {
		out, _ := exec.Command(name, args...).CombinedOutput()
		return strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	}
	field := func(s string, i int) string {
		if f := strings.Fields(s); len(f) > i {
			return f[i]
		}
		return "?"
	}
	v["caddy"] = field(run("caddy", "version"), 0)                          // v2.6.2
	v["nginx"] = strings.TrimPrefix(field(run("nginx", "-v"), 2), "nginx/") // nginx version: nginx/1.22.1
	v["haproxy"] = field(run("haproxy", "-v"), 2)                           // HAProxy version 2.6.12-1+deb12u4 ...
	v["wrk"] = strings.TrimPrefix(field(run("wrk", "-v"), 1), "debian/")    // wrk debian/4.1.0-3+b2 [epoll] ...
	v["go"] = field(run("go", "version"), 2)                                // go version go1.26.8 linux/amd64
	return v
}
