package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/siplab/siplab/lab/scenario"
	"github.com/siplab/siplab/trace/ladder"
)

// scenarioNames is the lab's address plan for the ladder's columns.
func scenarioNames() ladder.Names { return ladder.Lab() }

// Every training-page call flow plays in one command and its ladder shows
// the messages the page draws: busy → 486 + ACK, cancel → CANCEL/200/487/
// ACK, no-ack → repeated 200 OK then BYE, ...
func TestScenariosShowTheirMessages(t *testing.T) {
	for _, s := range scenario.List() {
		t.Run(s.Name, func(t *testing.T) {
			ctx := testCtx(t, s.Takes+2*time.Minute)
			var out strings.Builder
			res, err := scenario.Run(ctx, scenario.Config{Runner: runner(), Names: scenarioNames(), Out: &out}, s.Name)
			t.Logf("commands:\n%s", out.String())
			if err != nil {
				t.Fatalf("%s: %v", s.Name, err)
			}
			t.Logf("seen: %s", strings.Join(res.Seen, " → "))
			if !res.OK() {
				var b strings.Builder
				for _, c := range res.Ladders {
					ladder.WriteText(&b, c)
				}
				t.Fatalf("%s: the ladder is missing %v\n%s", s.Name, res.Missing, b.String())
			}
			// The scenario left the phones as it found them.
			for _, p := range []string{"alice", "bob"} {
				st := phoneStatus(t, ctx, p)
				if st.Settings["auto_answer"] != "1s" || st.Settings["ack"] != "send" || st.Settings["codecs"] != "pcmu,pcma" {
					t.Errorf("%s after %s: %v", p, s.Name, st.Settings)
				}
				for _, c := range st.Calls {
					if c.State != "terminated" {
						t.Errorf("%s after %s: call %s still %s", p, s.Name, c.ID, c.State)
					}
				}
			}
		})
	}
}
