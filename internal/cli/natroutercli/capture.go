package natroutercli

// Capture of both router sides into pcapng and optional HEP export, through
// the flags every lab daemon shares (internal/capflags). Kept in its own
// file so run.go only registers the flags and calls start.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"

	"github.com/siplab/siplab/internal/capflags"
	"github.com/siplab/siplab/natrouter"
	"github.com/siplab/siplab/trace/capture"
)

type captureFlags struct{ *capflags.Flags }

func addCaptureFlags(fs *flag.FlagSet) *captureFlags {
	return &captureFlags{capflags.Add(fs, "both router sides")}
}

// start begins capturing the router's LAN and WAN when -capture-dir or -hep
// is set. The returned stop waits for the file to be flushed and closed.
func (f *captureFlags) start(ctx context.Context, lan, wan natrouter.Interface, log *slog.Logger) (stop func(), err error) {
	stop, err = f.Start(ctx, []capture.Iface{
		// The router's own addresses (host bits set): exactly its sides.
		{Name: "lan", Match: lan.Address},
		{Name: "wan", Match: wan.Address},
	}, log)
	if errors.Is(err, capflags.ErrUsage) {
		err = fmt.Errorf("%w: %w", errUsage, err)
	}
	return stop, err
}
