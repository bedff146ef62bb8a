package e2e

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/siplab/siplab/uaclient"
)

// buildSiplab compiles the host CLI for a test.
func buildSiplab(t *testing.T, ctx context.Context) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "siplab")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/siplab")
	build.Dir = lab.Root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/siplab: %v\n%s", err, out)
	}
	return bin
}

// freshLab puts the lab back as `siplab up` left it (`siplab reset`): a
// test before this one may have flushed a router's mappings on purpose,
// and the doctor's state rules would rightly name the phones cut off.
func freshLab(t *testing.T, ctx context.Context) {
	t.Helper()
	if _, err := runner().Reset(ctx, nil); err != nil {
		t.Fatalf("siplab reset: %v", err)
	}
}

// doctorSays runs `siplab doctor -since 1s` and returns what it printed.
// The state rules warn; only an error in the captures (whatever earlier
// tests left there) exits 1: read the output either way.
func doctorSays(t *testing.T, ctx context.Context, bin string) string {
	t.Helper()
	cmd := exec.CommandContext(ctx, bin, "doctor", "-since", "1s")
	cmd.Dir = lab.Root
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("siplab doctor: %v\n%s", err, out)
	}
	return string(out)
}

// A good call on a healthy lab leaves the doctor nothing to say: it reads
// every capture point's file (keep-alives, the SBC's OPTIONS pings to the
// carrier, registrations, the call) and exits 0 with no finding. -since
// keeps it to what happened during this test, so a test before it that
// broke something on purpose does not count.
func TestDoctorSilentAfterGoodCall(t *testing.T) {
	ctx := testCtx(t, 3*time.Minute)
	bin := buildSiplab(t, ctx)
	freshLab(t, ctx)
	start := time.Now()
	a := placeCall(t, ctx, "alice", "bob", uaclient.StateConfirmed)
	if a.State != uaclient.StateConfirmed {
		t.Fatalf("alice → bob: %s %d %s", a.State, a.Code, a.Reason)
	}
	time.Sleep(3 * time.Second)
	hangup(t, ctx, "alice", a.ID)
	// The capture files are written as packets arrive; give the BYE's
	// answer a moment to land in every node's file.
	time.Sleep(2 * time.Second)
	since := time.Since(start) + 5*time.Second
	cmd := exec.CommandContext(ctx, bin, "doctor", "-since", since.Round(time.Second).String())
	cmd.Dir = lab.Root
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		t.Fatalf("siplab doctor exited %d after a good call:\n%s", exit.ExitCode(), out)
	} else if err != nil {
		t.Fatalf("siplab doctor: %v\n%s", err, out)
	}
	if !strings.HasPrefix(string(out), "no findings in ") {
		t.Errorf("siplab doctor found something after a good call:\n%s", out)
	}
	// The call itself is one numbered call whose ladder the doctor read.
	ladder := exec.CommandContext(ctx, bin, "ladder", "-list")
	ladder.Dir = lab.Root
	list, err := ladder.CombinedOutput()
	if err != nil || !strings.Contains(string(list), a.CallID) {
		t.Errorf("siplab ladder -list does not list the call %s: %v\n%s", a.CallID, err, list)
	}
	t.Logf("siplab doctor -since %s:\n%s", since.Round(time.Second), out)
}

// The doctor reads the running lab's settings as well as its captures:
// bob with keep-alives off behind a 10 s pinhole is a call that will fail,
// before any capture can show it; putting the keep-alives back clears it.
func TestDoctorWarnsOfAPinholeFromLabState(t *testing.T) {
	ctx := testCtx(t, 3*time.Minute)
	bin := buildSiplab(t, ctx)
	freshLab(t, ctx)
	doctor := func() string { return doctorSays(t, ctx, bin) }
	if out := doctor(); strings.Contains(out, "[state-") {
		t.Fatalf("the lab's defaults should raise no state finding:\n%s", out)
	}
	// bob's and carol's mappings lapse under the 10 s pinhole.
	reRegisterAtEnd(t, "bob", "carol")
	setPhone(t, ctx, "bob", "keepalive", "off")
	old := routerStatus(t, ctx, "router-b").Pinhole()
	setRouter(t, ctx, "router-b", "pinhole", "10s")
	t.Cleanup(func() { setRouter(t, context.Background(), "router-b", "pinhole", old.String()) })
	out := doctor()
	if !strings.Contains(out, "[state-pinhole]") || !strings.Contains(out, "bob's NAT mapping at router-b lapses after 10s") {
		t.Fatalf("doctor did not warn of bob's pinhole:\n%s", out)
	}
	// carol keeps her keep-alives, but every 20 s: too slow for 10 s.
	if !strings.Contains(out, "carol's NAT mapping at router-b") {
		t.Errorf("carol's 20 s keep-alives cannot hold a 10 s pinhole:\n%s", out)
	}
	if strings.Contains(out, "alice's NAT mapping") {
		t.Errorf("alice's router kept its pinhole:\n%s", out)
	}
}
