package main

import (
	"flag"
	"fmt"

	"github.com/siplab/siplab/doctor"
	"github.com/siplab/siplab/ladder"
)

func doctorCmd(args []string) error {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	dir := fs.String("dir", "", "capture folder (default: the lab's captures/)")
	useState := fs.Bool("state", true, "also check the running lab's settings (keep-alives vs pinholes, rport, registrations, ALG)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 1 {
		return fmt.Errorf("%w: doctor takes at most one call (Call-ID or index)", errUsage)
	}
	calls, err := loadCalls(*dir)
	if err != nil {
		return err
	}
	// No call given: every dialog, because registrations fail too (a 401
	// loop is a REGISTER); a call given: that one.
	targets := calls
	if fs.NArg() == 1 {
		c, err := ladder.Find(calls, fs.Arg(0))
		if err != nil {
			return err
		}
		targets = []*ladder.Call{c}
	}
	total := 0
	for _, c := range targets {
		idx := 0
		for i := range calls {
			if calls[i] == c {
				idx = i + 1
			}
		}
		// Every dialog goes in: some rules read the REGISTERs behind a call.
		for _, f := range doctor.CheckIn(calls, c) {
			total++
			fmt.Printf("%s [%s] call %d (%s %s): %s\n", f.Severity, f.Rule, idx, c.Kind(), c.ID, f.Summary)
			for _, e := range f.Evidence {
				fmt.Printf("    evidence %s\n", e)
			}
			if f.Note != "" {
				fmt.Printf("    note: %s\n", f.Note)
			}
			fmt.Printf("    fix: %s\n\n", f.Fix)
		}
	}
	// What the running lab's settings say is about to fail: only when the
	// captures are the lab's own (not a copied folder).
	if *useState && *dir == "" {
		if findings, ok := stateFindings(); ok {
			for _, f := range findings {
				total++
				fmt.Printf("%s [%s] lab state: %s\n", f.Severity, f.Rule, f.Summary)
				for _, e := range f.Evidence {
					fmt.Printf("    evidence %s\n", e)
				}
				if f.Note != "" {
					fmt.Printf("    note: %s\n", f.Note)
				}
				fmt.Printf("    fix: %s\n\n", f.Fix)
			}
		}
	}
	if total == 0 {
		fmt.Printf("no findings in %d dialog(s); rules: ", len(targets))
		for i, r := range doctor.Rules() {
			if i > 0 {
				fmt.Print(", ")
			}
			fmt.Print(r.Name)
		}
		fmt.Println()
	}
	return nil
}
