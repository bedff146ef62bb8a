package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/siplab/siplab/lab/labctl"
)

// resetCmd is `siplab reset`: the running lab back to a fresh `up`
// without restarting anything (labctl.Runner.Reset).
func resetCmd(ctx context.Context, r *labctl.Runner, args []string) error {
	fs := flag.NewFlagSet("reset", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "the report as JSON")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: reset takes no arguments", errUsage)
	}
	progress := func(line string) { fmt.Println("  " + line) }
	if *asJSON {
		progress = nil
	} else {
		fmt.Println("» resetting the lab (no container restarts)")
	}
	rep, err := r.Reset(ctx, progress)
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if eerr := enc.Encode(rep); eerr != nil {
			return eerr
		}
		return err
	}
	if err != nil {
		return err
	}
	fmt.Printf("» lab reset in %s: every setting at its startup value, one binding per phone (%d registered);\n"+
		"  ladder, doctor and explain read only what was captured after %s (captures/boundary)\n",
		rep.Took, len(rep.Registered), rep.Boundary.Format("15:04:05.000"))
	return nil
}
