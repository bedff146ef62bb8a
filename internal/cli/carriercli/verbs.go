package carriercli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/siplab/siplab/carrier"
	"github.com/siplab/siplab/internal/cli/verbcli"
	"github.com/siplab/siplab/internal/ctl"
	"github.com/siplab/siplab/uaclient"
)

// verb is one control command: it checks its arguments, calls the carrier
// and returns what to print.
type verb = verbcli.Verb[*carrier.Control, opts]

type opts struct {
	timeout time.Duration
	from    string
	code    int
}

var verbs = map[string]verb{
	"call": {Args: "<+E.164> [-from +E.164]", Min: 1, Max: 1, Run: func(ctx context.Context, c *carrier.Control, a []string, o *opts) (any, error) {
		return c.Call(ctx, a[0], o.from)
	}},
	"answer": {Args: "[call]", Max: 1, Run: phoneVerb("answer")},
	"hangup": {Args: "[call]", Max: 1, Run: phoneVerb("hangup")},
	"reject": {Args: "[call] [code]", Max: 2, Run: func(ctx context.Context, c *carrier.Control, a []string, o *opts) (any, error) {
		in := uaclient.CallRequest{Code: o.code}
		for _, arg := range a {
			if n, err := strconv.Atoi(arg); err == nil && n >= 300 && n <= 699 {
				in.Code = n
			} else {
				in.Call = arg
			}
		}
		return c.Phone.Verb(ctx, "reject", in)
	}},
	"reset": {Run: func(ctx context.Context, c *carrier.Control, _ []string, _ *opts) (any, error) {
		return c.Phone.Reset(ctx, false)
	}},
	"ping": {Run: func(ctx context.Context, c *carrier.Control, _ []string, _ *opts) (any, error) {
		return c.Ping(ctx)
	}},
	"status": {Run: func(ctx context.Context, c *carrier.Control, _ []string, _ *opts) (any, error) {
		return c.Status(ctx)
	}},
	"wait": {Args: "call-state <state> [call]", Min: 2, Max: 3, Run: func(ctx context.Context, c *carrier.Control, a []string, o *opts) (any, error) {
		if a[0] != "call-state" {
			return nil, fmt.Errorf("%w: wait call-state <state> [call]", errUsage)
		}
		in := uaclient.WaitRequest{Condition: a[0], State: a[1], Timeout: o.timeout.String()}
		if len(a) == 3 {
			in.Call = a[2]
		}
		return c.Phone.Wait(ctx, in)
	}},
}

func phoneVerb(name string) func(context.Context, *carrier.Control, []string, *opts) (any, error) {
	return func(ctx context.Context, c *carrier.Control, a []string, _ *opts) (any, error) {
		return c.Phone.Verb(ctx, name, uaclient.CallRequest{Call: verbcli.Optional(a)})
	}
}

// cli is the carrier's command line: run, and the control verbs.
var cli = &verbcli.CLI[*carrier.Control, opts]{
	Name: "carrier", Target: "the carrier", CtlEnv: "CARRIER_CTL", DefaultCtl: defaultCtl,
	Usage: usage,
	Daemon: func(args []string, _, stderr io.Writer) int {
		return runDaemon(args, stderr)
	},
	Verbs: verbs,
	Flags: func(fs *flag.FlagSet, name string, o *opts) *time.Duration {
		fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "how long to wait for the carrier (and for wait conditions)")
		if name == "call" {
			fs.StringVar(&o.from, "from", "", "calling number (E.164); default the carrier's -from")
		}
		if name == "reject" {
			fs.IntVar(&o.code, "code", 0, "failure code (default 486)")
		}
		return &o.timeout
	},
	Dial:    carrier.NewControl,
	Message: message,
	IsUsage: func(err error) bool {
		var ce *ctl.Error
		return errors.Is(err, errUsage) || (errors.As(err, &ce) && ce.Status == 400)
	},
	Text:   carrier.WriteText,
	Failed: failed,
}

// message strips package prefixes the user does not need to see.
func message(err error) string {
	var ce *ctl.Error
	if errors.As(err, &ce) {
		return strings.TrimPrefix(strings.TrimPrefix(ce.Message, "carrier: "), "uaclient: ")
	}
	return strings.TrimPrefix(err.Error(), "usage: ")
}

// failed says when an answer is a SIP failure (exit 1).
func failed(name string, out any) bool {
	switch v := out.(type) {
	case carrier.PeerStatus:
		return v.State != carrier.PeerUp
	case uaclient.CallStatus:
		return (name == "answer" && v.State != uaclient.StateConfirmed) ||
			(name == "call" && v.State == uaclient.StateTerminated)
	}
	return false
}
