package e2e

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The doctor reads the running lab's settings as well as its captures:
// bob with keep-alives off behind a 10 s pinhole is a call that will fail,
// before any capture can show it; putting the keep-alives back clears it.
func TestDoctorWarnsOfAPinholeFromLabState(t *testing.T) {
	ctx := testCtx(t, 3*time.Minute)
	bin := filepath.Join(t.TempDir(), "siplab")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/siplab")
	build.Dir = lab.Root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/siplab: %v\n%s", err, out)
	}
	doctor := func() string {
		t.Helper()
		cmd := exec.CommandContext(ctx, bin, "doctor")
		cmd.Dir = lab.Root
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("siplab doctor: %v\n%s", err, out)
		}
		return string(out)
	}
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
