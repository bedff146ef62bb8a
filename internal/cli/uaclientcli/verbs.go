package uaclientcli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/siplab/siplab/internal/cli/verbcli"
	"github.com/siplab/siplab/internal/ctl"
	"github.com/siplab/siplab/uaclient"
)

// verb is one control command: it checks its arguments, calls the phone
// and returns what to print (text for people, the value as JSON with -json).
type verb = verbcli.Verb[*uaclient.Control, opts]

type opts struct {
	timeout   time.Duration
	code      int
	with      string
	callsOnly bool
}

// errUsage marks argument mistakes (exit 2).
var errUsage = errors.New("usage")

var verbs = map[string]verb{
	"register": {Run: func(ctx context.Context, c *uaclient.Control, _ []string, _ *opts) (any, error) {
		return c.Register(ctx)
	}},
	"unregister": {Run: func(ctx context.Context, c *uaclient.Control, _ []string, _ *opts) (any, error) {
		return c.Unregister(ctx)
	}},
	// reset first stops stray CLI clients in this container, then puts the
	// phone back to its startup state (uaclient.Phone.Reset).
	"reset": {Run: func(ctx context.Context, c *uaclient.Control, _ []string, o *opts) (any, error) {
		stray := reapStray("/proc")
		res, err := c.Reset(ctx, o.callsOnly)
		return resetOutput{ResetResult: res, Stopped: stray}, err
	}},
	"call": {Args: "<user|sip-uri>", Min: 1, Max: 1, Run: func(ctx context.Context, c *uaclient.Control, a []string, _ *opts) (any, error) {
		return c.Call(ctx, a[0])
	}},
	"answer": {Args: "[call]", Max: 1, Run: callVerb("answer")},
	"hold":   {Args: "[call]", Max: 1, Run: callVerb("hold")},
	"resume": {Args: "[call]", Max: 1, Run: callVerb("resume")},
	"update": {Args: "[call]", Max: 1, Run: callVerb("update")},
	"transfer": {Args: "[call] <target>  |  -with <consult-call> [call] [target]", Max: 2, Run: func(ctx context.Context, c *uaclient.Control, a []string, o *opts) (any, error) {
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
	"subscribe": {Args: "<target> dialog|message-summary  |  message-summary", Min: 1, Max: 2, Run: func(ctx context.Context, c *uaclient.Control, a []string, _ *opts) (any, error) {
		if len(a) == 1 {
			switch a[0] {
			case "message-summary", "mwi":
				return c.Subscribe(ctx, "", a[0])
			}
			return nil, fmt.Errorf("%w: subscribe needs an event package: dialog or message-summary", errUsage)
		}
		return c.Subscribe(ctx, a[0], a[1])
	}},
	"unsubscribe": {Args: "[subscription]", Max: 1, Run: func(ctx context.Context, c *uaclient.Control, a []string, _ *opts) (any, error) {
		return c.Unsubscribe(ctx, verbcli.Optional(a))
	}},
	"message": {Args: "<user|sip-uri> <text...>", Min: 2, Max: 64, Run: func(ctx context.Context, c *uaclient.Control, a []string, _ *opts) (any, error) {
		return c.Message(ctx, a[0], strings.Join(a[1:], " "))
	}},
	"cancel": {Args: "[call]", Max: 1, Run: callVerb("cancel")},
	"hangup": {Args: "[call]", Max: 1, Run: callVerb("hangup")},
	"reject": {Args: "[call] [code]", Max: 2, Run: func(ctx context.Context, c *uaclient.Control, a []string, o *opts) (any, error) {
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
	"dtmf": {Args: "[call] <digits>", Min: 1, Max: 2, Run: func(ctx context.Context, c *uaclient.Control, a []string, _ *opts) (any, error) {
		in := uaclient.CallRequest{Digits: a[len(a)-1]}
		if len(a) == 2 {
			in.Call = a[0]
		}
		return c.Verb(ctx, "dtmf", in)
	}},
	"options": {Args: "[target]", Max: 1, Run: func(ctx context.Context, c *uaclient.Control, a []string, _ *opts) (any, error) {
		return c.Options(ctx, verbcli.Optional(a))
	}},
	"set": {Args: "<name> <value>", Min: 2, Max: 2, Run: func(ctx context.Context, c *uaclient.Control, a []string, _ *opts) (any, error) {
		out, err := c.Set(ctx, a[0], a[1])
		if err != nil {
			return nil, err
		}
		return pick(out, a[0]), nil
	}},
	"get": {Args: "[name]", Max: 1, Run: func(ctx context.Context, c *uaclient.Control, a []string, _ *opts) (any, error) {
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
	"status": {Run: func(ctx context.Context, c *uaclient.Control, _ []string, _ *opts) (any, error) {
		return c.Status(ctx)
	}},
	"wait": {Args: "<registered|unregistered|registration-failed|call-state <state> [call]>", Min: 1, Max: 3, Run: func(ctx context.Context, c *uaclient.Control, a []string, o *opts) (any, error) {
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
		return c.Verb(ctx, name, uaclient.CallRequest{Call: verbcli.Optional(a)})
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

// cli is the phone's command line: run, and the control verbs.
var cli = &verbcli.CLI[*uaclient.Control, opts]{
	Name: "uaclient", Target: "the phone", CtlEnv: "UACLIENT_CTL", DefaultCtl: defaultCtl,
	Usage:  usage,
	Daemon: runDaemon,
	Verbs:  verbs,
	Flags: func(fs *flag.FlagSet, name string, o *opts) *time.Duration {
		fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "how long to wait for the phone (and for wait conditions)")
		switch name {
		case "reject":
			fs.IntVar(&o.code, "code", 0, "failure code (default 486)")
		case "reset":
			fs.BoolVar(&o.callsOnly, "calls", false, "only stop stray processes and end calls and subscriptions")
		case "transfer":
			fs.StringVar(&o.with, "with", "", "attended transfer: the consultation call whose dialog the Refer-To replaces")
		}
		return &o.timeout
	},
	Dial:    uaclient.NewControl,
	Message: message,
	IsUsage: func(err error) bool { return errors.Is(err, errUsage) },
	Text:    uaclient.WriteText,
	Failed:  failed,
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

// failed says when a verb's SIP outcome was a failure (exit 1), so a
// script can tell "options got 404" from "options got 200".
func failed(name string, out any) bool {
	switch v := out.(type) {
	case uaclient.OptionsResult:
		return v.Code >= 300
	case uaclient.MessageRecord:
		return v.Code >= 300
	case uaclient.SubscriptionStatus:
		return v.State == uaclient.SubFailed
	case uaclient.CallStatus:
		return (name == "answer" && v.State != uaclient.StateConfirmed) ||
			(name == "call" && v.State == uaclient.StateTerminated) ||
			(name == "transfer" && v.Transfer != nil && v.Transfer.State == "failed")
	}
	return false
}
