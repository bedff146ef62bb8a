package uaclientcli

// A phone records its own LAN side (alice/lan): what it sent and received
// before any router touched it, with the flags every lab daemon shares
// (internal/capflags).

import (
	"context"
	"log/slog"
	"net/netip"

	"github.com/siplab/siplab/internal/capflags"
	"github.com/siplab/siplab/trace/capture"
)

// startCapture selects the side by the phone's bound SIP address (after
// uaclient.New, so "-sip :5060" has been resolved to the interface towards
// the proxy).
func startCapture(ctx context.Context, f *capflags.Flags, sip netip.AddrPort, log *slog.Logger) (stop func(), err error) {
	if !f.Enabled() {
		return func() {}, nil
	}
	side, err := capflags.SideAt("lan", sip.Addr().String())
	if err != nil {
		return func() {}, err
	}
	return f.Start(ctx, []capture.Iface{side}, log)
}
