package config

import (
	"fmt"
	"math"
	"net"
	"net/netip"
	"net/url"
	"reflect"
	"strconv"
	"strings"

	"github.com/caarlos0/env/v11"
)

// problem is an error whose text is safe to show: it describes what is
// wrong without quoting the value. Parsers in this file return only
// problems, so Load can pass their text on unchanged.
type problem string

func (p problem) Error() string { return string(p) }

// parsers are the env.Options.FuncMap entries. env looks a parser up by the
// field's exact type, so each entry serves every field of that type:
//
//   - url.URL: UPSTREAM_URL, the only URL.
//   - []string: every comma list (REQUIRED_ENV, CORS_*); UPSTREAM_CMD has
//     its own type, [Command].
//   - []netip.Prefix: TRUSTED_PROXIES.
//   - int64: MAX_BODY_BYTES. Every int64 field is a byte size; durations
//     are time.Duration and numbers that are not sizes are int.
func parsers() map[reflect.Type]env.ParserFunc {
	return map[reflect.Type]env.ParserFunc{
		reflect.TypeFor[url.URL](): func(v string) (any, error) {
			u, err := parseUpstreamURL(v)
			if err != nil {
				return nil, err
			}
			return *u, nil
		},
		reflect.TypeFor[[]string](): func(v string) (any, error) {
			return splitList(v), nil
		},
		reflect.TypeFor[[]netip.Prefix](): func(v string) (any, error) {
			return parsePrefixes(v)
		},
		reflect.TypeFor[int64](): func(v string) (any, error) {
			return parseByteSize(v)
		},
	}
}

// splitList splits a comma list, trims each item and drops empty ones.
// It returns a non-nil slice.
func splitList(s string) []string {
	items := []string{}
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			items = append(items, item)
		}
	}
	return items
}

// parseUpstreamURL accepts an absolute http or https URL with a host and
// without a query or fragment. A trailing slash is dropped so that paths
// join cleanly.
func parseUpstreamURL(s string) (*url.URL, error) {
	const want = "must be an absolute http:// or https:// URL with a host, such as http://127.0.0.1:8000"
	u, err := url.Parse(s)
	if err != nil {
		return nil, problem(want)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, problem(want)
	case u.Host == "" || u.Hostname() == "" || u.Opaque != "":
		return nil, problem(want)
	case u.RawQuery != "" || u.ForceQuery:
		return nil, problem("must not have a query (?...)")
	case u.Fragment != "" || strings.Contains(s, "#"):
		return nil, problem("must not have a fragment (#...)")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, problem("must have a port from 1 to 65535")
		}
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = strings.TrimRight(u.RawPath, "/")
	return u, nil
}

// parsePrefixes reads a comma list of CIDR prefixes or bare IP addresses
// (a bare address is a prefix of its full length). Host bits are cleared,
// so 10.1.2.3/8 reads as 10.0.0.0/8.
func parsePrefixes(s string) ([]netip.Prefix, error) {
	items := splitList(s)
	prefixes := make([]netip.Prefix, 0, len(items))
	var bad []int
	for i, item := range items {
		p, ok := parsePrefix(item)
		if !ok {
			bad = append(bad, i+1)
			continue
		}
		prefixes = append(prefixes, p)
	}
	if len(bad) > 0 {
		return nil, problem(fmt.Sprintf("%s not a CIDR (10.0.0.0/8) or IP address (10.1.2.3)", itemsAre(bad)))
	}
	return prefixes, nil
}

func parsePrefix(s string) (netip.Prefix, bool) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, false
		}
		return p.Masked(), true
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, a.BitLen()), true
}

// byteUnit returns the size of a MAX_BODY_BYTES suffix, lower-cased.
func byteUnit(suffix string) (int64, bool) {
	switch suffix {
	case "", "b":
		return 1, true
	case "kib":
		return 1 << 10, true
	case "mib":
		return 1 << 20, true
	case "gib":
		return 1 << 30, true
	case "kb":
		return 1000, true
	case "mb":
		return 1000 * 1000, true
	case "gb":
		return 1000 * 1000 * 1000, true
	}
	return 0, false
}

// parseByteSize reads a whole positive number of bytes with an optional
// unit: KiB, MiB, GiB (powers of 1024) or KB, MB, GB (powers of 1000),
// case-insensitive, with or without a space before the unit.
func parseByteSize(s string) (int64, error) {
	const want = "must be a whole number of bytes, optionally followed by KiB, MiB, GiB, KB, MB or GB"
	s = strings.TrimSpace(s)
	digits := 0
	for digits < len(s) && '0' <= s[digits] && s[digits] <= '9' {
		digits++
	}
	if digits == 0 {
		return 0, problem(want)
	}
	unit, ok := byteUnit(strings.ToLower(strings.TrimSpace(s[digits:])))
	if !ok {
		return 0, problem(want)
	}
	n, err := strconv.ParseInt(s[:digits], 10, 64)
	if err != nil || n > math.MaxInt64/unit {
		return 0, problem("is too large")
	}
	if n == 0 {
		return 0, problem("must be greater than zero")
	}
	return n * unit, nil
}

