package logging

import (
	"log/slog"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// renderText renders r's message and attributes as tint v1.2.1 (NoColor, no ReplaceAttr)
// writes them after the level: "msg k=v k2=v2". tint writes a record's message as it is, so a
// record whose message is this rendering and which has no attributes comes out byte for byte
// as r would. The point is the cost: tint passes every key and every string value through
// cut(), which strips ANSI sequences by rebuilding the string rune by rune (a []rune and a new
// string, whether or not there is anything to strip): most of an access line's allocations
// (docs/performance.md, "The access log"). The cleaning step has already removed every escape
// sequence from string values, and keys are constants, so renderText skips cut and allocates
// only the message.
//
// It reports false, and the record goes to tint as it is, for anything it does not render
// exactly as tint does: attributes that are neither strings, numbers, booleans nor durations
// (groups, times, errors and other values), and strings where cut would change something: one
// with an ESC byte, or with invalid UTF-8 or U+FFFD, where cut stops. (tint is the stack's
// text format and stays unpatched; TestRenderTextMatchesTint and FuzzRenderText hold
// renderText to its output.)
func renderText(r slog.Record) (string, bool) {
	if r.NumAttrs() == 0 {
		return "", false // nothing to gain
	}
	var arr [512]byte
	b := append(arr[:0], r.Message...)
	ok := true
	r.Attrs(func(a slog.Attr) bool {
		b = append(b, ' ')
		if b, ok = appendTextString(b, a.Key); !ok {
			return false
		}
		b = append(b, '=')
		b, ok = appendTextValue(b, a.Value)
		return ok
	})
	if !ok {
		return "", false
	}
	return string(b), true
}

// appendTextValue appends v as tint's appendValue does with quote set, for the kinds it
// renders.
func appendTextValue(b []byte, v slog.Value) ([]byte, bool) {
	switch v.Kind() {
	case slog.KindString:
		return appendTextString(b, v.String())
	case slog.KindInt64:
		return strconv.AppendInt(b, v.Int64(), 10), true
	case slog.KindUint64:
		return strconv.AppendUint(b, v.Uint64(), 10), true
	case slog.KindFloat64:
		return strconv.AppendFloat(b, v.Float64(), 'g', -1, 64), true
	case slog.KindBool:
		return strconv.AppendBool(b, v.Bool()), true
	case slog.KindDuration:
		return appendTextString(b, v.Duration().String())
	}
	return b, false
}

// appendTextString appends s as tint's appendString does (NoColor, quote set) when cut would
// return s unchanged: quoted when slog's text handler would quote it, else as it is. It
// reports false, appending nothing, when cut would change s.
func appendTextString(b []byte, s string) ([]byte, bool) {
	quote := len(s) == 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c == 0x1b {
				return b, false // cut strips from here to the next letter
			}
			// slog's needsQuoting: space, '=', and what a JSON string escapes (except '\\').
			if c < 0x20 || c == ' ' || c == '=' || c == '"' {
				quote = true
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError {
			return b, false // cut stops here, dropping the rest
		}
		if unicode.IsSpace(r) || !unicode.IsPrint(r) {
			quote = true
		}
		i += size
	}
	if quote {
		return strconv.AppendQuote(b, s), true
	}
	return append(b, s...), true
}
