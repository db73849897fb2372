package logging

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/lmittmann/tint"
)

// Options configures New.
type Options struct {
	// Format is "text" (tint, no colour, RFC 3339 times) or "json" (one JSON object a line).
	// Zero value: "text".
	Format string
	// Level is the minimum level logged. Zero value: slog.LevelInfo.
	Level slog.Level
	// Secrets are values that must never reach the log; every exact occurrence in the message or
	// in a string attribute is replaced by "***". Zero value: nothing is masked.
	Secrets []string
	// Droppable picks, among info records, the ones a Writer drops first when its reader
	// stalls (the access lines; whoever installs the access log knows its records). Warnings
	// and errors are never picked; debug records always are. Zero value: debug records only.
	Droppable func(slog.Record) bool
}

// New returns the one logger hfgate writes through. Whatever the format, every record
// passes a cleaning step first: ANSI escape sequences and other control characters are removed
// from the message and from every string (and error) attribute, and secret values are masked.
// The cleaning is what lets foreign text (child output, upstream error strings) be logged as an
// attribute without garbling the Hugging Face log console or leaking a key.
//
// When w is a *Writer (as main wires it), the logger tells it which lines it drops first when
// the reader stalls (see Options.Droppable), and reports the writer's drops.
func New(w io.Writer, opts Options) *slog.Logger {
	h := newCleanHandler(newFormatHandler(w, opts), opts.Secrets)
	h.droppable = opts.Droppable
	h.render = opts.Format != "json"
	lw, buffered := w.(*Writer)
	if !buffered {
		return slog.New(h)
	}
	h.access = newFormatHandler(accessLines{lw}, opts)
	logger := slog.New(h)
	lw.attach(logger)
	return logger
}

// newFormatHandler is the handler that formats records for w: tint's text (colourless) or
// slog's JSON.
func newFormatHandler(w io.Writer, opts Options) slog.Handler {
	if opts.Format == "json" {
		return slog.NewJSONHandler(w, &slog.HandlerOptions{Level: opts.Level})
	}
	return tint.NewTextHandler(w, &tint.Options{Level: opts.Level, TimeFormat: time.RFC3339, NoColor: true})
}

// dropsFirst reports whether r is a line the Writer may drop first: a debug record, or an info
// record that droppable picks (5xx access lines are warnings or errors and are kept like them).
func dropsFirst(r slog.Record, droppable func(slog.Record) bool) bool {
	return r.Level < slog.LevelInfo || (r.Level < slog.LevelWarn && droppable != nil && droppable(r))
}

// cleanHandler is a slog.Handler that sanitises records before passing them on.
type cleanHandler struct {
	next    slog.Handler      // every record that is not an access line
	access  slog.Handler      // access lines: next, or the same format on the Writer's droppable side
	secrets []string          // values to mask, longest first so a secret containing another is masked whole
	mask    *strings.Replacer // nil when there are no secrets
	// droppable is Options.Droppable: it picks the info records that go to access.
	droppable func(slog.Record) bool
	// render is set for tint's text format while no WithAttrs or WithGroup was applied: the
	// attributes are then rendered into the message, in tint's own format (renderText).
	render bool
}

func newCleanHandler(next slog.Handler, secrets []string) *cleanHandler {
	h := &cleanHandler{next: next, access: next}
	var pairs []string
	for _, s := range secrets {
		if s == "" {
			continue
		}
		h.secrets = append(h.secrets, s)
		pairs = append(pairs, s, "***")
	}
	if len(pairs) > 0 {
		h.mask = strings.NewReplacer(pairs...)
	}
	return h
}

func (h *cleanHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h *cleanHandler) Handle(ctx context.Context, r slog.Record) error {
	next := h.next
	if h.access != h.next && dropsFirst(r, h.droppable) {
		next = h.access
	}
	if h.dirty(r) {
		out := slog.NewRecord(r.Time, r.Level, h.cleanMessage(r.Message), r.PC)
		r.Attrs(func(a slog.Attr) bool {
			out.AddAttrs(h.cleanAttr(a))
			return true
		})
		r = out
	}
	// The common case (an access line) had nothing to clean and is passed on uncopied, or
	// rendered.
	if h.render {
		if msg, ok := renderText(r); ok {
			r = slog.NewRecord(r.Time, r.Level, msg, r.PC)
		}
	}
	return next.Handle(ctx, r)
}

