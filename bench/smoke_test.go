// Package bench holds the benchmark scripts (figures, not tests: see
// README.md). The one test here runs the side-by-side comparison's smoke
// so CI notices when the script, the Kamailio config or the sipp scenarios
// stop working together. It asserts no performance figure: the machine it
// runs on is shared and noisy.
package bench

import (
	"context"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// ratioRow is a table row ending in a ratio: "| name | k | s | 1.23x |".
var ratioRow = regexp.MustCompile(`(?m)^\| ([^|]+) \| [^|]+ \| [^|]+ \| ([0-9]+\.[0-9]+)x \|$`)

// TestSideBySideSmoke runs `bench/sidebyside.sh -smoke` (Kamailio and
// siplab, one short step of each measurement) and fails if it fails or
// prints no ratio for any of its rows.
func TestSideBySideSmoke(t *testing.T) {
	for _, tool := range []string{"kamailio", "sipp", "ss"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the side-by-side smoke needs %s (.ci/run installs it): %v", tool, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "bash", "sidebyside.sh", "-smoke").CombinedOutput()
	if err != nil {
		t.Fatalf("sidebyside.sh -smoke: %v\n%s", err, out)
	}
	got := map[string]bool{}
	for _, m := range ratioRow.FindAllStringSubmatch(string(out), -1) {
		got[strings.Fields(m[1])[0]+" "+strings.Fields(m[1])[1]] = true
	}
	for _, want := range []string{"max calls/s,", "server CPU", "setup mean", "setup p99", "auth REGISTER/s,", "idle memory"} {
		if !got[want] {
			t.Errorf("no ratio printed for %q", want)
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", out)
	}
}
