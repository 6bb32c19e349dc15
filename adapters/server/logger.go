package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"golang.org/x/term"
)

// Log formats NewLogger understands.
const (
	// LogFormatAuto picks text for a terminal and JSON otherwise: a person
	// reads the first, a log pipeline parses the second.
	LogFormatAuto = "auto"
	// LogFormatJSON is one JSON object per line.
	LogFormatJSON = "json"
	// LogFormatText is slog's key=value text.
	LogFormatText = "text"
)

// ValidateLogFormat checks a format name before it reaches NewLogger, so a
// typo in configuration is an error at start and not a silent JSON log.
func ValidateLogFormat(format string) error {
	switch format {
	case LogFormatAuto, LogFormatJSON, LogFormatText:
		return nil
	}
	return fmt.Errorf("log format %q is not one of auto, json, text", format)
}

// NewLogger makes the process logger: JSON by default, text when format is
// "text", or "auto" and w is a terminal. An unknown format is treated as
// JSON (ValidateLogFormat catches it earlier). Every line logged with a
// request's context carries its request_id (see WithRequestIDs), so the
// adapters' own lines join up with the access log line.
func NewLogger(w io.Writer, level slog.Level, format string) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewJSONHandler(w, opts)
	if format == LogFormatText || (format == LogFormatAuto && isTerminal(w)) {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(WithRequestIDs(h))
}

// WithRequestIDs wraps a handler so that a record logged with a context
// that went through a Server gets a request_id attribute, unless it has one.
func WithRequestIDs(h slog.Handler) slog.Handler { return requestIDHandler{h} }

type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := RequestID(ctx); id != "" {
		has := false
		r.Attrs(func(a slog.Attr) bool {
			has = a.Key == "request_id"
			return !has
		})
		if !has {
			r = r.Clone()
			r.AddAttrs(slog.String("request_id", id))
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(attrs)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
