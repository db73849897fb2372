package supervise

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

func TestMaskQuerySecrets(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"no query", "INFO: started", "INFO: started"},
		{"uvicorn access line", `127.0.0.1:5 - "GET /chat/stream?message=hi&token=s3cr3t HTTP/1.1" 200`, `127.0.0.1:5 - "GET /chat/stream?message=hi&token=*** HTTP/1.1" 200`},
		{"first parameter", "GET /x?api_key=abc&q=1", "GET /x?api_key=***&q=1"},
		{"case ignored", "GET /x?Access_Token=abc#frag", "GET /x?Access_Token=***#frag"},
		{"signature", "GET /f?X-Amz-Signature=deadbeef&X-Amz-Date=1", "GET /f?X-Amz-Signature=***&X-Amz-Date=1"},
		{"several", "?password=a&pwd=b&session=c&jwt=d&code=e&auth=f", "?password=***&pwd=***&session=***&jwt=***&code=***&auth=***"},
		{"end of line", "see ?token=abc", "see ?token=***"},
		{"quoted", `"GET /?token=abc"`, `"GET /?token=***"`},
		{"empty value kept", "?token=&q=1", "?token=&q=1"},
		{"harmless names kept", "?message=hello&page=2&q=token", "?message=hello&page=2&q=token"},
		{"not a parameter", "a=b token=abc", "a=b token=abc"},
		{"name without value", "?token", "?token"},
		{"trailing separator", "x?", "x?"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(maskQuerySecrets([]byte(tt.in))); got != tt.want {
				t.Errorf("maskQuerySecrets(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestMaskQuerySecretsDoesNotAllocateWithoutEquals(t *testing.T) {
	line := []byte("INFO:     Application startup complete.")
	if n := testing.AllocsPerRun(100, func() { maskQuerySecrets(line) }); n != 0 {
		t.Errorf("allocations = %v, want 0", n)
	}
}

// FuzzMaskQuery: whatever line a child prints, masking is idempotent, leaves a line without
// '=' as it is, and leaves no secret-looking parameter with a value other than "***" (checked
// against a regular expression, not the masker's own scan).
//
//	go test -run '^$' -fuzz '^FuzzMaskQuery$' -fuzztime 10s ./gateway/supervise
func FuzzMaskQuery(f *testing.F) {
	f.Add("token=abc&key=def ?access_token=xyz")
	f.Add(`127.0.0.1:5 - "GET /chat/stream?message=hi&token=s3cr3t HTTP/1.1" 200`)
	f.Add("?a=b?token=c&&code=#x")
	f.Add("\x1b[31m?jwt=e\x1b[0m\r\n")
	f.Add("\xff?Passwd=\xfe\tq")
	f.Add("&keY=0&keY=0") // adjacent secrets: the scan must not skip the second separator
	param := regexp.MustCompile(`[?&]([A-Za-z0-9_.-]+)=([^&#\t\r\n "']*)`)
	f.Fuzz(func(t *testing.T, in string) {
		line := []byte(in)
		once := maskQuerySecrets(bytes.Clone(line))
		if twice := maskQuerySecrets(bytes.Clone(once)); !bytes.Equal(once, twice) {
			t.Errorf("maskQuerySecrets not idempotent: %q -> %q -> %q", line, once, twice)
		}
		if !bytes.Contains(line, []byte("=")) && !bytes.Equal(once, line) {
			t.Errorf("maskQuerySecrets changed %q without '=' to %q", line, once)
		}
		for _, m := range param.FindAllSubmatch(once, -1) {
			name, value := strings.ToLower(string(m[1])), string(m[2])
			for _, w := range secretParamWords {
				if strings.Contains(name, w) && value != "" && value != "***" {
					t.Errorf("maskQuerySecrets(%q) = %q: parameter %s keeps its value %q", line, once, m[1], value)
					break
				}
			}
		}
	})
}