// dirty reports whether clean would change the record's message or any attribute.
func (h *cleanHandler) dirty(r slog.Record) bool {
	if h.cleanMessage(r.Message) != r.Message {
		return true
	}
	dirty := false
	r.Attrs(func(a slog.Attr) bool {
		dirty = h.attrDirty(a)
		return !dirty
	})
	return dirty
}

func (h *cleanHandler) attrDirty(a slog.Attr) bool {
	switch a.Value.Kind() {
	case slog.KindString:
		s := a.Value.String()
		return h.clean(s) != s
	case slog.KindGroup:
		for _, g := range a.Value.Group() {
			if h.attrDirty(g) {
				return true
			}
		}
		return false
	case slog.KindAny, slog.KindLogValuer:
		return true // errors and values resolved later: let cleanAttr decide
	}
	return false
}

func (h *cleanHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	cleaned := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		cleaned[i] = h.cleanAttr(a)
	}
	return h.derive(func(next slog.Handler) slog.Handler { return next.WithAttrs(cleaned) })
}

func (h *cleanHandler) WithGroup(name string) slog.Handler {
	return h.derive(func(next slog.Handler) slog.Handler { return next.WithGroup(name) })
}

// derive applies with to both handlers. Rendering stops: tint writes the handler's own
// attributes after the message, and a group prefixes the record's keys.
func (h *cleanHandler) derive(with func(slog.Handler) slog.Handler) *cleanHandler {
	d := &cleanHandler{next: with(h.next), secrets: h.secrets, mask: h.mask, droppable: h.droppable}
	d.access = d.next
	if h.access != h.next {
		d.access = with(h.access)
	}
	return d
}

func (h *cleanHandler) cleanAttr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, h.clean(v.String()))
	case slog.KindGroup:
		group := v.Group()
		cleaned := make([]slog.Attr, len(group))
		for i, g := range group {
			cleaned[i] = h.cleanAttr(g)
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(cleaned...)}
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return slog.String(a.Key, h.clean(err.Error()))
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

// cleanMessage is clean for a record's message, which the text handler writes unquoted: a
// newline or tab there would start a forged line or field, so they become spaces. (Messages
// are constants in hfgate; foreign text goes into attributes, which both handlers quote.)
func (h *cleanHandler) cleanMessage(s string) string {
	if strings.ContainsAny(s, "\n\t") {
		s = strings.NewReplacer("\n", " ", "\t", " ").Replace(s)
	}
	return h.clean(s)
}

// clean strips terminal escape sequences and control characters (keeping tab and newline,
// which both handlers quote) and masks secrets. The common case, a short printable string with
// no secret in it, returns the input without allocating.
func (h *cleanHandler) clean(s string) string {
	if needsStrip(s) {
		s = stripControl(s)
	}
	if h.mask != nil {
		for _, secret := range h.secrets {
			if strings.Contains(s, secret) {
				return h.mask.Replace(s)
			}
		}
	}
	return s
}

func needsStrip(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\t' && c != '\n') || c == 0x7f {
			return true
		}
	}
	return false
}

// stripControl removes ANSI escape sequences (CSI "ESC [ ... final", OSC "ESC ] ... BEL|ST",
// and two-byte "ESC x") and any other C0 control character except tab and newline.
func stripControl(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == 0x1b:
			i = skipEscape(s, i)
		case (c < 0x20 && c != '\t' && c != '\n') || c == 0x7f:
			// dropped
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// skipEscape returns the index of the last byte of the escape sequence starting at s[i] == ESC.
func skipEscape(s string, i int) int {
	if i+1 >= len(s) {
		return i
	}
	switch s[i+1] {
	case '[': // CSI: parameters and intermediates, then one final byte in 0x40..0x7e.
		for j := i + 2; j < len(s); j++ {
			if s[j] >= 0x40 && s[j] <= 0x7e {
				return j
			}
		}
		return len(s) - 1
	case ']': // OSC: ends at BEL or ESC \.
		for j := i + 2; j < len(s); j++ {
			if s[j] == 0x07 {
				return j
			}
			if s[j] == 0x1b && j+1 < len(s) && s[j+1] == '\\' {
				return j + 1
			}
		}
		return len(s) - 1
	default: // Two-byte sequence such as ESC c.
		return i + 1
	}
}
