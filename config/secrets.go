package config

import (
	"cmp"
	"net/url"
	"slices"
	"strings"
)

// minSecretLen is the shortest value treated as a secret. Masking shorter
// values ("1", "yes", "dev") would garble every log line that happens to
// contain them, and such values protect nothing anyway.
const minSecretLen = 4

// looksSecret reports whether a variable's name says it holds a secret:
// it ends in _KEY, _TOKEN or _SECRET, contains PASSWORD, or is DATABASE_URL
// or HF_TOKEN. Case is ignored, so openai_api_key counts too.
func looksSecret(name string) bool {
	n := strings.ToUpper(name)
	switch {
	case n == "DATABASE_URL", n == "HF_TOKEN":
		return true
	case strings.HasSuffix(n, "_KEY"), strings.HasSuffix(n, "_TOKEN"), strings.HasSuffix(n, "_SECRET"):
		return true
	case strings.Contains(n, "PASSWORD"):
		return true
	}
	return false
}

// Missing returns the names in required whose value in environ is unset,
// empty or only white space, in the order of required. It never returns
// nil.
func Missing(environ map[string]string, required []string) []string {
	missing := []string{}
	for _, name := range required {
		if strings.TrimSpace(environ[name]) == "" {
			missing = append(missing, name)
		}
	}
	return missing
}

// Secrets returns the values a log handler must mask:
//
//   - the values of the required variables, except hfgate's own settings
//     (the names in [Vars]): REQUIRED_ENV=PORT must not turn every "7860"
//     in the logs into "***",
//   - the values of every variable in environ whose name says it is a secret (looksSecret),
//   - the password of any of those values that is a URL with user info
//     (DATABASE_URL=postgres://user:pw@host/db masks pw on its own too),
//   - the password in upstream's user info, if any (upstream may be nil).
//
// Values are trimmed of surrounding white space; those shorter than 4
// bytes are skipped. The result has no duplicates and is ordered longest
// first (then alphabetically), so a masker that replaces in order never
// leaves part of a longer secret that contains a shorter one. It never
// returns nil.
func Secrets(environ map[string]string, required []string, upstream *url.URL) []string {
	seen := make(map[string]bool)
	add := func(v string) {
		if v = strings.TrimSpace(v); len(v) >= minSecretLen {
			seen[v] = true
		}
		// A connection URL's password also leaks on its own, e.g. in a driver's error
		// message that quotes the DSN's parts.
		if strings.Contains(v, "://") {
			if u, err := url.Parse(v); err == nil && u.User != nil {
				if pw, ok := u.User.Password(); ok && len(pw) >= minSecretLen {
					seen[pw] = true
				}
			}
		}
	}
	own := make(map[string]bool)
	for _, v := range Vars() {
		own[v.Name] = true
	}
	for _, name := range required {
		if !own[name] {
			add(environ[name])
		}
	}
	for name, value := range environ {
		if looksSecret(name) {
			add(value)
		}
	}
	if upstream != nil && upstream.User != nil {
		if pw, ok := upstream.User.Password(); ok {
			add(pw)
		}
	}
	secrets := make([]string, 0, len(seen))
	for v := range seen {
		secrets = append(secrets, v)
	}
	slices.SortFunc(secrets, func(a, b string) int {
		if c := cmp.Compare(len(b), len(a)); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	return secrets
}
