package exercise

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDocsAreGeneratedFromTheDefinitions(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "exercises.md"))
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != Markdown() {
		t.Fatal("docs/exercises.md is stale: run `go generate ./lab/exercise` (siplab exercise doc -o docs/exercises.md)")
	}
}

func TestEveryExerciseIsComplete(t *testing.T) {
	seen := map[string]bool{}
	for _, ex := range All() {
		if seen[ex.ID] {
			t.Errorf("%s: duplicate id", ex.ID)
		}
		seen[ex.ID] = true
		if ex.Module == "" || ex.Title == "" || ex.Task == "" || ex.Check == nil || len(ex.Fix) == 0 ||
			ex.Symptom == "" || ex.Pass == "" {
			t.Errorf("%s: incomplete: %+v", ex.ID, ex)
		}
		for _, group := range [][]Step{ex.Setup, ex.Fix} {
			for _, s := range group {
				if s.Wait > 0 {
					continue
				}
				args, err := splitArgs(s.Cmd)
				if err != nil || len(args) < 2 {
					t.Errorf("%s: step %q: %v", ex.ID, s.Cmd, err)
				}
			}
		}
	}
	if len(seen) < 10 {
		t.Errorf("only %d exercises", len(seen))
	}
	if _, err := Find("no-such"); !errors.Is(err, ErrUnknown) {
		t.Errorf("Find(no-such) = %v", err)
	}
}

func TestSplitArgs(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		err  bool
	}{
		{"set alice rport off", []string{"set", "alice", "rport", "off"}, false},
		{`attack sbc register -user-agent "Grandstream GXP2170" -count 4`, []string{"attack", "sbc", "register", "-user-agent", "Grandstream GXP2170", "-count", "4"}, false},
		{`exec alice message bob ""`, []string{"exec", "alice", "message", "bob", ""}, false},
		{`call "alice`, nil, true},
	} {
		got, err := splitArgs(tc.in)
		if (err != nil) != tc.err || (!tc.err && !reflect.DeepEqual(got, tc.want)) {
			t.Errorf("splitArgs(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// recorder is a Lab that records the daemon commands a step turns into.
type recorder struct{ calls []string }

func (r *recorder) Exec(_ context.Context, node string, args ...string) ([]byte, error) {
	r.calls = append(r.calls, node+": "+strings.Join(args, " "))
	if len(args) > 0 && args[0] == "hangup" {
		return nil, errors.New("no call")
	}
	return []byte("ok"), nil
}

func (r *recorder) CaptureDir() string { return "" }

func (r *recorder) Reset(context.Context, func(string)) error {
	r.calls = append(r.calls, "reset")
	return nil
}

func (r *recorder) Attack(_ context.Context, node string, args ...string) ([]byte, error) {
	r.calls = append(r.calls, "attack "+node+": "+strings.Join(args, " "))
	return nil, nil
}

func TestStepsBecomeDaemonCommands(t *testing.T) {
	rec := &recorder{}
	steps := []Step{
		Run("set router-a alg off"),
		Run("call alice bob"),
		Run("exec alice register -timeout 6s"),
		Run(`attack sbc register -user bob -user-agent "Grandstream GXP2170"`),
		Pause(time.Millisecond, ""),
	}
	if err := RunSteps(context.Background(), rec, steps, nil); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"router-a: set alg off",
		"alice: call bob",
		"alice: register -timeout 6s",
		"attack sbc: register -user bob -user-agent Grandstream GXP2170",
	}
	if !reflect.DeepEqual(rec.calls, want) {
		t.Errorf("got %q\nwant %q", rec.calls, want)
	}
	if _, err := RunStep(context.Background(), rec, Run("frobnicate alice")); err == nil {
		t.Error("unknown command accepted")
	}
	if _, err := RunStep(context.Background(), rec, Run("set alice rport")); err == nil {
		t.Error("set without a value accepted")
	}
}

func TestProgressSurvivesAReload(t *testing.T) {
	s := Store{Path: filepath.Join(t.TempDir(), "captures", ProgressFile)}
	p, err := s.Load()
	if err != nil || len(p.Exercises) != 0 {
		t.Fatalf("empty store: %+v %v", p, err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	p.Current = "08-via"
	p.Rec("08-via").Started = now
	p.Rec("08-via").Last = &Result{ID: "08-via", Pass: true, Evidence: []string{"ok"}}
	if err := s.Save(p); err != nil {
		t.Fatal(err)
	}
	q, err := s.Load()
	if err != nil || q.Current != "08-via" || !q.Rec("08-via").Started.Equal(now) || !q.Rec("08-via").Last.Pass {
		t.Fatalf("reloaded %+v %v", q, err)
	}
	if err := os.WriteFile(s.Path, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(); err == nil {
		t.Error("a corrupt progress file loaded without error")
	}
}

func TestFlowLabelsAndOrder(t *testing.T) {
	for _, tc := range []struct{ msg, want string }{
		{"INVITE sip:bob@siplab.test SIP/2.0\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n\r\n", "INVITE"},
		{"INVITE sip:bob@siplab.test SIP/2.0\r\nProxy-Authorization: Digest x\r\nCSeq: 2 INVITE\r\n\r\n", "INVITE+auth"},
		{"SIP/2.0 407 Proxy Authentication Required\r\nCSeq: 1 INVITE\r\n\r\n", "407 INVITE"},
		{"SIP/2.0 200 OK\r\nCSeq: 3 CANCEL\r\n\r\n", "200 CANCEL"},
		{"garbage", "?"},
	} {
		if got := flowLabel([]byte(tc.msg)); got != tc.want {
			t.Errorf("flowLabel(%q) = %q, want %q", tc.msg, got, tc.want)
		}
	}
	got := []string{"INVITE", "100 INVITE", "407 INVITE", "ACK", "INVITE+auth", "180 INVITE", "486 INVITE", "ACK"}
	if !subsequence(got, []string{"INVITE+auth", "180 INVITE", "486 INVITE", "ACK"}) {
		t.Error("busy flow not found")
	}
	if subsequence(got, []string{"486 INVITE", "180 INVITE"}) {
		t.Error("out-of-order flow accepted")
	}
}
