package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/siplab/siplab/exercise"
	"github.com/siplab/siplab/labctl"
	"github.com/siplab/siplab/uaclient"
)

// labState is what a fresh `up` looks like, as far as the exercises touch
// it: every setting of the phones, proxy, routers and SBC, one registered
// binding per phone, nobody blocked at the SBC.
type labState struct {
	Phones   map[string]map[string]string
	Proxy    string
	Routers  map[string]string
	SBC      map[string]string
	Blocked  int
	Bindings map[string]int
	Reg      map[string]string
}

func readLabState(t *testing.T, ctx context.Context, dl exercise.Lab) labState {
	t.Helper()
	p := &exercise.Probe{Lab: dl}
	st := labState{Phones: map[string]map[string]string{}, Routers: map[string]string{}, Bindings: map[string]int{}, Reg: map[string]string{}}
	for _, ph := range exercise.Phones {
		out, err := dl.Exec(ctx, ph, "get", "-json")
		if err != nil {
			t.Fatalf("%s get: %v", ph, err)
		}
		var list []uaclient.SettingInfo
		if err := json.Unmarshal(out, &list); err != nil {
			t.Fatalf("%s get: %v\n%s", ph, err, out)
		}
		m := map[string]string{}
		for _, s := range list {
			m[s.Name] = s.Value
		}
		st.Phones[ph] = m
		ps, err := p.Phone(ctx, ph)
		if err != nil {
			t.Fatal(err)
		}
		st.Reg[ph] = string(ps.Registration.State)
		bs, err := p.Bindings(ctx, ph)
		if err != nil {
			t.Fatal(err)
		}
		st.Bindings[ph] = len(bs)
	}
	var px struct {
		Settings json.RawMessage `json:"settings"`
	}
	out, err := dl.Exec(ctx, "proxy", "status", "-json")
	if err != nil || json.Unmarshal(out, &px) != nil {
		t.Fatalf("proxy status: %v\n%s", err, out)
	}
	st.Proxy = string(px.Settings)
	for _, r := range []string{"router-a", "router-b"} {
		rs, err := p.Router(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		st.Routers[r] = fmt.Sprintf("preset=%s pinhole=%s alg=%s", rs.Preset.Name, rs.Pinhole(), rs.ALG)
	}
	sb, err := p.SBC(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st.SBC, st.Blocked = sb.Settings, len(sb.Blocked)
	return st
}

// TestExercises plays every exercise as an intern and the documented
// answer would: start → the check fails with the documented symptom;
// solve → the check passes with the documented evidence; reset → the lab
// is as a fresh `up` left it. One lab bring-up (TestMain) serves them all;
// `-run 'TestExercises/08-via'` plays one.
func TestExercises(t *testing.T) {
	dl := &exercise.DockerLab{R: &labctl.Runner{Dir: lab.Root}}
	ctx := testCtx(t, 2*time.Minute)
	// Registrations settle first: a binding written by TestMain's wait is
	// the fresh state.
	fresh := readLabState(t, ctx, dl)
	for ph, n := range fresh.Bindings {
		if n != 1 || fresh.Reg[ph] != "registered" {
			t.Fatalf("fresh lab: %s has %d bindings, registration %s", ph, n, fresh.Reg[ph])
		}
	}
	if fresh.Blocked != 0 {
		t.Fatalf("fresh lab: %d sources blocked at the SBC", fresh.Blocked)
	}
	logf := func(t *testing.T) func(exercise.Step, string, error) {
		return func(s exercise.Step, out string, err error) {
			t.Logf("%s → %s %v", s, strings.TrimSpace(firstLines(out, 3)), errOrEmpty(err))
		}
	}
	for _, ex := range exercise.All() {
		t.Run(ex.ID, func(t *testing.T) {
			ctx := testCtx(t, 4*time.Minute)
			reset := func() {
				rctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				defer cancel()
				if err := exercise.Reset(rctx, dl, ex, logf(t)); err != nil {
					t.Errorf("reset: %v", err)
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
			if err := exercise.Solve(ctx, dl, ex, logf(t)); err != nil {
				reset()
				t.Fatalf("solve: %v", err)
			}
			after := exercise.RunCheck(ctx, dl, ex, since)
			t.Logf("check after solve:\n%s", after)
			if !after.Pass {
				t.Errorf("the check fails after the documented fix")
			}
			if !strings.Contains(after.String(), ex.Pass) {
				t.Errorf("the check after the fix does not show the documented evidence %q", ex.Pass)
			}
			reset()
			// A phone behind a router whose mappings were flushed takes a
			// moment to answer its re-REGISTER: wait for the state to settle.
			var got labState
			deadline := time.Now().Add(20 * time.Second)
			for {
				got = readLabState(t, ctx, dl)
				if reflect.DeepEqual(got, fresh) || time.Now().After(deadline) {
					break
				}
				time.Sleep(time.Second)
			}
			if !reflect.DeepEqual(got, fresh) {
				t.Errorf("after reset the lab differs from a fresh up:\n%s", stateDiff(got, fresh))
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

// stateDiff lists what differs, field by field.
func stateDiff(got, want labState) string {
	var out []string
	for ph, m := range want.Phones {
		for k, v := range m {
			if got.Phones[ph][k] != v {
				out = append(out, fmt.Sprintf("%s %s = %q, fresh %q", ph, k, got.Phones[ph][k], v))
			}
		}
	}
	for _, f := range []struct {
		name      string
		got, want any
	}{
		{"proxy settings", got.Proxy, want.Proxy}, {"routers", got.Routers, want.Routers}, {"sbc settings", got.SBC, want.SBC},
		{"sbc blocked", got.Blocked, want.Blocked}, {"bindings", got.Bindings, want.Bindings}, {"registration", got.Reg, want.Reg},
	} {
		if !reflect.DeepEqual(f.got, f.want) {
			out = append(out, fmt.Sprintf("%s = %v, fresh %v", f.name, f.got, f.want))
		}
	}
	return strings.Join(out, "\n")
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
