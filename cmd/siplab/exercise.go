package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/siplab/siplab/internal/cli/climain"
	"github.com/siplab/siplab/lab/exercise"
	"github.com/siplab/siplab/lab/labctl"
	"github.com/siplab/siplab/lab/labops"
)

const exerciseUsage = `siplab exercise list                   every exercise: module, title, started / passed
siplab exercise start <id>             set the exercise up (ends the current one first) and print the task
siplab exercise status [-json]         the current exercise and its last check
siplab exercise hint [id]              the next hint
siplab exercise check [id] [-json]     read the live lab: PASS/FAIL with the evidence
siplab exercise check [id] -answer V   for exercises that ask for a value read off the lab (02-anatomy)
siplab exercise check -all [-json]     class report: every exercise's progress, the current one checked live
siplab exercise solve [id]             apply the documented fix
siplab exercise reset [id]             siplab reset (the lab as a fresh up); the exercise is no longer current
siplab exercise doc [-o file]          print docs/exercises.md (generated from the definitions)`

// exerciseCmd is `siplab exercise ...`.
func exerciseCmd(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: exercise needs a subcommand:\n%s", errUsage, exerciseUsage)
	}
	sub, rest := args[0], args[1:]
	if sub == "doc" {
		return exerciseDoc(rest)
	}
	fs := flag.NewFlagSet("exercise "+sub, flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "JSON for scripts")
	all := fs.Bool("all", false, "every exercise (check)")
	answer := fs.String("answer", "", "your answer, for an exercise that asks for a value read off the lab (check)")
	pos, err := climain.ParseInterspersed(fs, rest)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	root, err := labctl.FindRoot()
	if err != nil {
		return err
	}
	exs := labops.OpenExercises(root)
	prog, err := exs.Store.Load()
	if err != nil {
		return err
	}
	if sub == "list" {
		return exerciseList(os.Stdout, prog)
	}
	if len(pos) > 1 {
		return fmt.Errorf("%w: exercise %s takes at most one id", errUsage, sub)
	}
	var id string
	if len(pos) == 1 {
		id = pos[0]
	}
	switch sub {
	case "start":
		if id == "" {
			return fmt.Errorf("%w: exercise start <id> (siplab exercise list)", errUsage)
		}
		_, err := exs.Start(ctx, id, os.Stdout)
		return err
	case "status":
		ex, err := exs.Pick(prog, id)
		if err != nil {
			return err
		}
		rec := prog.Rec(ex.ID)
		if *asJSON {
			return writeJSON(map[string]any{"current": ex.ID, "record": rec})
		}
		fmt.Printf("%s — %s (module %s)\nstarted %s\n", ex.ID, ex.Title, ex.Module, stamp(rec.Started))
		if !rec.Passed.IsZero() {
			fmt.Printf("passed  %s\n", stamp(rec.Passed))
		}
		if rec.Last != nil {
			fmt.Printf("last check:\n%s", rec.Last)
		}
		return nil
	case "hint":
		h, err := exs.Hint(id)
		if err != nil {
			return err
		}
		fmt.Println(h)
		return nil
	case "check":
		if *all {
			return classReport(ctx, exs.Lab, &prog, exs.Store, *asJSON)
		}
		res, err := exs.Check(ctx, id, *answer)
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(res)
		}
		fmt.Print(res)
		if !res.Pass {
			return errCheckFailed
		}
		return nil
	case "solve":
		return exs.Solve(ctx, id, os.Stdout)
	case "reset":
		return exs.Reset(ctx, id, os.Stdout)
	}
	return fmt.Errorf("%w: unknown exercise subcommand %q:\n%s", errUsage, sub, exerciseUsage)
}

// errCheckFailed makes a failed check exit 1 without another message.
var errCheckFailed = fmt.Errorf("check failed")

// classReport is every exercise's record; the current one is checked live
// (the others are not set up: their checks would pass on a healthy lab).
func classReport(ctx context.Context, lab exercise.Lab, prog *exercise.Progress, store exercise.Store, asJSON bool) error {
	type row struct {
		ID      string           `json:"id"`
		Module  string           `json:"module"`
		Title   string           `json:"title"`
		Current bool             `json:"current,omitempty"`
		Started time.Time        `json:"started,omitzero"`
		Passed  time.Time        `json:"passed,omitzero"`
		Solved  bool             `json:"solved,omitempty"`
		Checks  int              `json:"checks"`
		Hints   int              `json:"hints_seen,omitempty"`
		Last    *exercise.Result `json:"last,omitempty"`
	}
	var rows []row
	for _, ex := range exercise.All() {
		if ex.ID == prog.Current {
			labops.CheckOne(ctx, lab, prog, ex, "")
		}
		rec := prog.Rec(ex.ID)
		rows = append(rows, row{ID: ex.ID, Module: ex.Module, Title: ex.Title, Current: ex.ID == prog.Current,
			Started: rec.Started, Passed: rec.Passed, Solved: rec.Solved, Checks: rec.Checks, Hints: rec.HintsSeen, Last: rec.Last})
	}
	if err := store.Save(*prog); err != nil {
		return err
	}
	if asJSON {
		return writeJSON(rows)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTARTED\tPASSED\tCHECKS\tHINTS\tLAST")
	for _, r := range rows {
		last := ""
		if r.Last != nil {
			last = "FAIL"
			if r.Last.Pass {
				last = "PASS"
			}
		}
		passed := stamp(r.Passed)
		if r.Solved && r.Passed.IsZero() {
			passed = "(solved by solve)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\n", r.ID, stamp(r.Started), passed, r.Checks, r.Hints, last)
	}
	return tw.Flush()
}

func exerciseList(w io.Writer, prog exercise.Progress) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tMODULE\tTITLE\tSTATE")
	for _, ex := range exercise.All() {
		state := ""
		if rec, ok := prog.Exercises[ex.ID]; ok {
			switch {
			case !rec.Passed.IsZero():
				state = "passed " + stamp(rec.Passed)
			case !rec.Started.IsZero():
				state = "started " + stamp(rec.Started)
			}
		}
		if ex.ID == prog.Current {
			state = "* " + state
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", ex.ID, ex.Module, ex.Title, state)
	}
	return tw.Flush()
}

func exerciseDoc(args []string) error {
	fs := flag.NewFlagSet("exercise doc", flag.ContinueOnError)
	out := fs.String("o", "", "write to this file instead of stdout")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	md := exercise.Markdown()
	if *out == "" {
		_, err := io.WriteString(os.Stdout, md)
		return err
	}
	return os.WriteFile(*out, []byte(md), 0o644)
}

func writeJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("15:04:05")
}
