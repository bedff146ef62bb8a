package uaclientcli

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

	"github.com/siplab/siplab/ctl"
	"github.com/siplab/siplab/internal/cli/climain"
	"github.com/siplab/siplab/uaclient"
)

// verb is one control command: it checks its arguments, calls the phone
// and returns what to print (text for people, the value as JSON with -json).
type verb struct {
	// args is the usage of the positional arguments, for error messages.
	args string
	// min/max positional arguments.
	min, max int
	run      func(ctx context.Context, c *uaclient.Control, args []string, o *opts) (any, error)
}

type opts struct {
	timeout   time.Duration
	code      int
	with      string
	callsOnly bool
}

// errUsage marks argument mistakes (exit 2).
var errUsage = errors.New("usage")

var verbs = map[string]verb{
	"register": {run: func(ctx context.Context, c *uaclient.Control, _ []string, _ *opts) (any, error) {
		return c.Register(ctx)
	}},
	"unregister": {run: func(ctx context.Context, c *uaclient.Control, _ []string, _ *opts) (any, error) {
		return c.Unregister(ctx)
	}},
	// reset first stops stray CLI clients in this container, then puts the
	// phone back to its startup state (uaclient.Phone.Reset).
	"reset": {run: func(ctx context.Context, c *uaclient.Control, _ []string, o *opts) (any, error) {
		stray := reapStray("/proc")
		res, err := c.Reset(ctx, o.callsOnly)
		return resetOutput{ResetResult: res, Stopped: stray}, err
	}},
	"call": {args: "<user|sip-uri>", min: 1, max: 1, run: func(ctx context.Context, c *uaclient.Control, a []string, _ *opts) (any, error) {
		return c.Call(ctx, a[0])
	}},
	"answer": {args: "[call]", max: 1, run: callVerb("answer")},
	"hold":   {args: "[call]", max: 1, run: callVerb("hold")},
	"resume": {args: "[call]", max: 1, run: callVerb("resume")},
	"update": {args: "[call]", max: 1, run: callVerb("update")},
	"transfer": {args: "[call] <target>  |  -with <consult-call> [call] [target]", max: 2, run: func(ctx context.Context, c *uaclient.Control, a []string, o *opts) (any, error) {
		var call, target string
		switch {
		case len(a) == 2:
			call, target = a[0], a[1]
		case len(a) == 1 && o.with != "":
			call = a[0]
		case len(a) == 1:
			target = a[0]
		case o.with == "":
			return nil, fmt.Errorf("%w: transfer needs a target (blind) or -with <consult-call> (attended)", errUsage)
		}
		return c.Transfer(ctx, call, target, o.with)
	}},
	"subscribe": {args: "<target> dialog|message-summary  |  message-summary", min: 1, max: 2, run: func(ctx context.Context, c *uaclient.Control, a []string, _ *opts) (any, error) {
		if len(a) == 1 {
			switch a[0] {
			case "message-summary", "mwi":
				return c.Subscribe(ctx, "", a[0])
			}
			return nil, fmt.Errorf("%w: subscribe needs an event package: dialog or message-summary", errUsage)
		}
		return c.Subscribe(ctx, a[0], a[1])
	}},
	"unsubscribe": {args: "[subscription]", max: 1, run: func(ctx context.Context, c *uaclient.Control, a []string, _ *opts) (any, error) {
		id := ""
		if len(a) == 1 {
			id = a[0]
		}
		return c.Unsubscribe(ctx, id)
	}},
	"message": {args: "<user|sip-uri> <text...>", min: 2, max: 64, run: func(ctx context.Context, c *uaclient.Control, a []string, _ *opts) (any, error) {
		return c.Message(ctx, a[0], strings.Join(a[1:], " "))
	}},
	"cancel": {args: "[call]", max: 1, run: callVerb("cancel")},
	"hangup": {args: "[call]", max: 1, run: callVerb("hangup")},
	"reject": {args: "[call] [code]", max: 2, run: func(ctx context.Context, c *uaclient.Control, a []string, o *opts) (any, error) {
		in := uaclient.CallRequest{Code: o.code}
		switch len(a) {
		case 2:
			in.Call = a[0]
			code, err := parseCode(a[1])
			if err != nil {
				return nil, err
			}
			in.Code = code
		case 1:
			// One argument: a SIP failure code (300-699) or a call id.
			if code, err := parseCode(a[0]); err == nil {
				in.Code = code
			} else {
				in.Call = a[0]
			}
		}
		return c.Verb(ctx, "reject", in)
	}},
	"dtmf": {args: "[call] <digits>", min: 1, max: 2, run: func(ctx context.Context, c *uaclient.Control, a []string, _ *opts) (any, error) {
		in := uaclient.CallRequest{Digits: a[len(a)-1]}
		if len(a) == 2 {
			in.Call = a[0]
		}
		return c.Verb(ctx, "dtmf", in)
	}},
	"options": {args: "[target]", max: 1, run: func(ctx context.Context, c *uaclient.Control, a []string, _ *opts) (any, error) {
		target := ""
		if len(a) == 1 {
			target = a[0]
		}
		return c.Options(ctx, target)
	}},
	"set": {args: "<name> <value>", min: 2, max: 2, run: func(ctx context.Context, c *uaclient.Control, a []string, _ *opts) (any, error) {
		out, err := c.Set(ctx, a[0], a[1])
		if err != nil {
			return nil, err
		}
		return pick(out, a[0]), nil
	}},
	"get": {args: "[name]", max: 1, run: func(ctx context.Context, c *uaclient.Control, a []string, _ *opts) (any, error) {
		out, err := c.Settings(ctx)
		if err != nil || len(a) == 0 {
			return out, err
		}
		one := pick(out, a[0])
		if len(one) == 0 {
			return nil, fmt.Errorf("%w: unknown setting %q (known: %s)", errUsage, a[0], strings.Join(uaclient.SettingNames(), ", "))
		}
		return one, nil
	}},
	"status": {run: func(ctx context.Context, c *uaclient.Control, _ []string, _ *opts) (any, error) {
		return c.Status(ctx)
	}},
	"wait": {args: "<registered|unregistered|registration-failed|call-state <state> [call]>", min: 1, max: 3, run: func(ctx context.Context, c *uaclient.Control, a []string, o *opts) (any, error) {
		in := uaclient.WaitRequest{Condition: a[0], Timeout: o.timeout.String()}
		if strings.HasPrefix(a[0], "call") {
			if len(a) < 2 {
				return nil, fmt.Errorf("%w: wait call-state needs a state (calling, ringing, early, confirmed, terminated)", errUsage)
			}
			in.State = a[1]
			if len(a) == 3 {
				in.Call = a[2]
			}
		} else if len(a) > 1 {
			return nil, fmt.Errorf("%w: wait %s takes no more arguments", errUsage, a[0])
		}
		return c.Wait(ctx, in)
	}},
}

