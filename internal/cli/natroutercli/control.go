package natroutercli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/siplab/siplab/natrouter"
)

func cmdStatus(ctx context.Context, args []string, out io.Writer) error {
	fs, socket := controlFlags("status")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := natrouter.NewClient(*socket).Status(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(out, st)
	}
	return st.WriteTable(out)
}

func cmdSet(ctx context.Context, args []string, out io.Writer) error {
	fs, socket := controlFlags("set")
	asJSON := fs.Bool("json", false, "print JSON")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: natrouter set [-socket path] [-json] preset <name> | pinhole <duration> | alg <mode>\n"+
			"  alg: off | kernel | broken | broken:none | broken:<fault>+<fault>... (natrouter alg lists them)")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return fmt.Errorf("%w: set wants <setting> <value>, e.g. set preset symmetric, set pinhole 20s", errUsage)
	}
	var sr natrouter.SettingsRequest
	switch key, val := fs.Arg(0), fs.Arg(1); key {
	case "preset":
		sr.Preset = val
	case "pinhole":
		if _, err := time.ParseDuration(val); err != nil && val != "default" {
			return fmt.Errorf("%w: pinhole %q: want a duration like 20s: %w", errUsage, val, err)
		}
		sr.Pinhole = val
	case "alg":
		sr.ALG = val
	default:
		return fmt.Errorf("%w: unknown setting %q (preset, pinhole, alg)", errUsage, key)
	}
	return change(ctx, *socket, *asJSON, out, func(c *natrouter.Client, ctx context.Context) (natrouter.SetResult, error) {
		return c.Set(ctx, sr)
	})
}

// controlFlags starts the flags of a verb that talks to the daemon.
func controlFlags(name string) (*flag.FlagSet, *string) {
	fs := newFlags(name)
	return fs, fs.String("socket", natrouter.DefaultSocket, "control socket path")
}

// change runs a settings change, reset or flush on the daemon at socket
// and prints its result. do has the shape of the Client's methods
// (method expressions such as (*natrouter.Client).Reset).
func change(ctx context.Context, socket string, asJSON bool, out io.Writer, do func(*natrouter.Client, context.Context) (natrouter.SetResult, error)) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res, err := do(natrouter.NewClient(socket), ctx)
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(out, res)
	}
	WriteSetResult(out, res, nil)
	return nil
}

// WriteSetResult prints a settings change, reset or flush for people:
// the settings now, and every mapping the flush dropped (names maps an
// inside IP to a host name, may be nil). A dropped mapping is why a
// phone's registration stops working until it sends again.
func WriteSetResult(out io.Writer, res natrouter.SetResult, names map[string]string) {
	st := res.Status
	fmt.Fprintf(out, "preset %s, pinhole %s, alg %s; flushed %d conntrack entries (mappings are re-created by the next outbound packet)\n",
		st.Preset.Name, st.Pinhole(), st.ALG, res.Flushed)
	if len(res.Dropped) == 0 {
		return
	}
	fmt.Fprintf(out, "dropped %d NAT mapping(s): what the far side learnt of these public addresses (a registration's seen address, a latched media port) is dead until the inside host sends again (re-register or keep-alive):\n", len(res.Dropped))
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	for _, m := range res.Dropped {
		who := names[m.Inside.Addr().String()]
		if who != "" {
			who = " (" + who + ")"
		}
		fmt.Fprintf(tw, "  %s\t%s%s\t-> %s\tto %s\n", m.Proto, m.Inside, who, m.Outside, m.Remote)
	}
	tw.Flush()
}

func cmdFlush(ctx context.Context, args []string, out io.Writer) error {
	fs, socket := controlFlags("flush")
	if err := parse(fs, args); err != nil {
		return err
	}
	return change(ctx, *socket, false, out, (*natrouter.Client).Flush)
}

func cmdReset(ctx context.Context, args []string, out io.Writer) error {
	fs, socket := controlFlags("reset")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%w: reset takes no arguments", errUsage)
	}
	return change(ctx, *socket, *asJSON, out, (*natrouter.Client).Reset)
}

func cmdPresets(out io.Writer) error {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PRESET\tMAPPING\tFILTERING\tSUMMARY")
	for _, p := range natrouter.Presets() {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.Name, p.Mapping, p.Filtering, p.Summary)
	}
	fmt.Fprintln(tw, "\nALG MODE\tSUMMARY")
	for _, m := range natrouter.ALGModes() {
		fmt.Fprintf(tw, "%s\t%s\n", m.Name, m.Summary)
	}
	return tw.Flush()
}
