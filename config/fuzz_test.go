package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// FuzzLoad feeds arbitrary values to the variables with parsers of their own. Load must
// never panic; on success the documented invariants hold, and on failure every problem
// names a variable.
//
//	go test -run '^$' -fuzz '^FuzzLoad$' -fuzztime 10s ./config
func FuzzLoad(f *testing.F) {
	f.Add("7860", "0.0.0.0", "http://127.0.0.1:8000", "https://app.example.com", "127.0.0.0/8", "10MiB", "OPENAI_API_KEY", "python -m uvicorn app:app", "55s", "false")
	f.Add("0", "::", "https://u:p@h:1/p/", "*", "", "1KB", "A,B,,A", `sh -c 'echo "x"'`, "1ms", "true")
	f.Add("65536", "bad host", "ftp://x", "https://APP.example.com:443,http://x:0", "1.2.3.4,::1/129", "-1", "1X", `"unterminated`, "-5s", "yes")
	f.Fuzz(func(t *testing.T, port, host, upstream, origins, proxies, body, required, cmd, timeout, creds string) {
		environ := map[string]string{
			"PORT": port, "HOST": host, "UPSTREAM_URL": upstream, "CORS_ALLOW_ORIGINS": origins,
			"TRUSTED_PROXIES": proxies, "MAX_BODY_BYTES": body, "REQUIRED_ENV": required,
			"UPSTREAM_CMD": cmd, "UPSTREAM_TIMEOUT": timeout, "CORS_ALLOW_CREDENTIALS": creds,
		}
		c, err := Load(environ)
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) || len(ce.Problems) == 0 {
				t.Fatalf("Load error %T %v, want *Error with problems", err, err)
			}
			names := make(map[string]bool)
			for _, v := range Vars() {
				names[v.Name] = true
			}
			for _, p := range ce.Problems {
				name, _, ok := strings.Cut(p, ": ")
				if !ok || !names[name] {
					t.Errorf("problem %q does not start with a variable name", p)
				}
			}
			return
		}
		if c.Port < 1 || c.Port > 65535 {
			t.Errorf("Port %d out of range", c.Port)
		}
		if u := c.UpstreamURL; u == nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
			t.Errorf("UpstreamURL %v breaks its invariants", c.UpstreamURL)
		}
		if c.MaxBodyBytes <= 0 || c.UpstreamTimeout <= 0 {
			t.Errorf("MaxBodyBytes %d, UpstreamTimeout %v: want both > 0", c.MaxBodyBytes, c.UpstreamTimeout)
		}
		if len(c.UpstreamCmd) > 0 && c.UpstreamCmd[0] == "" {
			t.Errorf("UpstreamCmd %q has an empty program name", c.UpstreamCmd)
		}
		if c.CORSAllowCredentials && slices.Contains(c.CORSAllowOrigins, "*") {
			t.Errorf("credentials allowed with the * origin")
		}
		for _, s := range c.Secrets {
			if len(s) < minSecretLen {
				t.Errorf("secret of %d bytes, want at least %d", len(s), minSecretLen)
			}
		}
		// The normal form of the origins is a fixed point: loading it again changes nothing.
		if len(c.CORSAllowOrigins) > 0 {
			again, err := Load(map[string]string{"CORS_ALLOW_ORIGINS": strings.Join(c.CORSAllowOrigins, ",")})
			if err != nil || !slices.Equal(again.CORSAllowOrigins, c.CORSAllowOrigins) {
				t.Errorf("origins %q load again as %q, %v", c.CORSAllowOrigins, again.CORSAllowOrigins, err)
			}
			for _, o := range c.CORSAllowOrigins {
				if o != "*" && (o != strings.ToLower(o) || !strings.Contains(o, "://") || strings.Count(o, "/") != 2 || strings.ContainsAny(o, "?#@")) {
					t.Errorf("origin %q is not in the normal form scheme://host[:port]", o)
				}
			}
		}
	})
}
