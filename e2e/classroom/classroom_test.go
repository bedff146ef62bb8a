// Package classroom tests the lab the way a classroom gets it: a fresh
// clone in a folder with any name, started with the plain `docker compose
// up` (Compose v2+, here v5) or `docker-compose up` (1.29) a trainer types,
// then driven by the siplab CLI from a directory outside the clone.
//
// It brings its own labs up (from clones), so it is a package of its own:
// the e2e package's TestMain keeps one lab up for all its tests. Both take
// the host-wide lab lock. The tests need Docker, root and both Compose CLIs
// (scripts/install-compose-v5.sh installs v5 as a plugin) and fail, never
// skip, without them.
package classroom

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/siplab/siplab/e2e"
	"github.com/siplab/siplab/lab/labctl"
	"github.com/siplab/siplab/uaclient"
)

// The two Compose CLIs a classroom may have, as typed.
var (
	composeV2 = []string{"docker", "compose"}
	composeV1 = []string{"docker-compose"}
	clis      = []struct {
		name string
		args []string
	}{{"v2+", composeV2}, {"1.29", composeV1}}
)

// repoRoot is the repository under test (this package is e2e/classroom).
var repoRoot string

func TestMain(m *testing.M) {
	os.Exit(setup(m))
}

func fail(format string, args ...any) int {
	fmt.Fprintf(os.Stderr, "classroom: FAIL: "+format+"\n", args...)
	return 1
}

func setup(m *testing.M) int {
	lock, err := e2e.Preflight("the lab's routers and the e2e suite do")
	if err != nil {
		return fail("%v", err)
	}
	defer lock.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	for _, want := range []struct {
		cli      []string
		min, max int // major versions
	}{{composeV2, 2, 1 << 30}, {composeV1, 1, 1}} {
		os.Setenv(labctl.ComposeEnv, strings.Join(want.cli, " "))
		c, err := labctl.ComposeCommand(ctx)
		if err != nil {
			return fail("%v (both Compose CLIs are needed; `docker compose`: scripts/install-compose-v5.sh)", err)
		}
		if c.Major() < want.min || c.Major() > want.max {
			return fail("%s is version %s, want major %d..%d", strings.Join(want.cli, " "), c.Version, want.min, want.max)
		}
		fmt.Fprintf(os.Stderr, "classroom: %s\n", c)
	}
	os.Unsetenv(labctl.ComposeEnv)
	// Never tear down somebody else's lab: refuse to start over one.
	if dir, err := labctl.LabDir(ctx); err != nil {
		return fail("%v", err)
	} else if dir != "" {
		return fail("a %s lab is already running (from %s): bring it down first (siplab down)", labctl.Project, dir)
	}
	if others, err := labctl.OtherProjects(ctx); err != nil {
		return fail("%v", err)
	} else if len(others) > 0 {
		return fail("lab containers of other Compose projects are running (%s): bring them down first", strings.Join(others, ", "))
	}
	wd, err := os.Getwd()
	if err != nil {
		return fail("%v", err)
	}
	repoRoot = filepath.Dir(filepath.Dir(wd))
	if _, err := os.Stat(filepath.Join(repoRoot, "docker-compose.yml")); err != nil {
		return fail("no docker-compose.yml two folders above %s: %v", wd, err)
	}
	return m.Run()
}

// compose runs the Compose CLI cli in dir as a trainer types it.
func compose(ctx context.Context, dir string, env, cli []string, args ...string) (string, error) {
	return run(ctx, dir, env, cli[0], append(cli[1:len(cli):len(cli)], args...)...)
}

// downAtEnd takes the lab of the clone in dir down with cli when the test
// ends, however it ends.
func downAtEnd(t *testing.T, dir string, cli []string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		compose(ctx, dir, trainerEnv(), cli, "down", "--remove-orphans", "--volumes")
	})
}

// trainerEnv is the environment of a trainer's shell: nothing of ours
// (or CI's) that would steer Compose, so the repository's .env decides.
func trainerEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case k == "LAB_TARGET", k == labctl.ComposeEnv, k == "DOCKER_BUILDKIT", strings.HasPrefix(k, "COMPOSE_"):
			continue
		}
		env = append(env, kv)
	}
	return env
}

