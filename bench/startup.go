package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"sync"
	"time"
)

// startupResult is one start of hfgate.
type startupResult struct {
	accept       time.Duration // exec -> the port accepts a connection
	upToReady    time.Duration // the upstream starts listening -> /ready answers 200
	probeToReady time.Duration // the upstream first answers its health path -> /ready answers 200
}

// measureStartup starts hfgate runs times with no upstream listening, measures how long until
// its port accepts, then (after a random 0-250 ms, so the upstream's start is not phase-locked
// to the prober) starts an upstream in this process and measures how long until /ready is 200.
func (e *env) measureStartup(ctx context.Context, runs int) ([]startupResult, error) {
	var out []startupResult
	for i := range runs {
		r, err := e.startupOnce(ctx, i)
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
	return out, nil
}

func (e *env) startupOnce(ctx context.Context, i int) (startupResult, error) {
	var r startupResult
	port, err := freePort()
	if err != nil {
		return r, err
	}
	upPort, err := freePort()
	if err != nil {
		return r, err
	}
	gw := fmt.Sprintf("127.0.0.1:%d", port)
	up := fmt.Sprintf("127.0.0.1:%d", upPort)
	cmd := exec.Command(e.hfgate)
	cmd.Env = []string{fmt.Sprintf("PORT=%d", port), "HOST=127.0.0.1", "UPSTREAM_URL=http://" + up, "LOG_LEVEL=warn"}
	start := time.Now()
	p, err := e.ps.start("hfgate-startup", cmd, filepath.Join(e.dir, fmt.Sprintf("startup-%d.log", i)))
	if err != nil {
		return r, err
	}
	defer e.ps.stop(p)
	if r.accept, err = awaitAccept(p, gw, start, 5*time.Second); err != nil {
		return r, err
	}

	time.Sleep(rand.N(250 * time.Millisecond))
	ln, err := net.Listen("tcp", up)
	if err != nil {
		return r, fmt.Errorf("upstream listen: %w", err)
	}
	upAt := time.Now()
	var once sync.Once
	firstHealth := make(chan time.Time, 1)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			once.Do(func() { firstHealth <- time.Now() })
		}
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	})}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if time.Now().After(deadline) {
			return r, fmt.Errorf("hfgate not ready 5 s after its upstream came up")
		}
		res, err := client.Get("http://" + gw + "/ready")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
	readyAt := time.Now()
	r.upToReady = readyAt.Sub(upAt)
	select {
	case t := <-firstHealth:
		r.probeToReady = readyAt.Sub(t)
	default:
		return r, fmt.Errorf("ready without a health probe")
	}
	return r, nil
}

// awaitAccept dials addr every 100 µs until a connection is accepted and returns the time since
// start.
func awaitAccept(p *proc, addr string, start time.Time, timeout time.Duration) (time.Duration, error) {
	deadline := start.Add(timeout)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			d := time.Since(start)
			c.Close()
			return d, nil
		}
		select {
		case <-p.done:
			return 0, fmt.Errorf("%s exited before accepting on %s", p.name, addr)
		default:
		}
		time.Sleep(100 * time.Microsecond)
	}
	return 0, fmt.Errorf("%s did not accept on %s within %v", p.name, addr, timeout)
}

// measureCaddyStartup is the same exec -> accepting measurement for Caddy, for reference.
func (e *env) measureCaddyStartup(ctx context.Context, runs int) ([]time.Duration, error) {
	bin, err := exec.LookPath("caddy")
	if err != nil {
		return nil, err
	}
	var out []time.Duration
	for i := range runs {
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		port, err := freePort()
		if err != nil {
			return out, err
		}
		conf := filepath.Join(e.dir, fmt.Sprintf("Caddyfile-startup-%d", i))
		if err := writeConf(conf, caddyfile, confData{Port: port, Upstream: e.upstream[len("http://"):]}); err != nil {
			return out, err
		}
		home := filepath.Join(e.dir, "caddy-home")
		cmd := exec.Command(bin, "run", "--config", conf, "--adapter", "caddyfile")
		cmd.Env = []string{"HOME=" + home, "XDG_DATA_HOME=" + home, "XDG_CONFIG_HOME=" + home}
		start := time.Now()
		p, err := e.ps.start("caddy-startup", cmd, filepath.Join(e.dir, fmt.Sprintf("caddy-startup-%d.log", i)))
		if err != nil {
			return out, err
		}
		d, err := awaitAccept(p, fmt.Sprintf("127.0.0.1:%d", port), start, 10*time.Second)
		e.ps.stop(p)
		if err != nil {
			return out, err
		}
		out = append(out, d)
	}
	return out, nil
}
