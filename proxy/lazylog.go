package proxy

import (
	"context"
	"log/slog"
	"slices"
)

// lazyAttrs is a log handler whose With attributes are only formatted when
// a record is actually written. The proxy gives every request a logger with
// its Call-ID, method and source; slog's text handler formats those at
// With time, which cost a few percent of a forward at -log-level warn,
// where nearly nothing is written (bench/README.md, profile).
type lazyAttrs struct {
	h     slog.Handler
	attrs []slog.Attr
}

func (l *lazyAttrs) Enabled(ctx context.Context, lvl slog.Level) bool { return l.h.Enabled(ctx, lvl) }

func (l *lazyAttrs) Handle(ctx context.Context, r slog.Record) error {
	if len(l.attrs) == 0 {
		return l.h.Handle(ctx, r)
	}
	// The With attributes go first, as slog would print them.
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	out.AddAttrs(l.attrs...)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(a)
		return true
	})
	return l.h.Handle(ctx, out)
}

func (l *lazyAttrs) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &lazyAttrs{h: l.h, attrs: append(slices.Clip(l.attrs), attrs...)}
}

func (l *lazyAttrs) WithGroup(name string) slog.Handler {
	return &lazyAttrs{h: l.h.WithAttrs(l.attrs).WithGroup(name)}
}
