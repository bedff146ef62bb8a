package carriercli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/siplab/siplab/carrier"
	"github.com/siplab/siplab/ctl"
	"github.com/siplab/siplab/internal/cli/climain"
	"github.com/siplab/siplab/uaclient"
)

// verb is one control command: it checks its arguments, calls the carrier
// and returns what to print.
type verb struct {
	args     string
	min, max int
	run      func(ctx context.Context, c *carrier.Control, args []string, o *opts) (any, error)
}

type opts struct {
	timeout time.Duration
	from    string
	code    int
}

var verbs = map[string]verb{
	"call": {args: "<+E.164> [-from +E.164]", min: 1, max: 1, run: func(ctx context.Context, c *carrier.Control, a []string, o *opts) (any, error) {
		return c.Call(ctx, a[0], o.from)
	}},
	"answer": {args: "[call]", max: 1, run: phoneVerb("answer")},
	"hangup": {args: "[call]", max: 1, run: phoneVerb("hangup")},
	"reject": {args: "[call] [code]", max: 2, run: func(ctx context.Context, c *carrier.Control, a []string, o *opts) (any, error) {
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
	"reset": {run: func(ctx context.Context, c *carrier.Control, _ []string, _ *opts) (any, error) {
		return c.Phone.Reset(ctx, false)
	}},
	"ping": {run: func(ctx context.Context, c *carrier.Control, _ []string, _ *opts) (any, error) {
		return c.Ping(ctx)
	}},
	"status": {run: func(ctx context.Context, c *carrier.Control, _ []string, _ *opts) (any, error) {
		return c.Status(ctx)
	}},
	"wait": {args: "call-state <state> [call]", min: 2, max: 3, run: func(ctx context.Context, c *carrier.Control, a []string, o *opts) (any, error) {
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
		in := uaclient.CallRequest{}
		if len(a) == 1 {
			in.Call = a[0]
		}
		return c.Phone.Verb(ctx, name, in)
	}
}

func runVerb(name string, v verb, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("carrier "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	ctlPath := fs.String("ctl", envOr("CARRIER_CTL", defaultCtl), "control socket of the carrier")
	asJSON := fs.Bool("json", false, "print JSON for scripts")
	o := &opts{}
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "how long to wait for the carrier (and for wait conditions)")
	if name == "call" {
		fs.StringVar(&o.from, "from", "", "calling number (E.164); default the carrier's -from")
	}
	if name == "reject" {
		fs.IntVar(&o.code, "code", 0, "failure code (default 486)")
	}
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: carrier %s [flags] %s\n", name, v.args)
		fs.PrintDefaults()
	}
	// Flags may follow the arguments too ("carrier call +15550100 -from ...").
	pos, err := climain.ParseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	if len(pos) < v.min || len(pos) > v.max {
		fmt.Fprintf(stderr, "usage: carrier %s [-json] [-ctl path] %s\n", name, v.args)
		return 2
	}
	if o.timeout <= 0 {
		fmt.Fprintln(stderr, "carrier: -timeout must be positive")
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout+5*time.Second)
	defer cancel()
	out, err := v.run(ctx, carrier.NewControl(*ctlPath), pos, o)
	if err != nil {
		fmt.Fprintf(stderr, "carrier %s: %s\n", name, message(err))
		var ce *ctl.Error
		if errors.Is(err, errUsage) || (errors.As(err, &ce) && ce.Status == 400) {
			return 2
		}
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(out)
		return 0
	}
	carrier.WriteText(stdout, name, out)
	return failureExit(name, out)
}

// message strips package prefixes the user does not need to see.
func message(err error) string {
	var ce *ctl.Error
	if errors.As(err, &ce) {
		return strings.TrimPrefix(strings.TrimPrefix(ce.Message, "carrier: "), "uaclient: ")
	}
	return strings.TrimPrefix(err.Error(), "usage: ")
}

// failureExit makes a SIP failure exit 1, so a script can tell them apart.
func failureExit(name string, out any) int {
	switch v := out.(type) {
	case carrier.PeerStatus:
		if v.State != carrier.PeerUp {
			return 1
		}
	case uaclient.CallStatus:
		if name == "answer" && v.State != uaclient.StateConfirmed {
			return 1
		}
		if name == "call" && v.State == uaclient.StateTerminated {
			return 1
		}
	}
	return 0
}
