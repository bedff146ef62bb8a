// Package verbcli is the command line of a daemon whose binary is also its
// client (the carrier and the phone): "<cmd> run" starts the daemon, every
// other word is a control verb that talks to the running daemon over its
// control socket and prints the answer, as text for people or as JSON with
// -json. What differs between daemons — the verbs, their flags, the text
// and which answers are failures — is in a CLI.
package verbcli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/siplab/siplab/internal/cli/climain"
)

// Optional is a verb's optional positional argument (Max 1): "" when it
// was not given.
func Optional(a []string) string {
	if len(a) == 0 {
		return ""
	}
	return a[0]
}

// Verb is one control command: it checks its arguments, calls the daemon
// through c and returns what to print.
type Verb[C, O any] struct {
	// Args is the usage of the positional arguments, for error messages.
	Args string
	// Min and Max bound the number of positional arguments.
	Min, Max int
	Run      func(ctx context.Context, c C, args []string, o *O) (any, error)
}

// CLI describes one daemon's command line.
type CLI[C, O any] struct {
	// Name is the command: "carrier".
	Name string
	// Target is what the control socket reaches, for the flag help: "the
	// carrier".
	Target string
	// CtlEnv names the environment variable that overrides DefaultCtl.
	CtlEnv, DefaultCtl string
	// Usage prints the whole command's help.
	Usage func(w io.Writer)
	// Daemon runs "<cmd> run <args>" and returns the exit code.
	Daemon func(args []string, stdout, stderr io.Writer) int
	Verbs  map[string]Verb[C, O]
	// Flags adds the verb's own flags to fs (filling o) and returns where
	// its -timeout lands: how long the verb may wait for the daemon.
	Flags func(fs *flag.FlagSet, verb string, o *O) (timeout *time.Duration)
	// Dial is a client of the control socket at path.
	Dial func(path string) C
	// Message is err as the user should read it; IsUsage says which
	// errors are the user's (exit 2).
	Message func(err error) string
	IsUsage func(err error) bool
	// Text prints a verb's answer for people; Failed says when an answer
	// is a SIP failure (exit 1), so a script can tell them apart.
	Text   func(w io.Writer, verb string, out any)
	Failed func(verb string, out any) bool
}

// Run runs one invocation and returns the exit code: 0 success, 1 the verb
// failed (the daemon or the network said no), 2 bad usage.
func (c *CLI[C, O]) Run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		c.Usage(stderr)
		return 2
	}
	name, rest := args[0], args[1:]
	switch name {
	case "-h", "-help", "--help", "help":
		c.Usage(stdout)
		return 0
	case "run":
		return c.Daemon(rest, stdout, stderr)
	}
	v, ok := c.Verbs[name]
	if !ok {
		fmt.Fprintf(stderr, "%s: unknown command %q\n\n", c.Name, name)
		c.Usage(stderr)
		return 2
	}
	return c.verb(name, v, rest, stdout, stderr)
}

func (c *CLI[C, O]) verb(name string, v Verb[C, O], args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(c.Name+" "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	ctlPath := fs.String("ctl", climain.EnvOr(c.CtlEnv, c.DefaultCtl), "control socket of "+c.Target)
	asJSON := fs.Bool("json", false, "print JSON for scripts")
	o := new(O)
	timeout := c.Flags(fs, name, o)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: %s %s [flags] %s\n", c.Name, name, v.Args)
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
	if len(pos) < v.Min || len(pos) > v.Max {
		fmt.Fprintf(stderr, "usage: %s %s [-json] [-ctl path] %s\n", c.Name, name, v.Args)
		return 2
	}
	if *timeout <= 0 {
		fmt.Fprintf(stderr, "%s: -timeout must be positive\n", c.Name)
		return 2
	}
	// The request may itself wait (cancel, wait): give the socket call a
	// little longer than the daemon-side timeout.
	ctx, cancel := context.WithTimeout(context.Background(), *timeout+5*time.Second)
	defer cancel()
	out, err := v.Run(ctx, c.Dial(*ctlPath), pos, o)
	if err != nil {
		fmt.Fprintf(stderr, "%s %s: %s\n", c.Name, name, c.Message(err))
		if c.IsUsage(err) {
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
	c.Text(stdout, name, out)
	if c.Failed(name, out) {
		return 1
	}
	return 0
}
