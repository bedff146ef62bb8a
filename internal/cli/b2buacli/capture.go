package b2buacli

// The PBX records its core side (SIP from and to the proxy: pbx/core) and,
// when its RTP relay has its own address on the internet, that side too
// (pbx/internet), with the flags every lab daemon shares (internal/capflags).

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/siplab/siplab/internal/capflags"
	"github.com/siplab/siplab/trace/capture"
)

func startCapture(ctx context.Context, f *capflags.Flags, sipAddr, mediaIP string, log *slog.Logger) (stop func(), err error) {
	stop = func() {}
	if !f.Enabled() {
		return stop, nil
	}
	core, err := capflags.SideAt("core", sipAddr)
	if err != nil {
		return stop, fmt.Errorf("%w: %w", errUsage, err)
	}
	sides := []capture.Iface{core}
	if mediaIP != "" {
		media, err := capflags.SideAt("internet", mediaIP)
		if err != nil {
			return stop, fmt.Errorf("%w: %w", errUsage, err)
		}
		// A relay on the SIP address is the same interface: one side.
		if media.Match != core.Match {
			sides = append(sides, media)
		}
	}
	stop, err = f.Start(ctx, sides, log)
	if errors.Is(err, capflags.ErrUsage) {
		err = fmt.Errorf("%w: %w", errUsage, err)
	}
	return stop, err
}
