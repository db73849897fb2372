package main

import (
	"context"
	"fmt"
	"strings"
)

// overloadTarget is one way of putting the overload backend on the network: the backend alone
// (direct, with or without uvicorn's own limit) or a proxy in front of it.
type overloadTarget struct {
	key, about string
	// backendArgs are extra uvicorn arguments for the backend behind this target.
	backendArgs []string
	// front starts what stands in front of the backend at up (http://host:port) and returns it
	// and its base URL; nil means nothing: the load goes to the backend itself.
	front func(ctx context.Context, e *env, up string) (*proc, string, error)
	// hfgate: its /ready is polled during the cell.
	hfgate bool
}

// overloadTargetNames are the targets of `hfbench overload`, in table order.
var overloadTargetNames = []string{"direct", "uvicorn-limit", "haproxy", "nginx", "hfgate", "hfgate-fixed"}

// overloadTargets returns the targets named in o.targets, configured from o, in table order.
func overloadTargets(o overloadOpts) []overloadTarget {
	d := confData{Limit: o.limit, QueueSeconds: int(o.queueTimeout.Seconds()), UpstreamSeconds: upstreamTimeoutSeconds}
	all := []overloadTarget{
		{key: "direct", about: "uvicorn alone, as started by `uvicorn app:app` (no limit: every connection is served, however many wait)"},
		{key: "uvicorn-limit", backendArgs: []string{"--limit-concurrency", fmt.Sprint(o.uvicornLimit)},
			about: fmt.Sprintf("uvicorn `--limit-concurrency %d`: a bare 503 (text, no Retry-After) once %d connections are open or %d requests running; open keep-alive connections count, and the check and the 503 run on the same event loop as the work, so a refusal waits for the request running", o.uvicornLimit, o.uvicornLimit, o.uvicornLimit)},
		{key: "haproxy", front: func(ctx context.Context, e *env, up string) (*proc, string, error) {
			return e.runHAProxy(ctx, "haproxy-overload", haproxyOverloadConf, d.at(up))
		}, about: fmt.Sprintf("HAProxy hand-tuned: `server ... maxconn %d` (at most %d requests in flight to the backend), `timeout queue %ds` (the rest wait in HAProxy's FIFO, then 503 with no Retry-After), `timeout server %ds`", o.limit, o.limit, d.QueueSeconds, upstreamTimeoutSeconds)},
		{key: "nginx", front: func(ctx context.Context, e *env, up string) (*proc, string, error) {
			return e.runNginx(ctx, "nginx-overload", nginxOverloadConf, d.at(up))
		}, about: fmt.Sprintf("nginx `server ... max_conns=%d` with a shared `zone` (the limit holds across its 2 workers), `proxy_read_timeout %ds`. Free nginx has no upstream queue (the `queue` directive is nginx Plus only): a request that finds the server at max_conns fails at once with 502 (\"no live upstreams\"). Its only other free queue, `limit_req` with `burst`, paces by a fixed request rate, not by the backend's concurrency, and is not measured", o.limit, upstreamTimeoutSeconds)},
		{key: "hfgate", front: func(ctx context.Context, e *env, up string) (*proc, string, error) {
			return e.startHfgate(ctx, "hfgate-overload", up)
		}, hfgate: true, about: "hfgate with its defaults, in front of the external uvicorn (UPSTREAM_URL, no UPSTREAM_CMD)"},
		{key: "hfgate-fixed", front: func(ctx context.Context, e *env, up string) (*proc, string, error) {
			return e.startHfgate(ctx, "hfgate-fixed-overload", up, fmt.Sprintf("UPSTREAM_CONCURRENCY=%d", o.limit))
		}, hfgate: true, about: fmt.Sprintf("hfgate with a fixed limit, `UPSTREAM_CONCURRENCY=%d`, otherwise as above", o.limit)},
	}
	var ts []overloadTarget
	for _, t := range all {
		if o.targets == nil || o.targets[t.key] {
			ts = append(ts, t)
		}
	}
	return ts
}

// upstreamTimeoutSeconds is how long HAProxy and nginx wait for the backend's answer: hfgate's
// UPSTREAM_TIMEOUT default, 5 s inside the edge's 60 s cut.
const upstreamTimeoutSeconds = 55

// start starts what stands in front of the backend at upBase (nothing for direct) and returns
// it (nil for direct) and the base URL the load goes to.
func (t overloadTarget) start(ctx context.Context, e *env, upBase string) (*proc, string, error) {
	if t.front == nil {
		return nil, upBase, nil
	}
	return t.front(ctx, e, upBase)
}

// at returns d pointing at the backend with base URL up (http://host:port).
func (d confData) at(up string) confData {
	d.Upstream = strings.TrimPrefix(up, "http://")
	return d
}

const haproxyOverloadConf = `# HAProxy hand-tuned for a backend that does one thing at a time: at most {{.Limit}} requests in
# flight to it (server maxconn; in HTTP mode it counts requests), the rest wait in HAProxy's
# queue for up to timeout queue and then get 503.
global
  maxconn 8192
  nbthread 2
defaults
  mode http
  maxconn 8192
  timeout connect 5s
  timeout client 120s
  timeout server {{.UpstreamSeconds}}s
  timeout queue {{.QueueSeconds}}s
  timeout http-keep-alive 4s
  http-reuse always
frontend fe
  bind 127.0.0.1:{{.Port}}
  default_backend app
backend app
  server app1 {{.Upstream}} maxconn {{.Limit}}
`

const nginxOverloadConf = `# nginx with a limit on the backend: at most {{.Limit}} connections to it, counted across the
# workers (zone). Free nginx has no queue in front of an upstream: a request that finds every
# server at max_conns fails at once with 502.
worker_processes 2;
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
  upstream app {
    zone app 64k;
    server {{.Upstream}} max_conns={{.Limit}};
    keepalive 16;
    # Below uvicorn's 5 s, so nginx never reuses a connection uvicorn is closing.
    keepalive_timeout 4s;
  }
  server {
    listen 127.0.0.1:{{.Port}} backlog=4096;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_read_timeout {{.UpstreamSeconds}}s;
    }
  }
}
`
