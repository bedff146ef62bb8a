// Package stunturncli holds the main of the stunturn command (cmd/stunturn,
// and siplabd when invoked as stunturn): the lab's STUN/TURN server on the
// simulated internet, and its status client.
//
//	stunturn run -listen 203.0.113.20:3478 -realm siplab.test \
//	    -users /etc/siplab/users.conf -relay-ip 203.0.113.20 -relay-ports 40000-40999
//	stunturn status [-json]
//	stunturn reset [-json]
//
// See stunturn/README.md.
package stunturncli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/siplab/siplab/internal/cli/climain"
)

const usage = `usage: stunturn <command> [flags]

commands:
  run       serve STUN Binding and TURN (UDP) with long-term credentials
  status    what the server did: Binding requests with the mapped address
            each client was told, allocations with their relayed address,
            permissions and bytes relayed each way (-json for scripts)
  reset     forget Binding clients, ended allocations and counters (lab reset)

Run "stunturn <command> -h" for the command's flags.
`

// errUsage marks errors caused by the command line (exit code 2).
var errUsage = errors.New("usage")

// Main runs stunturn with os.Args, exactly as the standalone binary does;
// it exits the process on failure.
func Main() {
	climain.Run(climain.Rules{Name: "stunturn", Prefixed: "stunturn", Code: climain.UsageExits2(errUsage)}, func(ctx context.Context) error {
		return dispatch(ctx, os.Args[1:], os.Stdout, os.Stderr)
	})
}

func dispatch(ctx context.Context, args []string, out, logOut io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(logOut, usage)
		return fmt.Errorf("%w: no command", errUsage)
	}
	switch args[0] {
	case "run":
		return runDaemon(ctx, args[1:], logOut, nil)
	case "status":
		return status(ctx, args[1:], out)
	case "reset":
		return reset(ctx, args[1:], out)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(out, usage)
		return nil
	}
	fmt.Fprint(logOut, usage)
	return fmt.Errorf("%w: unknown command %q", errUsage, args[0])
}
