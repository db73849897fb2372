// Package logging is hfgate's log pipeline: the slog handler every record goes through (New:
// control characters stripped, secrets masked, tint's colourless text or JSON), the bounded
// writer between it and stderr (Writer: a console that stops reading never stalls a request;
// lines are dropped whole, the droppable ones first, and counted), and the text renderer that
// writes tint's exact format without its per-string cost (text.go).
//
// It knows nothing of the upstream or of HTTP: main builds the logger and hands it down, and
// tells it which records may be dropped first (Options.Droppable, the gateway's access lines).
package logging
