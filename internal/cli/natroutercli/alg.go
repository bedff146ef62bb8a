package natroutercli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/siplab/siplab/natrouter"
	"github.com/siplab/siplab/natrouter/sipalg"
)

const algUsage = `usage: natrouter alg [-json]

Lists the SIP ALG modes and the faults of the broken one. Select with
  natrouter set alg off | kernel | broken | broken:none | broken:<fault>+<fault>...
("broken" alone is broken:` + natrouter.DefaultBrokenFaults + `). Docs: docs/alg/.
`

type algListing struct {
	Modes  []natrouter.ALGMode        `json:"modes"`
	Faults []sipalg.Fault             `json:"faults"`
	Kernel natrouter.KernelSIPSupport `json:"kernel"`
}

// cmdALG lists modes and faults. It reads no socket: the registry is
// compiled in, so it also works on a host without a running router.
func cmdALG(args []string, out io.Writer) error {
	fs := newFlags("alg")
	asJSON := fs.Bool("json", false, "print JSON")
	fs.Usage = func() { fmt.Fprint(fs.Output(), algUsage); fs.PrintDefaults() }
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%w: alg takes no arguments (to change the mode: natrouter set alg <spec>)", errUsage)
	}
	l := algListing{Modes: natrouter.ALGModes(), Faults: sipalg.Faults(), Kernel: natrouter.DetectKernelSIP()}
	if *asJSON {
		return writeJSON(out, l)
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MODE\tSUMMARY")
	for _, m := range l.Modes {
		fmt.Fprintf(tw, "%s\t%s\n", m.Name, m.Summary)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nthis kernel: nf_conntrack_sip %s, nf_nat_sip %s (%s)\n", l.Kernel.ConntrackSIP, l.Kernel.NATSIP, l.Kernel.Evidence)
	fmt.Fprintf(out, "\nfaults of the broken mode (combine with +: natrouter set alg broken:%s):\n", strings.Join(sipalg.FaultNames()[:2], "+"))
	for _, f := range l.Faults {
		fmt.Fprintf(out, "\n  %s\n    does:    %s\n    symptom: %s\n    trace:   %s\n", f.Name, f.Summary, f.Symptom, f.Trace)
	}
	return nil
}
