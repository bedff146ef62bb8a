package sbccli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/siplab/siplab/internal/capflags"
	"github.com/siplab/siplab/trace/capture"
)

// startCapture records the SBC's two sides, "internet" (its -sip address)
// and "core" (its -core-sip address), into <node>.pcapng: the difference
// between the two files is the topology-hiding proof. Nothing happens
// without -capture-dir or -hep.
func startCapture(ctx context.Context, f *capflags.Flags, sipAddr, coreAddr string, log *slog.Logger) (stop func(), err error) {
	if !f.Enabled() {
		return func() {}, nil
	}
	var sides []capture.Iface
	for _, s := range []struct{ name, addr string }{{"internet", sipAddr}, {"core", coreAddr}} {
		side, err := capflags.SideAt(s.name, s.addr)
		if err != nil {
			return func() {}, fmt.Errorf("%w: %w", errUsage, err)
		}
		sides = append(sides, side)
	}
	stop, err = f.Start(ctx, sides, log)
	if errors.Is(err, capflags.ErrUsage) {
		err = fmt.Errorf("%w: %w", errUsage, err)
	}
	return stop, err
}
