package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/siplab/siplab/exercise"
	"github.com/siplab/siplab/internal/cli/climain"
	"github.com/siplab/siplab/labctl"
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
	store := exercise.NewStore(root)
	prog, err := store.Load()
	if err != nil {
		return err
	}
	if sub == "list" {
		return exerciseList(os.Stdout, prog)
	}
	// The exercise named, or the current one.
	var ex *exercise.Exercise
	if len(pos) > 1 {
		return fmt.Errorf("%w: exercise %s takes at most one id", errUsage, sub)
	}
	id := prog.Current
	if len(pos) == 1 {
		id = pos[0]
	}
	if sub == "start" && len(pos) == 0 {
		return fmt.Errorf("%w: exercise start <id> (siplab exercise list)", errUsage)
	}
	if id != "" {
		if ex, err = exercise.Find(id); err != nil {
			return err
		}
	}
	need := func() error {
		if ex == nil {
			return fmt.Errorf("no exercise started: siplab exercise start <id> (siplab exercise list)")
		}
		return nil
	}
	lab := &exercise.DockerLab{R: &labctl.Runner{Dir: root}}
	logStep := func(s exercise.Step, out string, err error) {
		fmt.Printf("$ %s\n", s)
		if out = strings.TrimSpace(out); out != "" && len(out) < 2000 {
			fmt.Println(indent(out))
		}
		if err != nil {
			fmt.Printf("  (%v)\n", err)
		}
	}
	save := func() error { return store.Save(prog) }
	switch sub {
	case "start":
		// Every exercise starts from a fresh lab, whatever the intern
		// tried before (siplab reset: settings, bindings, mappings, blocks,
		// and a capture boundary so ladder and doctor see only this one).
		fmt.Println("resetting the lab to a fresh up (siplab reset)")
		if err := exercise.Reset(ctx, lab, nil); err != nil {
			return fmt.Errorf("reset the lab before %s: %w", ex.ID, err)
		}
		rec := prog.Rec(ex.ID)
		rec.Started, rec.HintsSeen, rec.Solved = time.Now().UTC(), 0, false
		prog.Current = ex.ID
		if err := save(); err != nil {
			return err
		}
		if err := exercise.Start(ctx, lab, ex, logStep); err != nil {
			return fmt.Errorf("start %s: %w", ex.ID, err)
		}
		printTask(os.Stdout, ex)
		return nil
	case "status":
		if err := need(); err != nil {
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
		if err := need(); err != nil {
			return err
		}
		rec := prog.Rec(ex.ID)
		if len(ex.Hints) == 0 {
			fmt.Println("no hints for this one: read the task again")
			return nil
		}
		n := min(rec.HintsSeen, len(ex.Hints)-1)
		fmt.Printf("hint %d/%d: %s\n", n+1, len(ex.Hints), ex.Hints[n])
		rec.HintsSeen = n + 1
		return save()
	case "check":
		if *all {
			return classReport(ctx, lab, &prog, store, *asJSON)
		}
		if err := need(); err != nil {
			return err
		}
		if *answer != "" && ex.Answer == nil {
			return fmt.Errorf("%w: %s asks for no answer: siplab exercise check without -answer", errUsage, ex.ID)
		}
		res := checkOne(ctx, lab, &prog, ex, *answer)
		if err := save(); err != nil {
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
		if err := need(); err != nil {
			return err
		}
		since := prog.Rec(ex.ID).Started
		ans, err := exercise.Solve(ctx, lab, ex, since, logStep)
		if err != nil {
			return fmt.Errorf("solve %s: %w", ex.ID, err)
		}
		prog.Rec(ex.ID).Solved = true
		if ans != "" {
			fmt.Printf("the answer, read off the lab: siplab exercise check -answer %q\n", ans)
		} else {
			fmt.Println("applied the documented fix: siplab exercise check")
		}
		return save()
	case "reset":
		if err := need(); err != nil {
			return err
		}
		fmt.Println("resetting the lab to a fresh up (siplab reset)")
		if err := exercise.Reset(ctx, lab, func(line string) { fmt.Println("  " + line) }); err != nil {
			return fmt.Errorf("reset %s: %w", ex.ID, err)
		}
		if prog.Current == ex.ID {
			prog.Current = ""
		}
		fmt.Printf("%s reset\n", ex.ID)
		return save()
	}
	return fmt.Errorf("%w: unknown exercise subcommand %q:\n%s", errUsage, sub, exerciseUsage)
}

// errCheckFailed makes a failed check exit 1 without another message.
var errCheckFailed = fmt.Errorf("check failed")

func checkOne(ctx context.Context, lab exercise.Lab, prog *exercise.Progress, ex *exercise.Exercise, answer string) exercise.Result {
	rec := prog.Rec(ex.ID)
	since := rec.Started
	if since.IsZero() {
		since = time.Now()
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	res := exercise.RunCheckAnswer(cctx, lab, ex, since, answer)
	rec.Checks++
	rec.Last = &res
	if res.Pass && rec.Passed.IsZero() && !rec.Solved {
		rec.Passed = res.Checked
	}
	return res
}

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
			checkOne(ctx, lab, prog, ex, "")
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

func printTask(w io.Writer, ex *exercise.Exercise) {
	fmt.Fprintf(w, "\n%s — %s (module %s)\n\n%s\n", ex.ID, ex.Title, ex.Module, ex.Task)
	if len(ex.Observe) > 0 {
		fmt.Fprintln(w, "\nWhere to look:")
		for _, o := range ex.Observe {
			fmt.Fprintf(w, "  - %s\n", o)
		}
	}
	fmt.Fprintln(w, "\nsiplab exercise check when you think it works; siplab exercise hint if stuck.")
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

func indent(s string) string {
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}
