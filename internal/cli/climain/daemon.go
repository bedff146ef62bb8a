package climain

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/siplab/siplab/internal/ctl"
)

// EnvOr is the environment variable name, or def when it is unset or empty
// (a daemon's control socket path: B2BUA_CTL, SBC_CTL, ...).
func EnvOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// NewLogger is the daemon's text logger at -log-level level (debug, info,
// warn or error).
func NewLogger(level string, w io.Writer) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("-log-level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// UsageLogger is NewLogger for a daemon whose bad -log-level is a usage
// error: the error wraps usage (the daemon's, exit code 2).
func UsageLogger(level string, w io.Writer, usage error) (*slog.Logger, error) {
	log, err := NewLogger(level, w)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", usage, err)
	}
	return log, nil
}

// ServeCtl serves h on the control socket ln until ctx ends. The returned
// wait, called after ctx is cancelled, gives the server 3s to finish and
// logs how it ended.
func ServeCtl(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger) (wait func()) {
	done := make(chan error, 1)
	go func() { done <- ctl.ServeListener(ctx, ln, h) }()
	return func() {
		select {
		case err := <-done:
			if err != nil {
				log.Warn("control socket", "err", err)
			}
		case <-time.After(3 * time.Second):
		}
	}
}

// CallDaemon is a daemon that holds calls and ends them on the way out:
// the PBX, the SBC.
type CallDaemon interface {
	Start(ctx context.Context) error
	Handler() http.Handler
	// Shutdown hangs up every call, within ctx.
	Shutdown(ctx context.Context)
	Close() error
}

// ServeCalls runs d until ctx ends, with its control API on ln (which it
// closes when d cannot start). capture, called before d serves, starts
// the daemon's packet capture; it runs on a context that outlives ctx
// until d has hung up its calls, so the shutdown's BYEs are recorded too.
func ServeCalls(ctx context.Context, d CallDaemon, ln net.Listener, capture func(context.Context) (stop func(), err error), log *slog.Logger) error {
	defer d.Close()
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stopCapture, err := capture(runCtx)
	if err != nil {
		ln.Close()
		return err
	}
	defer stopCapture()
	if err := d.Start(runCtx); err != nil {
		ln.Close()
		return err
	}
	wait := ServeCtl(runCtx, ln, d.Handler(), log)
	<-ctx.Done()
	log.Info("shutting down: hanging up calls")
	sctx, scancel := context.WithTimeout(context.Background(), 3*time.Second)
	d.Shutdown(sctx)
	scancel()
	cancel()
	wait()
	return nil
}
