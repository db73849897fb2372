package gateway

import "testing"

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
