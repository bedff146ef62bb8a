package labops

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/siplab/siplab/lab/exercise"
	"github.com/siplab/siplab/lab/labctl"
)

// Exercises drives the live exercises of the lab rooted at Root: the same
// steps for `siplab exercise ...` and the console's exercise panel. Each
// call loads and saves the progress file, so the two can take turns.
type Exercises struct {
	Root  string
	Store exercise.Store
	Lab   *exercise.DockerLab
}

// OpenExercises is the exercises of the lab rooted at root.
func OpenExercises(root string) *Exercises {
	return &Exercises{Root: root, Store: exercise.NewStore(root), Lab: &exercise.DockerLab{R: &labctl.Runner{Dir: root}}}
}

// ErrNoExercise is returned when no id is given and none is started.
var ErrNoExercise = fmt.Errorf("no exercise started: siplab exercise start <id> (siplab exercise list)")

// Pick is the exercise named by id, or the current one when id is "".
func (e *Exercises) Pick(prog exercise.Progress, id string) (*exercise.Exercise, error) {
	if id == "" {
		id = prog.Current
	}
	if id == "" {
		return nil, ErrNoExercise
	}
	return exercise.Find(id)
}

// load reads the progress and picks exercise id (or the current one).
func (e *Exercises) load(id string) (exercise.Progress, *exercise.Exercise, error) {
	prog, err := e.Store.Load()
	if err != nil {
		return prog, nil, err
	}
	ex, err := e.Pick(prog, id)
	return prog, ex, err
}

// StepLogger writes each step of a start, solve or reset the way the CLI
// shows it: the command, its output indented, its error.
func StepLogger(w io.Writer) func(exercise.Step, string, error) {
	return func(s exercise.Step, out string, err error) {
		fmt.Fprintf(w, "$ %s\n", s)
		if out = strings.TrimSpace(out); out != "" && len(out) < 2000 {
			fmt.Fprintln(w, Indent(out))
		}
		if err != nil {
			fmt.Fprintf(w, "  (%v)\n", err)
		}
	}
}

// Indent indents every line of s by two spaces.
func Indent(s string) string {
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}

// Start sets exercise id up (ends the current one first) from a fresh lab
// and writes its steps and task to w.
func (e *Exercises) Start(ctx context.Context, id string, w io.Writer) (*exercise.Exercise, error) {
	if id == "" {
		return nil, fmt.Errorf("%w: exercise start <id> (siplab exercise list)", ErrUsage)
	}
	ex, err := exercise.Find(id)
	if err != nil {
		return nil, err
	}
	prog, err := e.Store.Load()
	if err != nil {
		return nil, err
	}
	// Every exercise starts from a fresh lab, whatever the intern tried
	// before (siplab reset: settings, bindings, mappings, blocks, and a
	// capture boundary so ladder and doctor see only this one).
	fmt.Fprintln(w, "resetting the lab to a fresh up (siplab reset)")
	if err := exercise.Reset(ctx, e.Lab, nil); err != nil {
		return nil, fmt.Errorf("reset the lab before %s: %w", ex.ID, err)
	}
	rec := prog.Rec(ex.ID)
	rec.Started, rec.HintsSeen, rec.Solved = time.Now().UTC(), 0, false
	prog.Current = ex.ID
	if err := e.Store.Save(prog); err != nil {
		return nil, err
	}
	if err := exercise.Start(ctx, e.Lab, ex, StepLogger(w)); err != nil {
		return nil, fmt.Errorf("start %s: %w", ex.ID, err)
	}
	WriteTask(w, ex)
	return ex, nil
}

// WriteTask writes an exercise's task and where to look.
func WriteTask(w io.Writer, ex *exercise.Exercise) {
	fmt.Fprintf(w, "\n%s — %s (module %s)\n\n%s\n", ex.ID, ex.Title, ex.Module, ex.Task)
	if len(ex.Observe) > 0 {
		fmt.Fprintln(w, "\nWhere to look:")
		for _, o := range ex.Observe {
			fmt.Fprintf(w, "  - %s\n", o)
		}
	}
	fmt.Fprintln(w, "\nsiplab exercise check when you think it works; siplab exercise hint if stuck.")
}

// Hint is the next hint of exercise id (or the current one), counted as seen.
func (e *Exercises) Hint(id string) (string, error) {
	prog, ex, err := e.load(id)
	if err != nil {
		return "", err
	}
	rec := prog.Rec(ex.ID)
	if len(ex.Hints) == 0 {
		return "no hints for this one: read the task again", nil
	}
	n := min(rec.HintsSeen, len(ex.Hints)-1)
	rec.HintsSeen = n + 1
	return fmt.Sprintf("hint %d/%d: %s", n+1, len(ex.Hints), ex.Hints[n]), e.Store.Save(prog)
}

// Check reads the live lab for exercise id (or the current one) and
// records the result. answer is the intern's value for an exercise that
// asks for one read off the lab (02-anatomy), "" otherwise.
func (e *Exercises) Check(ctx context.Context, id, answer string) (exercise.Result, error) {
	prog, ex, err := e.load(id)
	if err != nil {
		return exercise.Result{}, err
	}
	if answer != "" && ex.Answer == nil {
		return exercise.Result{}, fmt.Errorf("%w: %s asks for no answer: siplab exercise check without -answer", ErrUsage, ex.ID)
	}
	res := CheckOne(ctx, e.Lab, &prog, ex, answer)
	return res, e.Store.Save(prog)
}

// CheckOne runs one exercise's check against the lab and records it in prog.
func CheckOne(ctx context.Context, lab exercise.Lab, prog *exercise.Progress, ex *exercise.Exercise, answer string) exercise.Result {
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

// Solve applies exercise id's documented fix, writing its steps to w.
func (e *Exercises) Solve(ctx context.Context, id string, w io.Writer) error {
	prog, ex, err := e.load(id)
	if err != nil {
		return err
	}
	ans, err := exercise.Solve(ctx, e.Lab, ex, prog.Rec(ex.ID).Started, StepLogger(w))
	if err != nil {
		return fmt.Errorf("solve %s: %w", ex.ID, err)
	}
	prog.Rec(ex.ID).Solved = true
	if ans != "" {
		fmt.Fprintf(w, "the answer, read off the lab: siplab exercise check -answer %q\n", ans)
	} else {
		fmt.Fprintln(w, "applied the documented fix: siplab exercise check")
	}
	return e.Store.Save(prog)
}

// Reset is siplab reset (the whole lab as a fresh up: nothing an intern
// tried escapes it); exercise id (or the current one) is no longer current.
func (e *Exercises) Reset(ctx context.Context, id string, w io.Writer) error {
	prog, ex, err := e.load(id)
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "resetting the lab to a fresh up (siplab reset)")
	if err := exercise.Reset(ctx, e.Lab, func(line string) { fmt.Fprintln(w, "  "+line) }); err != nil {
		return fmt.Errorf("reset %s: %w", ex.ID, err)
	}
	if prog.Current == ex.ID {
		prog.Current = ""
	}
	fmt.Fprintf(w, "%s reset\n", ex.ID)
	return e.Store.Save(prog)
}
