package stunturncli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/siplab/siplab/internal/cli/climain"
	"github.com/siplab/siplab/stunturn"
)

// status prints what the daemon did, from its control socket.
func status(ctx context.Context, args []string, out io.Writer) error {
	sock, asJSON, err := clientFlags("status", args, out)
	if err != nil {
		return err
	}
	err = climain.Show(ctx, sock, http.MethodGet, "/status", nil, asJSON, out, func(out io.Writer, st stunturn.Status) {
		st.WriteText(out, time.Now())
	})
	if err != nil {
		return fmt.Errorf("stunturn: status: %w", err)
	}
	return nil
}

// reset asks the daemon to forget what it saw (stunturn.Server.Reset).
func reset(ctx context.Context, args []string, out io.Writer) error {
	sock, asJSON, err := clientFlags("reset", args, out)
	if err != nil {
		return err
	}
	err = climain.Show(ctx, sock, http.MethodPost, "/reset", nil, asJSON, out, func(out io.Writer, res stunturn.ResetResult) {
		fmt.Fprintf(out, "forgot %d binding client(s) and %d ended allocation(s)\n", res.Bindings, res.EndedAllocations)
	})
	if err != nil {
		return fmt.Errorf("stunturn: reset: %w", err)
	}
	return nil
}

// clientFlags parses a verb's -ctl and -json; it takes no arguments.
func clientFlags(name string, args []string, out io.Writer) (sock string, asJSON bool, err error) {
	sock, asJSON, pos, err := climain.ClientFlags("stunturn "+name, "", defaultCtl, args, out)
	if errors.Is(err, flag.ErrHelp) {
		return "", false, err
	}
	if err != nil {
		return "", false, fmt.Errorf("%w: %v", errUsage, err)
	}
	if len(pos) > 0 {
		return "", false, fmt.Errorf("%w: unexpected arguments %q", errUsage, pos)
	}
	return sock, asJSON, nil
}
