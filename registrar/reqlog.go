package registrar

import (
	"context"
	"log/slog"
)

// reqLog is a REGISTER's logger: its call_id and aor are added to a
// record only when one is written. slog's With would format them into a
// new handler for every request, thousands a second, whatever the level.
type reqLog struct {
	l           *slog.Logger
	callID, aor string
}

func (g reqLog) Log(ctx context.Context, level slog.Level, msg string, args ...any) {
	if !g.l.Enabled(ctx, level) {
		return
	}
	attrs := make([]any, 0, 4+len(args))
	if g.callID != "" {
		attrs = append(attrs, "call_id", g.callID)
	}
	if g.aor != "" {
		attrs = append(attrs, "aor", g.aor)
	}
	g.l.Log(ctx, level, msg, append(attrs, args...)...)
}

func (g reqLog) Debug(msg string, args ...any) {
	g.Log(context.Background(), slog.LevelDebug, msg, args...)
}
func (g reqLog) Info(msg string, args ...any) {
	g.Log(context.Background(), slog.LevelInfo, msg, args...)
}
func (g reqLog) Warn(msg string, args ...any) {
	g.Log(context.Background(), slog.LevelWarn, msg, args...)
}
func (g reqLog) Error(msg string, args ...any) {
	g.Log(context.Background(), slog.LevelError, msg, args...)
}