// parseOrigins checks a CORS origin list: either a lone "*" or exact
// origins of the form scheme://host[:port]. Scheme and host are lower-cased
// (browsers send them that way) and duplicates dropped.
func parseOrigins(items []string) ([]string, error) {
	origins := make([]string, 0, len(items))
	seen := make(map[string]bool)
	var bad []int
	for i, item := range items {
		if item == "*" {
			if len(items) != 1 {
				return nil, problem("* must be the only entry when present")
			}
			return []string{"*"}, nil
		}
		o, ok := normalizeOrigin(item)
		if !ok {
			bad = append(bad, i+1)
			continue
		}
		if !seen[o] {
			seen[o] = true
			origins = append(origins, o)
		}
	}
	if len(bad) > 0 {
		return nil, problem(fmt.Sprintf("%s not an origin of the form scheme://host[:port] without path or trailing slash", itemsAre(bad)))
	}
	return origins, nil
}

func normalizeOrigin(s string) (string, bool) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Opaque != "" || u.User != nil || u.Host == "" || u.Hostname() == "" {
		return "", false
	}
	if u.Path != "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.ContainsAny(s, "#?") {
		return "", false
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "", false
		}
	}
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host), true
}

// checkNames reports the REQUIRED_ENV items that are not variable names
// ([A-Za-z_][A-Za-z0-9_]*) and returns the names without duplicates.
func checkNames(items []string) ([]string, error) {
	names := make([]string, 0, len(items))
	seen := make(map[string]bool)
	var bad []int
	for i, item := range items {
		if !isEnvName(item) {
			bad = append(bad, i+1)
			continue
		}
		if !seen[item] {
			seen[item] = true
			names = append(names, item)
		}
	}
	if len(bad) > 0 {
		return nil, problem(fmt.Sprintf("%s not a variable name (letters, digits and _, not starting with a digit)", itemsAre(bad)))
	}
	return names, nil
}

func isEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// checkHeaderNames reports the items that are not HTTP header names
// (RFC 9110 tokens).
func checkHeaderNames(items []string) error {
	var bad []int
	for i, item := range items {
		if !isToken(item) {
			bad = append(bad, i+1)
		}
	}
	if len(bad) > 0 {
		return problem(fmt.Sprintf("%s not a header name", itemsAre(bad)))
	}
	return nil
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// checkHost accepts an IP address or a DNS host name for HOST and
// GRADIO_SERVER_NAME.
func checkHost(s string) error {
	const want = "must be an IP address or a host name, such as 0.0.0.0, :: or localhost"
	if a, err := netip.ParseAddr(s); err == nil && a.IsValid() {
		return nil
	}
	if s == "" || len(s) > 253 {
		return problem(want)
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return problem(want)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return problem(want)
			}
		}
	}
	return nil
}

// checkHealthPath accepts an absolute path such as /health. A leading "//"
// is refused: resolved against the upstream URL it would name another host.
func checkHealthPath(s string) error {
	if !strings.HasPrefix(s, "/") || strings.HasPrefix(s, "//") {
		return problem("must be a path starting with a single /, such as /health")
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f || c == '#' {
			return problem("must not contain spaces, control characters or #")
		}
	}
	return nil
}

// checkPort parses a port number from 1 to 65535.
func checkPort(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, problem(portProblem)
	}
	return n, nil
}

const portProblem = "must be a whole number from 1 to 65535"

// itemsAre says which 1-based list positions are wrong, without quoting
// them: "item 2 is", "items 1, 3 are".
func itemsAre(positions []int) string {
	if len(positions) == 1 {
		return fmt.Sprintf("item %d is", positions[0])
	}
	s := make([]string, len(positions))
	for i, p := range positions {
		s[i] = strconv.Itoa(p)
	}
	return "items " + strings.Join(s, ", ") + " are"
}

// checkListenAddr accepts host:port for a listener: the host may be empty
// (all interfaces), an IP address or a host name; the port 0 to 65535 (0
// picks a free one).
func checkListenAddr(s string) error {
	const want = "must be host:port, such as 127.0.0.1:9090 or :9090"
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return problem(want)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return problem(want)
	}
	if host != "" && checkHost(host) != nil {
		return problem(want)
	}
	return nil
}