// run executes a command in dir and returns its combined output.
func run(ctx context.Context, dir string, env []string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("%s %s (in %s): %w", name, strings.Join(args, " "), dir, err)
	}
	return out.String(), err
}

// freshClone clones the repository into parent/name: a folder named
// otherwise than "siplab", with no bin/, captures or anything ignored. The
// working tree's uncommitted files (tracked or new, not ignored) are laid
// over it, so the test sees what the next commit will hold.
func freshClone(t *testing.T, ctx context.Context, parent, name string) string {
	t.Helper()
	dst := filepath.Join(parent, name)
	if out, err := run(ctx, parent, os.Environ(), "git", "clone", "-q", "--no-hardlinks", repoRoot, dst); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	overlay := `git ls-files -z -co --exclude-standard | tar --null -T - -cf - | tar -xf - -C "$1" &&
git ls-files -z -d | (cd "$1" && xargs -0 -r rm -f --)`
	if out, err := run(ctx, repoRoot, os.Environ(), "bash", "-c", overlay, "overlay", dst); err != nil {
		t.Fatalf("overlay the working tree: %v\n%s", err, out)
	}
	for _, absent := range []string{"bin", "captures"} {
		if _, err := os.Stat(filepath.Join(dst, absent)); err == nil {
			t.Fatalf("the clone has %s/: not fresh", absent)
		}
	}
	return dst
}

// imageID is the ID siplab:latest has now ("" when there is none).
func imageID(t *testing.T, ctx context.Context) string {
	t.Helper()
	out, err := run(ctx, "/", os.Environ(), "docker", "image", "ls", "-q", "--no-trunc", "siplab:latest")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return strings.TrimSpace(out)
}

// removeImage removes siplab:latest if it exists (no lab is up: TestMain
// checked, under the lab lock).
func removeImage(t *testing.T, ctx context.Context) {
	t.Helper()
	if imageID(t, ctx) == "" {
		return
	}
	if out, err := run(ctx, "/", os.Environ(), "docker", "image", "rm", "siplab:latest"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}

// projectObjects lists containers and networks Compose made for a project.
func projectObjects(t *testing.T, ctx context.Context, project string) []string {
	t.Helper()
	filter := "label=" + labctl.LabelProject + "=" + project
	var all []string
	for _, args := range [][]string{
		{"ps", "-a", "--filter", filter, "--format", "container {{.Names}}"},
		{"network", "ls", "--filter", filter, "--format", "network {{.Name}}"},
	} {
		out, err := run(ctx, "/", os.Environ(), "docker", args...)
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if line != "" {
				all = append(all, line)
			}
		}
	}
	return all
}

// The one line a trainer must get from a fresh clone: what to run.
const (
	hintHost     = "go run ./cmd/siplab up"
	hintRegistry = "LAB_TARGET=source docker compose up --build"
)

// TestFreshCloneWithoutBinariesSaysWhatToRun: the trainer's first command
// in a fresh clone, before anything was compiled, stops at build time with
// one line naming what to run, and tags no image (no empty siplab:latest
// whose containers all fail with "exec /registrar: no such file").
func TestFreshCloneWithoutBinariesSaysWhatToRun(t *testing.T) {
	for _, c := range clis {
		cli := c.args
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
			defer cancel()
			dir := freshClone(t, ctx, t.TempDir(), "classroom-copy")
			downAtEnd(t, dir, cli)
			// A classroom machine has no lab image yet; with one, `up`
			// would start it and never build.
			removeImage(t, ctx)
			out, err := compose(ctx, dir, trainerEnv(), cli, "up", "-d")
			if err == nil {
				t.Fatalf("up in a fresh clone succeeded; want a build-time stop\n%s", out)
			}
			var hint string
			for _, line := range strings.Split(out, "\n") {
				if strings.Contains(line, hintHost) && strings.Contains(line, hintRegistry) && !strings.HasPrefix(line, "Step ") {
					hint = line
				}
			}
			if hint == "" {
				t.Fatalf("no line says %q (or %q):\n%s", hintHost, hintRegistry, out)
			}
			t.Logf("the line: %s", hint)
			if id := imageID(t, ctx); id != "" {
				t.Errorf("siplab:latest is %s after a failed build: an image was tagged", id)
			}
			// No container ever. Compose 1.29 creates the project's
			// networks before it builds (its order; `down` removes them),
			// v2+ builds first and creates nothing.
			for _, project := range []string{labctl.Project, "classroom-copy", "classroomcopy"} {
				var made []string
				for _, o := range projectObjects(t, ctx, project) {
					if c.name != "1.29" || !strings.HasPrefix(o, "network ") {
						made = append(made, o)
					}
				}
				if len(made) > 0 {
					t.Errorf("project %s: %s created although the build failed", project, strings.Join(made, ", "))
				}
			}
		})
	}
}

