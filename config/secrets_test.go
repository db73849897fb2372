package config

import (
	"slices"
	"testing"
)

func TestLooksSecret(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		want bool
	}{
		{name: "OPENAI_API_KEY", want: true},
		{name: "openai_api_key", want: true},
		{name: "GITHUB_TOKEN", want: true},
		{name: "HF_TOKEN", want: true},
		{name: "SESSION_SECRET", want: true},
		{name: "DB_PASSWORD", want: true},
		{name: "PASSWORD", want: true},
		{name: "PASSWORD_FILE", want: true},
		{name: "DATABASE_URL", want: true},
		{name: "KEY", want: false},
		{name: "TOKEN", want: false},
		{name: "KEYBOARD", want: false},
		{name: "TOKEN_LIMIT", want: false},
		{name: "SECRETARY", want: false},
		{name: "DATABASE_URL_RO", want: false},
		{name: "PATH", want: false},
		{name: "PORT", want: false},
		{name: "", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := looksSecret(tt.name); got != tt.want {
				t.Errorf("looksSecret(%q): got %v, want %v", tt.name, got, tt.want)
			}
		})
	}
}

func TestSecrets(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		environ  map[string]string
		required []string
		upstream string
		want     []string
	}{
		{name: "nothing", environ: map[string]string{}, want: []string{}},
		{
			name:    "secret-looking names",
			environ: map[string]string{"OPENAI_API_KEY": "sk-123", "HF_TOKEN": "hf_abcdefgh", "DATABASE_URL": "postgres://u:p@db/x", "PATH": "/usr/local/bin"},
			want:    []string{"postgres://u:p@db/x", "hf_abcdefgh", "sk-123"},
		},
		{
			name:     "required values count even with plain names",
			environ:  map[string]string{"MODEL": "llama-private", "OTHER": "not-a-secret"},
			required: []string{"MODEL", "UNSET"},
			want:     []string{"llama-private"},
		},
		{
			name:     "hfgate's own settings are not secrets",
			environ:  map[string]string{"PORT": "7860", "LOG_FORMAT": "text", "API_SEED": "seed-value"},
			required: []string{"PORT", "LOG_FORMAT", "API_SEED"},
			want:     []string{"seed-value"},
		},
		{
			name:    "short values skipped",
			environ: map[string]string{"A_KEY": "abc", "B_KEY": "abcd", "C_TOKEN": "", "D_SECRET": "  x  "},
			want:    []string{"abcd"},
		},
		{
			name:    "values trimmed",
			environ: map[string]string{"A_KEY": "  spaced-secret\n"},
			want:    []string{"spaced-secret"},
		},
		{
			name:     "duplicates dropped",
			environ:  map[string]string{"A_KEY": "same-value", "B_TOKEN": "same-value", "C": "same-value"},
			required: []string{"C", "C"},
			want:     []string{"same-value"},
		},
		{
			name:    "longest first, ties alphabetical",
			environ: map[string]string{"A_KEY": "bbbb", "B_KEY": "aaaa", "C_KEY": "abcdefgh", "D_KEY": "abcdefghijkl"},
			want:    []string{"abcdefghijkl", "abcdefgh", "aaaa", "bbbb"},
		},
		{
			name:    "a URL's password also on its own",
			environ: map[string]string{"DATABASE_URL": "postgres://chat:s3cret-pw@db:5432/chat", "REDIS_PASSWORD": "redis://:tok-9876@cache:6379"},
			want:    []string{"postgres://chat:s3cret-pw@db:5432/chat", "redis://:tok-9876@cache:6379", "s3cret-pw", "tok-9876"},
		},
		{
			name:     "upstream password",
			environ:  map[string]string{},
			upstream: "http://user:pw-12345@127.0.0.1:8000",
			want:     []string{"pw-12345"},
		},
		{
			name:     "upstream user without password",
			environ:  map[string]string{},
			upstream: "http://user@127.0.0.1:8000",
			want:     []string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var upstream = mustURL("http://127.0.0.1:8000")
			if tt.upstream != "" {
				upstream = mustURL(tt.upstream)
			}
			got := Secrets(tt.environ, tt.required, upstream)
			if !slices.Equal(got, tt.want) || got == nil {
				t.Errorf("Secrets: got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSecretsNilUpstream(t *testing.T) {
	t.Parallel()
	if got := Secrets(map[string]string{"X_KEY": "value"}, nil, nil); !slices.Equal(got, []string{"value"}) {
		t.Errorf("Secrets: got %q, want [value]", got)
	}
}

func TestMissing(t *testing.T) {
	t.Parallel()
	got := Missing(map[string]string{"A": "x", "B": "", "D": " "}, []string{"A", "B", "C", "D"})
	if want := []string{"B", "C", "D"}; !slices.Equal(got, want) {
		t.Errorf("Missing: got %q, want %q", got, want)
	}
	if got := Missing(nil, nil); got == nil || len(got) != 0 {
		t.Errorf("Missing(nil, nil): got %#v, want an empty non-nil slice", got)
	}
}
