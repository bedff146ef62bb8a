package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"time"

	"github.com/siplab/siplab/internal/cli/climain"
	"github.com/siplab/siplab/lab/labops"
	"github.com/siplab/siplab/trace/doctor"
	"github.com/siplab/siplab/trace/ladder"
)

// errFindings makes siplab exit 1 when the doctor found an error.
var errFindings = errors.New("doctor")

func doctorCmd(args []string) error {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	dir := fs.String("dir", "", "capture folder (default: the lab's captures/)")
	useState := fs.Bool("state", true, "also check the running lab's settings (keep-alives vs pinholes, rport, registrations, ALG)")
	call := fs.Int("call", 0, "only this call (its number in siplab ladder -list)")
	since := fs.Duration("since", 0, "only dialogs that started in this last stretch of the capture, e.g. 5m (0: all)")
	sev := fs.String("severity", "warning", "lowest severity shown: note, warning or error")
	notes := fs.Bool("notes", false, "also show notes (same as -severity note): what something else hides today")
	pos, err := climain.ParseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("%w: doctor takes no arguments; a call is -call N (siplab ladder -list numbers them)", errUsage)
	}
	least, err := doctor.ParseSeverity(*sev)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *notes {
		least = doctor.Note
	}
	calls, err := labops.LoadCalls(*dir)
	if err != nil {
		return err
	}
	targets := calls
	if *call != 0 {
		c, err := ladder.Find(calls, strconv.Itoa(*call))
		if err != nil {
			return err
		}
		targets = []*ladder.Call{c}
	}
	if *since > 0 {
		var end time.Time
		for _, c := range calls {
			if c.End.After(end) {
				end = c.End
			}
		}
		var recent []*ladder.Call
		for _, c := range targets {
			if !c.Start.Before(end.Add(-*since)) {
				recent = append(recent, c)
			}
		}
		targets = recent
	}
	findings := doctor.Diagnose(calls, targets)
	// What the running lab's settings say is about to fail: only when the
	// captures are the lab's own (not a copied folder) and no single call
	// was asked for.
	var state []doctor.Finding
	if *useState && *dir == "" && *call == 0 {
		if r, err := runner(); err == nil {
			state, _ = labops.StateFindings(context.Background(), r)
		}
	}
	shown, hidden, errs := 0, 0, 0
	for _, f := range append(findings, state...) {
		if f.Severity == doctor.Error {
			errs++
		}
		if f.Severity < least {
			hidden++
			continue
		}
		shown++
		printFinding(f)
	}
	if shown == 0 {
		fmt.Printf("no findings in %d dialog(s)", len(targets))
		if hidden > 0 {
			fmt.Printf(" (%d note(s) hidden: -notes shows them)", hidden)
		}
		fmt.Print("; rules: ")
		for i, r := range doctor.Rules() {
			if i > 0 {
				fmt.Print(", ")
			}
			fmt.Print(r.Name)
		}
		fmt.Println()
	} else if hidden > 0 {
		fmt.Printf("(%d finding(s) below %s hidden: -notes shows notes)\n", hidden, least)
	}
	if errs > 0 {
		return fmt.Errorf("%w: %d error(s) found", errFindings, errs)
	}
	return nil
}

// printFinding writes one finding: what it is about (a numbered call, a
// dialog by Call-ID, a group, the lab's state), its evidence, note and fix.
func printFinding(f doctor.Finding) {
	var about string
	switch c := f.Call; {
	case f.Rule != "" && len(f.Rule) > 6 && f.Rule[:6] == "state-":
		about = "lab state"
	case c == nil && f.Count > 0:
		about = fmt.Sprintf("%d dialog(s)", f.Count)
	case c == nil:
		about = "capture"
	case c.N > 0:
		about = fmt.Sprintf("call %d (%s)", c.N, callLine(c))
	default:
		about = fmt.Sprintf("%s %s", c.Kind(), c.ID)
	}
	fmt.Printf("%s [%s] %s: %s\n", f.Severity, f.Rule, about, f.Summary)
	for _, e := range f.Evidence {
		// A message of a numbered call is named the way explain takes it.
		if c := f.Call; c != nil && c.N > 0 && e.Call == "" && e.N > 0 {
			fmt.Printf("    evidence %d.%d at %s: %s\n", c.N, e.N, e.Iface, e.What)
			continue
		}
		fmt.Printf("    evidence %s\n", e)
	}
	if f.Note != "" {
		fmt.Printf("    note: %s\n", f.Note)
	}
	fmt.Printf("    fix: %s\n\n", f.Fix)
}

// callLine is "alice → bob" for a call's heading.
func callLine(c *ladder.Call) string {
	for _, m := range c.Messages {
		if m.Request {
			return ladder.UserOf(m.Header("From")) + " → " + ladder.UserOf(m.Header("To"))
		}
	}
	return c.ID
}