// TestFreshCloneSourceTargetNeedsNoBinaries: the classroom path without Go
// (LAB_TARGET=source) does not stop at the prebuilt stage's check, which
// the legacy builder runs for every target. Past it the build pulls golang:
// with no registry reachable (CI) it fails there; with one it compiles.
func TestFreshCloneSourceTargetNeedsNoBinaries(t *testing.T) {
	for _, c := range clis {
		cli := c.args
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			dir := freshClone(t, ctx, t.TempDir(), "classroom-copy")
			env := append(trainerEnv(), "LAB_TARGET=source")
			out, err := compose(ctx, dir, env, cli, "build", "router-a")
			if strings.Contains(out, "COPY failed") {
				t.Fatalf("the source build stopped at the prebuilt stage's check:\n%s", out)
			}
			if err != nil && !strings.Contains(out, "FROM golang") {
				t.Fatalf("the source build failed before reaching the golang stage: %v\n%s", err, out)
			}
			t.Logf("source build: %v (no registry here: it ends at the golang pull)", err)
		})
	}
}

// TestCloneUpFindsTheLabFromAnyDirectory: in a clone named otherwise, with
// the daemons compiled, the plain `up -d` of each Compose CLI brings the lab
// up as project "siplab"; siplab run from a third folder sees every phone
// registered, places a call with two-way audio (the lab smoke), and takes
// the lab down again, all found by the containers' labels.
func TestCloneUpFindsTheLabFromAnyDirectory(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	dir := freshClone(t, ctx, t.TempDir(), "lab-copy")
	if out, err := run(ctx, dir, os.Environ(), filepath.Join(dir, "scripts", "build-bins.sh")); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	siplab := filepath.Join(t.TempDir(), "siplab")
	if out, err := run(ctx, dir, os.Environ(), "go", "build", "-o", siplab, "./cmd/siplab"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	elsewhere := t.TempDir() // neither the clone nor the repository
	for _, c := range clis {
		cli, name := c.args, strings.Join(c.args, " ")
		t.Run(c.name, func(t *testing.T) {
			downAtEnd(t, dir, cli)
			// No image left over from another checkout: plain `up` must
			// build this clone's image itself.
			removeImage(t, ctx)
			if out, err := compose(ctx, dir, trainerEnv(), cli, "up", "-d"); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if objs := projectObjects(t, ctx, "lab-copy"); len(objs) > 0 {
				t.Errorf("%s named the project after the folder: %s", name, strings.Join(objs, ", "))
			}
			waitRegistered(t, ctx, siplab, elsewhere)
			out, err := run(ctx, elsewhere, trainerEnv(), siplab, "status")
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			for _, phone := range []string{"alice", "bob", "carol"} {
				if !shownRegistered(out, phone) {
					t.Errorf("siplab status from %s: %s not shown registered:\n%s", elsewhere, phone, out)
				}
			}
			callID := twoWayAudio(t, ctx, siplab, elsewhere)
			// The captures are found the same way: the lab's folder from
			// its labels, here the clone's captures/.
			ladderLists(t, ctx, siplab, elsewhere, callID)
			if out, err := run(ctx, elsewhere, trainerEnv(), siplab, "down"); err != nil {
				t.Fatalf("siplab down from %s: %v\n%s", elsewhere, err, out)
			}
			if objs := projectObjects(t, ctx, labctl.Project); len(objs) > 0 {
				t.Errorf("after siplab down: %s", strings.Join(objs, ", "))
			}
		})
	}
}

// shownRegistered reports whether siplab status's table row for the
// phone says it is registered.
func shownRegistered(status, phone string) bool {
	for _, line := range strings.Split(status, "\n") {
		f := strings.Fields(line)
		if len(f) > 2 && f[0] == phone && f[1] == "phone" && strings.Contains(line, "registered") && !strings.Contains(line, "unregistered") {
			return true
		}
	}
	return false
}

// waitRegistered polls `siplab status -json` from dir until every phone of
// the lab reports registered.
func waitRegistered(t *testing.T, ctx context.Context, siplab, dir string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		out, err := run(ctx, dir, trainerEnv(), siplab, "status", "-json")
		var nodes []struct {
			Name   string          `json:"name"`
			Role   string          `json:"role"`
			Daemon json.RawMessage `json:"daemon"`
		}
		phones, registered := 0, 0
		if err == nil && json.Unmarshal([]byte(out), &nodes) == nil {
			for _, n := range nodes {
				if n.Role != "phone" {
					continue
				}
				phones++
				var st uaclient.Status
				if json.Unmarshal(n.Daemon, &st) == nil && st.Registration.State == "registered" {
					registered++
				}
			}
		}
		if phones == 3 && registered == phones {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("siplab status -json from %s: %d of %d phones registered (%v)\n%s", dir, registered, phones, err, out)
		}
		time.Sleep(time.Second)
	}
}

