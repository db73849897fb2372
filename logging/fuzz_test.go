package logging

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

// FuzzLogSanitise: whatever text reaches the logger (message, string, error and grouped
// attributes), each record is one line with no raw control character (so no ANSI escape),
// and a secret value never appears in it. (The query masking of relayed child lines has its
// own target, FuzzMaskQuery.)
//
//	go test -run '^$' -fuzz '^FuzzLogSanitise$' -fuzztime 10s ./logging
func FuzzLogSanitise(f *testing.F) {
	f.Add("upstream", "\x1b[31mred\x1b[0m", "hunterhunter", false)
	f.Add("msg\nwith newline", "\x1b]0;title\x07tail", "sekretvalue", true)
	f.Add("\x00\x7f\r", "token=abc&key=def ?access_token=xyz", "abcdefgh", false)
	f.Add("", "\xff\xfe invalid utf8 \u2028", "passwordpassword", true)
	f.Fuzz(func(t *testing.T, msg, value, secret string, json bool) {
		format := "text"
		if json {
			format = "json"
		}
		// Secrets are real values (config.Secrets keeps those of 4 bytes and more); letters
		// only, at least 8, so an escape sequence of the output format cannot spell one.
		if len(secret) < 8 || strings.IndexFunc(secret, func(r rune) bool { return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z') }) >= 0 {
			secret = ""
		}
		logRecord := func(msg, value string) string {
			var buf bytes.Buffer
			logger := New(&buf, Options{Format: format, Secrets: []string{secret}})
			logger.Info(msg, "v", value, "with_secret", value+secret+value, "err", errors.New(value),
				slog.Group("g", "inner", value))
			return buf.String()
		}
		out := logRecord(msg, value)
		if strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n") {
			t.Fatalf("got %d lines, want one record on one line: %q", strings.Count(out, "\n"), out)
		}
		for i := 0; i < len(out)-1; i++ {
			if c := out[i]; c < 0x20 || c == 0x7f {
				t.Fatalf("raw control byte %#x at %d in %q", c, i, out)
			}
		}
		if secret != "" && strings.Contains(out, secret) && !strings.Contains(logRecord("", ""), secret) {
			t.Errorf("secret %q in the log line %q", secret, out)
		}
	})
}
