// Package natroutercli holds the main of the natrouter command (cmd/natrouter, and siplabd when
// invoked as natrouter): the lab's site NAT router daemon and its client.
//
//	natrouter run -lan 192.168.1.1/24 -wan 203.0.113.2/24 [-preset port-restricted] [-pinhole 120s]
//	natrouter status [-json]
//	natrouter set preset symmetric | set pinhole 20s | set alg off|kernel|broken:<fault>+...
//	natrouter alg
//	natrouter flush
//	natrouter reset         (startup preset, pinhole and ALG; flushes)
//	natrouter presets
//	natrouter probe udp -to 203.0.113.99:7 [-from 192.168.1.60:4000] [-gateway 192.168.1.1]
//	natrouter probe echo -listen 203.0.113.99:7 [-alt-port 8]
//	natrouter probe sip -to 203.0.113.10:5060 [-size 2000] [-from 192.168.1.60:5062] [-gateway 192.168.1.1]
//
// The image is FROM scratch with no shell, so every tool is a subcommand:
// docker exec siplab_router-a_1 /natrouter status
package natroutercli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/siplab/siplab/internal/cli/climain"
)

const usage = `usage: natrouter <command> [flags] [args]

commands:
  run       run the NAT router daemon
  status    show settings and current mappings (-json for scripts)
  set       set preset <name> | pinhole <duration> | alg <mode>   (live, flushes mappings)
            alg modes: off | kernel | broken | broken:none | broken:<fault>+<fault>...
  alg       list SIP ALG modes and the broken ALG's faults (docs/alg/)
  flush     forget all mappings
  reset     the startup preset, pinhole and ALG (each value also takes "default"); flushes
  presets   list NAT presets and ALG modes
  probe     probe udp -to <addr:port> | probe echo -listen <addr:port>
            | probe sip -to <addr:port> [-size 2000]   (SIP OPTIONS through the router)

Run "natrouter <command> -h" for the command's flags.
`

// errUsage marks errors caused by the command line (exit code 2).
var errUsage = errors.New("usage")

// Main runs natrouter with os.Args, exactly as the standalone binary does; it
// exits the process on failure.
func Main() {
	climain.Run(climain.Rules{Name: "natrouter", Prefixed: "natrouter:", Code: climain.UsageExits2(errUsage)}, func(ctx context.Context) error {
		return run(ctx, os.Args[1:], os.Stdout)
	})
}

func run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return fmt.Errorf("%w: no command", errUsage)
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "run":
		return cmdRun(ctx, args)
	case "status":
		return cmdStatus(ctx, args, out)
	case "set":
		return cmdSet(ctx, args, out)
	case "flush":
		return cmdFlush(ctx, args, out)
	case "reset":
		return cmdReset(ctx, args, out)
	case "presets":
		return cmdPresets(out)
	case "alg":
		return cmdALG(args, out)
	case "probe":
		return cmdProbe(ctx, args, out)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(out, usage)
		return nil
	default:
		fmt.Fprint(os.Stderr, usage)
		return fmt.Errorf("%w: unknown command %q", errUsage, cmd)
	}
}

func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("natrouter "+name, flag.ContinueOnError)
	return fs
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	return nil
}

func writeJSON(out io.Writer, v any) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
