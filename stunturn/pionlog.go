package stunturn

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// PionLogger adapts slog to pion's logging interface, so the TURN server's
// and client's own messages land in the daemon's log with its level and
// format instead of on stderr in pion's format. Pion's Info is chatty
// per-packet detail ("No Permission or Channel exists ...") that an intern
// wants only when debugging, so Info and below map to slog Debug.
func PionLogger(log *slog.Logger) logging.LoggerFactory {
	if log == nil {
		log = slog.Default()
	}
	return pionFactory{log: log}
}

type pionFactory struct{ log *slog.Logger }

func (f pionFactory) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{log: f.log.With("pion", scope)}
}

type pionLogger struct{ log *slog.Logger }

func (l pionLogger) emit(level slog.Level, msg string) {
	l.log.Log(context.Background(), level, msg)
}

func (l pionLogger) Trace(msg string) { l.emit(slog.LevelDebug-4, msg) }
func (l pionLogger) Tracef(format string, args ...any) {
	l.emit(slog.LevelDebug-4, fmt.Sprintf(format, args...))
}
func (l pionLogger) Debug(msg string) { l.emit(slog.LevelDebug, msg) }
func (l pionLogger) Debugf(format string, args ...any) {
	l.emit(slog.LevelDebug, fmt.Sprintf(format, args...))
}
func (l pionLogger) Info(msg string) { l.emit(slog.LevelDebug, msg) }
func (l pionLogger) Infof(format string, args ...any) {
	l.emit(slog.LevelDebug, fmt.Sprintf(format, args...))
}
func (l pionLogger) Warn(msg string) { l.emit(slog.LevelWarn, msg) }
func (l pionLogger) Warnf(format string, args ...any) {
	l.emit(slog.LevelWarn, fmt.Sprintf(format, args...))
}
func (l pionLogger) Error(msg string) { l.emit(slog.LevelError, msg) }
func (l pionLogger) Errorf(format string, args ...any) {
	l.emit(slog.LevelError, fmt.Sprintf(format, args...))
}
