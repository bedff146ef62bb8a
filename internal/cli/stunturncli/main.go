// Package stunturncli holds the main of the stunturn command (cmd/stunturn,
// and siplabd when invoked as stunturn): the lab's STUN/TURN server on the
// simulated internet, and its status client.
//
//	stunturn run -listen 203.0.113.20:3478 -realm siplab.test \
//	    -users /etc/siplab/users.conf -relay-ip 203.0.113.20 -relay-ports 40000-40999
//	stunturn status [-json]
//
// See stunturn/README.md.
package stunturncli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

const usage = `usage: stunturn <command> [flags]

commands:
  run       serve STUN Binding and TURN (UDP) with long-term credentials
  status    what the server did: Binding requests with the mapped address
            each client was told, allocations with their relayed address,
            permissions and bytes relayed each way (-json for scripts)

Run "stunturn <command> -h" for the command's flags.
`

// errUsage marks errors caused by the command line (exit code 2).
var errUsage = errors.New("usage")

// Main runs stunturn with os.Args, exactly as the standalone binary does;
// it exits the process on failure.
func Main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := dispatch(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "stunturn") {
		msg = "stunturn: " + msg
	}
	fmt.Fprintln(os.Stderr, msg)
	if errors.Is(err, errUsage) {
		os.Exit(2)
	}
	os.Exit(1)
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
	case "-h", "-help", "--help", "help":
		fmt.Fprint(out, usage)
		return nil
	}
	fmt.Fprint(logOut, usage)
	return fmt.Errorf("%w: unknown command %q", errUsage, args[0])
}
