package proxycli

// The proxy records the platform's edge: its internet side (what phones and
// routers send to 203.0.113.10) and its core side (what it forwards to the
// registrar and the PBX), as proxy/internet and proxy/core, with the flags
// every lab daemon shares (internal/capflags).

import (
	"context"
	"log/slog"

	"github.com/siplab/siplab/internal/capflags"
	"github.com/siplab/siplab/trace/capture"
)

func startCapture(ctx context.Context, f *capflags.Flags, sipAddr, coreAddr string, log *slog.Logger) (stop func(), err error) {
	if !f.Enabled() {
		return func() {}, nil
	}
	var sides []capture.Iface
	for _, s := range []struct{ name, addr string }{{"internet", sipAddr}, {"core", coreAddr}} {
		if s.addr == "" {
			continue
		}
		side, err := capflags.SideAt(s.name, s.addr)
		if err != nil {
			return func() {}, err
		}
		sides = append(sides, side)
	}
	return f.Start(ctx, sides, log)
}
