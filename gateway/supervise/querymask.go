package supervise

import (
	"bytes"
	"strings"
)

// secretParamWords are the words that make a query parameter's value secret when its name
// contains one of them (case ignored): token=, api_key=, access_token=, X-Amz-Signature=,
// password=, code= (OAuth), session=, jwt=...
var secretParamWords = [...]string{"token", "key", "secret", "passw", "pwd", "auth", "sig", "session", "cred", "jwt", "code"}

// maskQuerySecrets replaces the values of secret-looking query parameters in a line of text
// with "***". The child's own access log (uvicorn's) prints request targets with their query,
// and a client's token there is a secret the gateway cannot know in advance; the cleaning
// handler masks only the values it knows. A parameter is a '?' or '&' followed by a name of
// [A-Za-z0-9_.-] and '='; its value runs to the next '&', '#', white space, quote or end of
// line. Lines with no '=' are returned as they are, without allocating.
func maskQuerySecrets(line []byte) []byte {
	if bytes.IndexByte(line, '=') < 0 {
		return line
	}
	var out []byte // nil until something is masked
	last := 0      // line[last:] is not yet copied to out
	for i := 0; i < len(line); i++ {
		if c := line[i]; c != '?' && c != '&' {
			continue
		}
		j := i + 1
		for j < len(line) && isParamNameByte(line[j]) {
			j++
		}
		if j == i+1 || j >= len(line) || line[j] != '=' || !secretParamName(line[i+1:j]) {
			continue
		}
		start := j + 1
		end := start
		for end < len(line) && !isValueEnd(line[end]) {
			end++
		}
		if end == start {
			continue
		}
		out = append(append(out, line[last:start]...), "***"...)
		last = end
		i = end - 1
	}
	if out == nil {
		return line
	}
	return append(out, line[last:]...)
}

func isParamNameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.'
}

func isValueEnd(c byte) bool {
	return c == '&' || c == '#' || c == ' ' || c == '\t' || c == '"' || c == '\'' || c == '\r' || c == '\n'
}

func secretParamName(name []byte) bool {
	n := strings.ToLower(string(name))
	for _, w := range secretParamWords {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}
