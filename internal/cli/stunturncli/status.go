package stunturncli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/siplab/siplab/ctl"
	"github.com/siplab/siplab/stunturn"
)

// status prints what the daemon did, from its control socket.
func status(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("stunturn status", flag.ContinueOnError)
	fs.SetOutput(out)
	sock := fs.String("ctl", defaultCtl, "the daemon's control socket")
	asJSON := fs.Bool("json", false, "JSON for scripts")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	var st stunturn.Status
	if err := (ctl.Client{Socket: *sock}).Get(ctx, "/status", &st); err != nil {
		return fmt.Errorf("stunturn: status: %w", err)
	}
	if *asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	st.WriteText(out, time.Now())
	return nil
}

// reset asks the daemon to forget what it saw (stunturn.Server.Reset).
func reset(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("stunturn reset", flag.ContinueOnError)
	fs.SetOutput(out)
	sock := fs.String("ctl", defaultCtl, "the daemon's control socket")
	asJSON := fs.Bool("json", false, "JSON for scripts")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	var res stunturn.ResetResult
	if err := (ctl.Client{Socket: *sock}).Post(ctx, "/reset", nil, &res); err != nil {
		return fmt.Errorf("stunturn: reset: %w", err)
	}
	if *asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	fmt.Fprintf(out, "forgot %d binding client(s) and %d ended allocation(s)\n", res.Bindings, res.EndedAllocations)
	return nil
}
