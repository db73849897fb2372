package config

import "strings"

// Command is a command line split into words: the program first, then its
// arguments. Its underlying type is []string, so it can be passed wherever a
// []string is expected (exec.Command(c[0], c[1:]...)).
type Command []string

// UnmarshalText splits text with [SplitCommand]. It lets env parse
// UPSTREAM_CMD into a Command.
func (c *Command) UnmarshalText(text []byte) error {
	words, err := SplitCommand(string(text))
	if err != nil {
		return err
	}
	*c = words
	return nil
}

// String joins the words back into one line, single-quoting those that a
// shell (or [SplitCommand]) would otherwise split or interpret, so that
// SplitCommand(c.String()) gives c again. It is meant for logs and
// messages; an empty Command gives "".
func (c Command) String() string {
	quoted := make([]string, len(c))
	for i, w := range c {
		quoted[i] = quoteWord(w)
	}
	return strings.Join(quoted, " ")
}

// Errors returned by [SplitCommand]. Their text never includes the input,
// which may hold a secret.
var (
	ErrUnterminatedSingleQuote error = problem("unterminated single quote")
	ErrUnterminatedDoubleQuote error = problem("unterminated double quote")
	ErrTrailingBackslash       error = problem("ends with a lone backslash")
)

// SplitCommand splits a command line into words the way a POSIX shell
// would, minus every kind of expansion:
//
//   - Spaces, tabs and newlines separate words; runs of them count once.
//   - Single quotes keep everything up to the next single quote literally.
//   - Double quotes keep everything literally except \" and \\, which
//     stand for " and \; any other backslash inside them is kept as is.
//   - Outside quotes a backslash takes the next character literally, and a
//     backslash before a newline joins the lines.
//   - Quotes next to other text join it ("a"'b'c is one word, abc), and a
//     pair of quotes with nothing between them is an empty word.
//
// $, `, ~, *, ?, ;, |, & and the like have no special meaning: no variable,
// command or glob expansion happens and no second shell is started. An
// unterminated quote or a lone trailing backslash is an error. An input
// with no words gives a nil slice.
func SplitCommand(s string) ([]string, error) {
	var (
		words  []string
		word   strings.Builder
		inWord bool // a word has started, even if it is still empty ("")
	)
	endWord := func() {
		if inWord {
			words = append(words, word.String())
			word.Reset()
			inWord = false
		}
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch ch {
		case ' ', '\t', '\n', '\r':
			endWord()
		case '\\':
			if i+1 >= len(s) {
				return nil, ErrTrailingBackslash
			}
			i++
			if s[i] == '\n' {
				continue // line continuation: the pair disappears
			}
			inWord = true
			word.WriteByte(s[i])
		case '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, ErrUnterminatedSingleQuote
			}
			inWord = true
			word.WriteString(s[i+1 : i+1+end])
			i += end + 1
		case '"':
			inWord = true
			closed := false
			for i++; i < len(s); i++ {
				c := s[i]
				if c == '"' {
					closed = true
					break
				}
				if c == '\\' && i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\') {
					i++
					c = s[i]
				}
				word.WriteByte(c)
			}
			if !closed {
				return nil, ErrUnterminatedDoubleQuote
			}
		default:
			inWord = true
			word.WriteByte(ch)
		}
	}
	endWord()
	return words, nil
}

// quoteWord returns w unchanged when it holds only characters that need no
// quoting, and otherwise w in single quotes. A single quote inside w is
// written as: close quote, backslash, quote, open quote.
func quoteWord(w string) string {
	if w == "" {
		return "''"
	}
	safe := true
	for i := 0; i < len(w); i++ {
		if !isSafeWordByte(w[i]) {
			safe = false
			break
		}
	}
	if safe {
		return w
	}
	return "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
}

func isSafeWordByte(b byte) bool {
	switch {
	case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		return true
	}
	return strings.IndexByte("-_./:,=+@%", b) >= 0
}
