package supervise

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"unicode/utf8"
)

// relayLines reads r until EOF or a read error and logs one record per line
// through logger: level Info, message "upstream", attributes source=upstream,
// stream (for example "stdout"), line (the text without its "\n" or "\r\n")
// and truncated=true when the line was cut.
//
// Memory is bounded by maxLine: a line longer than maxLine bytes is cut to at
// most maxLine bytes (at a UTF-8 boundary when the text is valid UTF-8), logged
// once, and the rest of it is read and discarded up to the next newline, so a
// child that writes megabytes without a newline is never held whole. A final
// line without a trailing newline is still logged. Empty lines are skipped:
// a record without text carries no information.
//
// Values of secret-looking query parameters (token=, api_key=, ...) are masked: see
// maskQuerySecrets.
//
// The child's text goes only into the "line" attribute, never into the
// message: the logger's handler (in hfgate, the gateway's cleaning handler)
// strips control characters from attribute values and masks known secrets, and
// a constant message keeps the log greppable.
//
// relayLines returns nil at EOF and the read error otherwise (for example
// os.ErrDeadlineExceeded when the supervisor stops waiting for the pipe).
func relayLines(ctx context.Context, r io.Reader, logger *slog.Logger, stream string, maxLine int) error {
	// Two spare bytes so that a line of exactly maxLine bytes plus "\r\n" fits.
	br := bufio.NewReaderSize(r, maxLine+2)
	for {
		frag, err := br.ReadSlice('\n')
		switch {
		case err == nil:
			logUpstreamLine(ctx, logger, stream, frag, maxLine)
		case errors.Is(err, bufio.ErrBufferFull):
			// frag fills the buffer and holds no newline: log its head, then
			// drop the rest of the line without keeping it.
			logUpstreamLine(ctx, logger, stream, frag, maxLine)
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
			if err != nil {
				return eofIsNil(err)
			}
		default:
			// EOF or a read error; frag is the unterminated tail, if any.
			if len(frag) > 0 {
				logUpstreamLine(ctx, logger, stream, frag, maxLine)
			}
			return eofIsNil(err)
		}
	}
}

func eofIsNil(err error) error {
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// logUpstreamLine logs one line; raw may end in "\n" or "\r\n" and may be longer
// than maxLine.
func logUpstreamLine(ctx context.Context, logger *slog.Logger, stream string, raw []byte, maxLine int) {
	line := raw
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
	}
	truncated := len(line) > maxLine
	if truncated {
		line = cutUTF8(line, maxLine)
	}
	line = maskQuerySecrets(line)
	if len(line) == 0 && !truncated {
		return
	}
	attrs := []slog.Attr{
		slog.String("source", "upstream"),
		slog.String("stream", stream),
		slog.String("line", string(line)),
	}
	if truncated {
		attrs = append(attrs, slog.Bool("truncated", true))
	}
	logger.LogAttrs(ctx, slog.LevelInfo, "upstream", attrs...)
}

// cutUTF8 returns b cut to at most n bytes. When the cut would split a UTF-8
// sequence, it backs off to the start of that rune so the result stays valid
// UTF-8 (if b was); bytes that are not UTF-8 are cut at n exactly.
func cutUTF8(b []byte, n int) []byte {
	if n >= len(b) {
		return b
	}
	if n <= 0 {
		return b[:0]
	}
	for i := n; i > 0 && i > n-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			return b[:i]
		}
	}
	return b[:n]
}