// resetOutput is the reset verb's answer: the phone's and the stray
// processes this command stopped.
type resetOutput struct {
	uaclient.ResetResult
	Stopped []string `json:"stopped_processes"`
}

func (r resetOutput) String() string {
	s := r.ResetResult.String()
	if len(r.Stopped) > 0 {
		s += "; stopped: " + strings.Join(r.Stopped, " | ")
	}
	return s
}

func callVerb(name string) func(context.Context, *uaclient.Control, []string, *opts) (any, error) {
	return func(ctx context.Context, c *uaclient.Control, a []string, _ *opts) (any, error) {
		in := uaclient.CallRequest{}
		if len(a) == 1 {
			in.Call = a[0]
		}
		return c.Verb(ctx, name, in)
	}
}

func parseCode(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 300 || n > 699 {
		return 0, fmt.Errorf("%w: %q is not a SIP failure code (300-699)", errUsage, s)
	}
	return n, nil
}

func pick(list []uaclient.SettingInfo, name string) []uaclient.SettingInfo {
	n := strings.ReplaceAll(strings.ToLower(name), "-", "_")
	for _, s := range list {
		if s.Name == n {
			return []uaclient.SettingInfo{s}
		}
	}
	return nil
}

func runVerb(name string, v verb, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("uaclient "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	ctlPath := fs.String("ctl", envOr("UACLIENT_CTL", defaultCtl), "control socket of the phone")
	asJSON := fs.Bool("json", false, "print JSON for scripts")
	o := &opts{}
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "how long to wait for the phone (and for wait conditions)")
	if name == "reject" {
		fs.IntVar(&o.code, "code", 0, "failure code (default 486)")
	}
	if name == "reset" {
		fs.BoolVar(&o.callsOnly, "calls", false, "only stop stray processes and end calls and subscriptions")
	}
	if name == "transfer" {
		fs.StringVar(&o.with, "with", "", "attended transfer: the consultation call whose dialog the Refer-To replaces")
	}
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: uaclient %s [flags] %s\n", name, v.args)
		fs.PrintDefaults()
	}
	// Flags may follow the arguments too ("uaclient status -json").
	pos, err := climain.ParseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	if len(pos) < v.min || len(pos) > v.max {
		fmt.Fprintf(stderr, "usage: uaclient %s [-json] [-ctl path] %s\n", name, v.args)
		return 2
	}
	if o.timeout <= 0 {
		fmt.Fprintln(stderr, "uaclient: -timeout must be positive")
		return 2
	}
	// The request may itself wait (cancel, wait): give the socket call a
	// little longer than the phone-side timeout.
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout+5*time.Second)
	defer cancel()
	c := uaclient.NewControl(*ctlPath)
	out, err := v.run(ctx, c, pos, o)
	if err != nil {
		fmt.Fprintf(stderr, "uaclient %s: %s\n", name, message(err))
		if errors.Is(err, errUsage) {
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
	uaclient.WriteText(stdout, name, out)
	return failureExit(name, out)
}

// message strips package prefixes the user does not need to see.
func message(err error) string {
	var ce *ctl.Error
	if errors.As(err, &ce) {
		return strings.TrimPrefix(ce.Message, "uaclient: ")
	}
	if errors.Is(err, ctl.ErrUnavailable) {
		return err.Error()
	}
	return strings.TrimPrefix(strings.TrimPrefix(err.Error(), "usage: "), "uaclient: ")
}

// failureExit makes a verb whose SIP outcome was a failure exit 1, so a
// script can tell "options got 404" from "options got 200".
func failureExit(name string, out any) int {
	switch v := out.(type) {
	case uaclient.OptionsResult:
		if v.Code >= 300 {
			return 1
		}
	case uaclient.MessageRecord:
		if v.Code >= 300 {
			return 1
		}
	case uaclient.SubscriptionStatus:
		if v.State == uaclient.SubFailed {
			return 1
		}
	case uaclient.CallStatus:
		if name == "answer" && v.State != uaclient.StateConfirmed {
			return 1
		}
		if name == "call" && v.State == uaclient.StateTerminated {
			return 1
		}
		if name == "transfer" && v.Transfer != nil && v.Transfer.State == "failed" {
			return 1
		}
	}
	return 0
}
