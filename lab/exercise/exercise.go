// Package exercise holds the training page's exercises as code: each one
// is data (the task, the setup it applies, where to see the symptom,
// hints, the documented fix, how to put the lab back) plus a check that
// reads the live lab — phone statistics, registrations, router and SBC
// state, probe calls — and never compares settings, so an intern who fixes
// a fault another valid way passes too.
//
// Steps are siplab command lines ("set alice sdp_addr local"): the same
// text is printed in docs/exercises.md, typed by the intern and run by
// `siplab exercise solve`, so the three cannot drift apart.
package exercise

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Step is one thing the intern does: a siplab command line (without the
// leading "siplab") or, when Wait is set, a pause.
type Step struct {
	Cmd  string
	Wait time.Duration
	// Expect is what the command prints or what happens, for the docs.
	Expect string
	// MayFail marks a step whose failure is the point (a REGISTER with a
	// wrong password): solve and start go on after it.
	MayFail bool
}

// Run is a step that runs a siplab command.
func Run(cmd string) Step { return Step{Cmd: cmd} }

// RunExpect is a step with what it should print.
func RunExpect(cmd, expect string) Step { return Step{Cmd: cmd, Expect: expect} }

// Fails is a step expected to fail (its failure is the symptom).
func Fails(cmd, expect string) Step { return Step{Cmd: cmd, Expect: expect, MayFail: true} }

// Try is a step whose failure does not matter (waiting for a call that
// may not exist).
func Try(cmd, expect string) Step { return Step{Cmd: cmd, Expect: expect, MayFail: true} }

// Pause waits d.
func Pause(d time.Duration, why string) Step { return Step{Wait: d, Expect: why} }

// String is the step as the intern types it.
func (s Step) String() string {
	if s.Wait > 0 {
		return fmt.Sprintf("(wait %s)", s.Wait)
	}
	return "siplab " + s.Cmd
}

// Exercise is one live exercise.
type Exercise struct {
	ID     string // "08-via"
	Module string // "08 NAT traversal"
	Title  string
	// Task is what the intern is asked to do, in a few sentences.
	Task string
	// Setup breaks the lab (applied by start); empty for exercises whose
	// task is to produce something (a response code, a call flow).
	Setup []Step
	// Observe says where the symptom shows: which command, which ladder or
	// doctor finding.
	Observe []string
	Hints   []string
	// Fix is the documented fix, what `solve` applies. Nothing undoes
	// Setup and Fix step by step: `siplab exercise reset` is the lab's
	// reset (labctl.Runner.Reset), which nothing an intern tries escapes.
	Fix []Step
	// Symptom is what the check prints before the fix; Pass what it
	// prints after (docs).
	Symptom, Pass string
	// Check reads the live lab.
	Check func(ctx context.Context, p *Probe) Result
	// Answer, for an exercise whose task is to read a value off the live
	// lab, reads it the way the documented answer does: `solve` prints it
	// and the check compares the intern's -answer (Probe.Answer) with the
	// lab, never with this.
	Answer func(ctx context.Context, p *Probe) (string, error)
}

// Result is one check's outcome with the evidence read from the lab.
type Result struct {
	ID       string    `json:"id"`
	Pass     bool      `json:"pass"`
	Evidence []string  `json:"evidence"`
	Checked  time.Time `json:"checked"`
}

func (r *Result) add(format string, args ...any) {
	r.Evidence = append(r.Evidence, fmt.Sprintf(format, args...))
}

// require records a condition: Pass stays true only if every one held.
func (r *Result) require(ok bool, format string, args ...any) bool {
	mark := "ok  "
	if !ok {
		mark = "FAIL"
		r.Pass = false
	}
	r.add(mark+" "+format, args...)
	return ok
}

// noError records a failed read (a node's status, a capture) as a failed
// requirement; false when err is not nil.
func (r *Result) noError(err error) bool {
	return err == nil || r.require(false, "%v", err)
}

func newResult() Result { return Result{Pass: true} }

// String prints a result for people.
func (r Result) String() string {
	var b strings.Builder
	verdict := "FAIL"
	if r.Pass {
		verdict = "PASS"
	}
	fmt.Fprintf(&b, "%s %s\n", verdict, r.ID)
	for _, e := range r.Evidence {
		fmt.Fprintf(&b, "  %s\n", e)
	}
	return b.String()
}

var registry []*Exercise

func register(ex ...*Exercise) { registry = append(registry, ex...) }

// All lists the exercises in module order.
func All() []*Exercise {
	out := slices.Clone(registry)
	slices.SortStableFunc(out, func(a, b *Exercise) int {
		if c := strings.Compare(a.Module, b.Module); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// ErrUnknown is returned for an exercise id that does not exist.
var ErrUnknown = errors.New("exercise: unknown exercise")

// Find returns the exercise with id.
func Find(id string) (*Exercise, error) {
	for _, ex := range registry {
		if ex.ID == id {
			return ex, nil
		}
	}
	ids := make([]string, 0, len(registry))
	for _, ex := range All() {
		ids = append(ids, ex.ID)
	}
	return nil, fmt.Errorf("%w %q (known: %s)", ErrUnknown, id, strings.Join(ids, ", "))
}

// RunCheck runs ex's check against the lab, stamping the result.
func RunCheck(ctx context.Context, lab Lab, ex *Exercise, since time.Time) Result {
	return RunCheckAnswer(ctx, lab, ex, since, "")
}

// RunCheckAnswer is RunCheck with the intern's answer (check -answer).
func RunCheckAnswer(ctx context.Context, lab Lab, ex *Exercise, since time.Time, answer string) Result {
	p := &Probe{Lab: lab, Since: since, Answer: answer}
	r := ex.Check(ctx, p)
	r.ID = ex.ID
	r.Checked = time.Now().UTC()
	if ctx.Err() != nil {
		r.Pass = false
		r.add("FAIL the check ran out of time: %v", ctx.Err())
	}
	return r
}

// RunSteps runs steps in order, reporting each to log (nil = quiet). A
// failing step stops the run unless it is marked MayFail.
func RunSteps(ctx context.Context, lab Lab, steps []Step, log func(step Step, out string, err error)) error {
	for _, s := range steps {
		out, err := RunStep(ctx, lab, s)
		if log != nil {
			log(s, out, err)
		}
		if err != nil && !s.MayFail {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

// phoneVerbs are the siplab commands that run on a phone (or the carrier).
var phoneVerbs = []string{"call", "answer", "reject", "cancel", "hangup", "dtmf", "options"}

// RunStep runs one step against the lab.
func RunStep(ctx context.Context, lab Lab, s Step) (string, error) {
	if s.Wait > 0 {
		select {
		case <-time.After(s.Wait):
			return "", nil
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	args, err := splitArgs(s.Cmd)
	if err != nil {
		return "", err
	}
	if len(args) > 0 && args[0] == "webphone" {
		b, ok := lab.(BrowserLab)
		if !ok {
			return "", fmt.Errorf("exercise: step %q: this lab has no browser site", s.Cmd)
		}
		out, err := b.WebPhone(ctx, args[1:]...)
		return string(out), err
	}
	if len(args) < 2 {
		return "", fmt.Errorf("exercise: step %q: want a command and a node", s.Cmd)
	}
	verb, node, rest := args[0], args[1], args[2:]
	var out []byte
	switch {
	case verb == "set":
		if len(rest) != 2 {
			return "", fmt.Errorf("exercise: step %q: set <node> <setting> <value>", s.Cmd)
		}
		out, err = lab.Exec(ctx, node, "set", rest[0], rest[1])
	case verb == "exec":
		out, err = lab.Exec(ctx, node, rest...)
	case verb == "attack":
		if rest, err = AttackArgs(lab, rest); err != nil {
			return "", err
		}
		out, err = lab.Attack(ctx, node, rest...)
	case slices.Contains(phoneVerbs, verb):
		out, err = lab.Exec(ctx, node, append([]string{verb}, rest...)...)
	default:
		return "", fmt.Errorf("exercise: step %q: unknown command %q", s.Cmd, verb)
	}
	return string(out), err
}

// splitArgs splits a command line at spaces, keeping "double quoted"
// arguments together (the steps are written like a shell line).
func splitArgs(line string) ([]string, error) {
	var args []string
	var cur strings.Builder
	inQuote, have := false, false
	for _, r := range line {
		switch {
		case r == '"':
			inQuote = !inQuote
			have = true
		case r == ' ' && !inQuote:
			if have {
				args = append(args, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteRune(r)
			have = true
		}
	}
	if inQuote {
		return nil, fmt.Errorf("exercise: unbalanced quote in %q", line)
	}
	if have {
		args = append(args, cur.String())
	}
	return args, nil
}

// HangUpAll ends every call on the lab's phones (each hangup ends the
// newest live call; a phone with none answers with an error).
func HangUpAll(ctx context.Context, lab Lab) {
	for _, ph := range Phones {
		for range 4 {
			if _, err := lab.Exec(ctx, ph, "hangup", "-timeout", "3s"); err != nil {
				break
			}
		}
	}
}

// Start sets ex up: every call ended, then its setup steps.
func Start(ctx context.Context, lab Lab, ex *Exercise, log func(Step, string, error)) error {
	HangUpAll(ctx, lab)
	return RunSteps(ctx, lab, ex.Setup, log)
}

// Solve applies ex's documented fix. For an exercise answered with a
// value, it returns the value read off the lab after the fix ("" for the
// others).
func Solve(ctx context.Context, lab Lab, ex *Exercise, since time.Time, log func(Step, string, error)) (string, error) {
	if err := RunSteps(ctx, lab, ex.Fix, log); err != nil || ex.Answer == nil {
		return "", err
	}
	return ex.Answer(ctx, &Probe{Lab: lab, Since: since})
}

// Reset puts the whole lab back to a fresh `up` (siplab reset): whatever
// the exercise's setup, its fix or the intern's own attempts changed.
func Reset(ctx context.Context, lab Lab, progress func(string)) error {
	return lab.Reset(ctx, progress)
}
