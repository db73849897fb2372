package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestSplitCommand(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{name: "empty", in: "", want: nil},
		{name: "only blanks", in: " \t\n ", want: nil},
		{name: "plain words", in: "uvicorn app:app --port 8000", want: []string{"uvicorn", "app:app", "--port", "8000"}},
		{name: "runs of blanks", in: "  a \t\n b  ", want: []string{"a", "b"}},
		{name: "single quotes keep everything", in: `echo 'a  b\n "c" $HOME'`, want: []string{"echo", `a  b\n "c" $HOME`}},
		{name: "double quotes", in: `echo "a  b"`, want: []string{"echo", "a  b"}},
		{name: "escaped quote in double quotes", in: `echo "say \"hi\""`, want: []string{"echo", `say "hi"`}},
		{name: "escaped backslash in double quotes", in: `echo "a\\b"`, want: []string{"echo", `a\b`}},
		{name: "other backslash in double quotes kept", in: `echo "a\nb\$"`, want: []string{"echo", `a\nb\$`}},
		{name: "single quote in double quotes", in: `echo "it's"`, want: []string{"echo", "it's"}},
		{name: "double quote in single quotes", in: `echo 'say "x"'`, want: []string{"echo", `say "x"`}},
		{name: "backslash escapes blank", in: `a\ b c`, want: []string{"a b", "c"}},
		{name: "backslash escapes quote", in: `it\'s \"x\"`, want: []string{"it's", `"x"`}},
		{name: "backslash escapes backslash", in: `a\\b`, want: []string{`a\b`}},
		{name: "line continuation", in: "a \\\nb", want: []string{"a", "b"}},
		{name: "line continuation inside word", in: "ab\\\ncd", want: []string{"abcd"}},
		{name: "adjacent quotes join", in: `"a"'b'c`, want: []string{"abc"}},
		{name: "empty double quotes", in: `a "" b`, want: []string{"a", "", "b"}},
		{name: "empty single quotes", in: `a '' b`, want: []string{"a", "", "b"}},
		{name: "no expansion", in: "echo $HOME `id` ~ *.py a;b a|b a&&b", want: []string{"echo", "$HOME", "`id`", "~", "*.py", "a;b", "a|b", "a&&b"}},
		{name: "unicode", in: `python -c 'print("héllo ✓")'`, want: []string{"python", "-c", `print("héllo ✓")`}},
		{name: "backslash before multibyte", in: `\é`, want: []string{"é"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := SplitCommand(tt.in)
			if err != nil {
				t.Fatalf("SplitCommand(%q): got error %v, want none", tt.in, err)
			}
			if !slices.Equal(got, tt.want) || (got == nil) != (tt.want == nil) {
				t.Errorf("SplitCommand(%q): got %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestSplitCommandErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want error
	}{
		{name: "unterminated single quote", in: "echo 'sekrit-value", want: ErrUnterminatedSingleQuote},
		{name: "unterminated double quote", in: `echo "sekrit-value`, want: ErrUnterminatedDoubleQuote},
		{name: "double quote ending in escaped quote", in: `echo "sekrit-value\"`, want: ErrUnterminatedDoubleQuote},
		{name: "single quote inside unterminated double", in: `"sekrit-value'`, want: ErrUnterminatedDoubleQuote},
		{name: "trailing backslash", in: `echo sekrit-value\`, want: ErrTrailingBackslash},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := SplitCommand(tt.in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("SplitCommand(%q): got (%q, %v), want error %v", tt.in, got, err, tt.want)
			}
			if strings.Contains(err.Error(), "sekrit") {
				t.Errorf("error %q quotes the input", err)
			}
		})
	}
}

func TestCommandStringRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cmd  Command
		want string
	}{
		{name: "nil", cmd: nil, want: ""},
		{name: "plain", cmd: Command{"uvicorn", "app:app", "--port=8000"}, want: "uvicorn app:app --port=8000"},
		{name: "blank inside", cmd: Command{"echo", "a b"}, want: "echo 'a b'"},
		{name: "empty word", cmd: Command{"echo", ""}, want: "echo ''"},
		{name: "single quote", cmd: Command{"echo", "it's"}, want: `echo 'it'\''s'`},
		{name: "specials", cmd: Command{"sh", "-c", `echo "$HOME" \ ; *`}, want: `sh -c 'echo "$HOME" \ ; *'`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.cmd.String(); got != tt.want {
				t.Errorf("String(): got %q, want %q", got, tt.want)
			}
			back, err := SplitCommand(tt.cmd.String())
			if err != nil {
				t.Fatalf("SplitCommand(String()): got error %v", err)
			}
			if !slices.Equal(back, tt.cmd) {
				t.Errorf("SplitCommand(String()): got %q, want %q", back, tt.cmd)
			}
		})
	}
}

func TestCommandUnmarshalText(t *testing.T) {
	t.Parallel()
	var c Command
	if err := c.UnmarshalText([]byte(`python -m "my app"`)); err != nil {
		t.Fatalf("UnmarshalText: got error %v", err)
	}
	if want := (Command{"python", "-m", "my app"}); !slices.Equal(c, want) {
		t.Errorf("got %q, want %q", c, want)
	}
	if err := c.UnmarshalText([]byte(`python '`)); !errors.Is(err, ErrUnterminatedSingleQuote) {
		t.Errorf("UnmarshalText(unterminated): got %v, want %v", err, ErrUnterminatedSingleQuote)
	}
}

func FuzzSplitCommand(f *testing.F) {
	for _, s := range []string{"", "a b", `'a b' "c\"d" e\ f`, "it's", `"\\"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		words, err := SplitCommand(s)
		if err != nil {
			return
		}
		back, err := SplitCommand(Command(words).String())
		if err != nil {
			t.Fatalf("SplitCommand(String()): got error %v", err)
		}
		if !slices.Equal(back, words) {
			t.Errorf("round trip: got %q, want %q", back, words)
		}
	})
}
