package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/siplab/siplab/lab/exercise"
	"github.com/siplab/siplab/lab/labctl"
)

// TestExercises plays every exercise as an intern and the documented
// answer would: start → the check fails with the documented symptom;
// solve → the check passes with the documented evidence; reset (siplab
// reset) → every daemon's settings and state equal the snapshot taken
// right after a fresh reset (labSnapshot), with a line per difference.
// One lab bring-up (TestMain) serves them all; `-run 'TestExercises/08-via'`
// plays one.
func TestExercises(t *testing.T) {
	r := &labctl.Runner{Dir: lab.Root}
	dl := &exercise.DockerLab{R: r}
	ctx := testCtx(t, 2*time.Minute)
	fresh := freshSnapshot(t, ctx, r, dl)
	logf := func(t *testing.T) func(exercise.Step, string, error) {
		return func(s exercise.Step, out string, err error) {
			t.Logf("%s → %s %v", s, strings.TrimSpace(firstLines(out, 3)), errOrEmpty(err))
		}
	}
	for _, ex := range exercise.All() {
		t.Run(ex.ID, func(t *testing.T) {
			ctx := testCtx(t, 4*time.Minute)
			reset := func() {
				rctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				if err := exercise.Reset(rctx, dl, nil); err != nil {
					t.Errorf("siplab reset: %v", err)
				}
			}
			since := time.Now()
			if err := exercise.Start(ctx, dl, ex, logf(t)); err != nil {
				reset()
				t.Fatalf("start: %v", err)
			}
			before := exercise.RunCheck(ctx, dl, ex, since)
			t.Logf("check after start:\n%s", before)
			if before.Pass {
				t.Errorf("the check passes before the fix")
			}
			if !strings.Contains(before.String(), ex.Symptom) {
				t.Errorf("the check before the fix does not show the documented symptom %q", ex.Symptom)
			}
			answer, err := exercise.Solve(ctx, dl, ex, since, logf(t))
			if err != nil {
				reset()
				t.Fatalf("solve: %v", err)
			}
			if ex.Answer != nil {
				// A wrong answer fails, whatever the lab does.
				if wrong := exercise.RunCheckAnswer(ctx, dl, ex, since, "no-such-call-id 198.51.100.9:1"); wrong.Pass {
					t.Errorf("a wrong answer passes:\n%s", wrong)
				}
			}
			after := exercise.RunCheckAnswer(ctx, dl, ex, since, answer)
			t.Logf("check after solve (answer %q):\n%s", answer, after)
			if !after.Pass {
				t.Errorf("the check fails after the documented fix")
			}
			if !strings.Contains(after.String(), ex.Pass) {
				t.Errorf("the check after the fix does not show the documented evidence %q", ex.Pass)
			}
			begin := time.Now()
			reset()
			// Reset returns once every phone is registered; what settles
			// after that (a binding refreshed through a new mapping) gets
			// a few seconds.
			var got labSnapshot
			for deadline := time.Now().Add(15 * time.Second); ; {
				if got, err = takeSnapshot(ctx, r, dl); err != nil {
					t.Fatal(err)
				}
				if got.diff(fresh) == "" || time.Now().After(deadline) {
					break
				}
				time.Sleep(500 * time.Millisecond)
			}
			t.Logf("reset and settled in %s", time.Since(begin).Round(100*time.Millisecond))
			if d := got.diff(fresh); d != "" {
				t.Errorf("after siplab reset the lab differs from a fresh one:\n%s", d)
			}
		})
	}
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, " | ")
}

func errOrEmpty(err error) string {
	if err == nil {
		return ""
	}
	return "(" + err.Error() + ")"
}

// TestExerciseCLI drives one exercise through `siplab exercise` as an
// intern types it: start (a lab reset first), a failing check, hint,
// solve, a passing check, the class report and reset; the progress lands
// in the lab's capture folder.
func TestExerciseCLI(t *testing.T) {
	ctx := testCtx(t, 4*time.Minute)
	bin := filepath.Join(t.TempDir(), "siplab")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "../cmd/siplab").CombinedOutput(); err != nil {
		t.Fatalf("build siplab: %v\n%s", err, out)
	}
	progress := filepath.Join(lab.Root, "captures", exercise.ProgressFile)
	_ = os.Remove(progress)
	t.Cleanup(func() { _ = os.Remove(progress) })
	run := func(wantOK bool, args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, bin, append([]string{"exercise"}, args...)...)
		cmd.Dir = lab.Root
		out, err := cmd.CombinedOutput()
		t.Logf("siplab exercise %s:\n%s", strings.Join(args, " "), out)
		if (err == nil) != wantOK {
			t.Fatalf("siplab exercise %s: err %v, want ok=%v", strings.Join(args, " "), err, wantOK)
		}
		return string(out)
	}
	const id = "07-wrong-password"
	out := run(true, "start", id)
	if !strings.Contains(out, "resetting the lab") || !strings.Contains(out, "401 again, forever") {
		t.Errorf("start did not reset the lab and print the task")
	}
	if out := run(false, "check"); !strings.Contains(out, "FAIL "+id) {
		t.Errorf("check before the fix: %s", out)
	}
	if out := run(false, "check", "-answer", "42"); !strings.Contains(out, "asks for no answer") {
		t.Errorf("check -answer on an exercise that asks for none: %s", out)
	}
	if out := run(true, "hint"); !strings.Contains(out, "hint 1/") {
		t.Errorf("hint: %s", out)
	}
	run(true, "solve")
	if out := run(true, "check"); !strings.Contains(out, "PASS "+id) {
		t.Errorf("check after the fix: %s", out)
	}
	var rows []struct {
		ID      string
		Current bool
		Started time.Time
		Solved  bool
		Checks  int
		Last    *exercise.Result
	}
	if err := json.Unmarshal([]byte(run(true, "check", "-all", "-json")), &rows); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range rows {
		if r.ID == id {
			found = true
			if !r.Current || r.Started.IsZero() || !r.Solved || r.Checks < 3 || r.Last == nil || !r.Last.Pass {
				t.Errorf("class report row %+v", r)
			}
		}
	}
	if !found || len(rows) != len(exercise.All()) {
		t.Errorf("class report: %d rows, %s found %v", len(rows), id, found)
	}
	run(true, "reset")
	if out := run(true, "list"); !strings.Contains(out, id) || strings.Contains(out, "* ") {
		t.Errorf("list after reset still has a current exercise:\n%s", out)
	}
	if _, err := os.Stat(progress); err != nil {
		t.Errorf("progress not kept in the lab's capture folder: %v", err)
	}
}