// twoWayAudio: alice calls bob through both NATs (bob auto-answers) and
// each hears the other's tone. It returns the call's Call-ID.
func twoWayAudio(t *testing.T, ctx context.Context, siplab, dir string) string {
	t.Helper()
	out, err := run(ctx, dir, trainerEnv(), siplab, "call", "alice", "-json", "bob")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var call uaclient.CallStatus
	if err := json.Unmarshal([]byte(out), &call); err != nil {
		t.Fatalf("siplab call output: %v\n%s", err, out)
	}
	defer run(context.Background(), dir, trainerEnv(), siplab, "hangup", "alice")
	phone := func(name string) uaclient.Status {
		out, err := run(ctx, dir, trainerEnv(), siplab, "exec", name, "status", "-json")
		var st uaclient.Status
		if err == nil {
			err = json.Unmarshal([]byte(out), &st)
		}
		if err != nil {
			t.Fatalf("siplab exec %s status -json: %v\n%s", name, err, out)
		}
		return st
	}
	heard := func(st uaclient.Status) (uint64, float64) {
		for _, c := range st.Calls {
			if c.CallID == call.CallID && c.Media != nil {
				return c.Media.Received.Packets, c.ToneHz
			}
		}
		return 0, 0
	}
	near := func(a, b float64) bool { return a > b-30 && a < b+30 }
	deadline := time.Now().Add(30 * time.Second)
	for {
		a, b := phone("alice"), phone("bob")
		an, ahz := heard(a)
		bn, bhz := heard(b)
		if an > 50 && bn > 50 && near(ahz, b.ToneHz) && near(bhz, a.ToneHz) {
			t.Logf("alice heard %.0f Hz (%d packets), bob heard %.0f Hz (%d packets)", ahz, an, bhz, bn)
			return call.CallID
		}
		if time.Now().After(deadline) {
			t.Fatalf("no two-way audio: alice got %d packets (%.0f Hz, bob sends %.0f), bob got %d (%.0f Hz, alice sends %.0f)",
				an, ahz, b.ToneHz, bn, bhz, a.ToneHz)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// ladderLists: `siplab ladder -list` run from dir finds the lab's captures
// and lists the call.
func ladderLists(t *testing.T, ctx context.Context, siplab, dir, callID string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, err := run(ctx, dir, trainerEnv(), siplab, "ladder", "-list")
		if err == nil && strings.Contains(out, callID) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("siplab ladder -list from %s does not list call %s: %v\n%s", dir, callID, err, out)
		}
		time.Sleep(time.Second)
	}
}
