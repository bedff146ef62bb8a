package b2bleg_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/siplab/siplab/sip/b2bleg"
)

// HangupAll skips the calls already over, hangs up the others at once
// (one that never returns on its own does not delay the rest), and cuts
// them all short after its budget.
func TestHangupAll(t *testing.T) {
	type call struct {
		ended bool
		stuck bool // waits for its context, as a BYE to a silent far end
	}
	calls := []*call{{ended: true}, {}, {stuck: true}, {}, {ended: true}}
	var mu sync.Mutex
	var hungUp []*call
	start := time.Now()
	n := b2bleg.HangupAll(context.Background(), &mu, calls,
		func(c *call) bool {
			if mu.TryLock() {
				mu.Unlock()
				t.Error("ended called without the owner's lock")
			}
			return c.ended
		},
		func(ctx context.Context, c *call) {
			if c.stuck {
				<-ctx.Done()
			}
			mu.Lock()
			hungUp = append(hungUp, c)
			mu.Unlock()
		})
	took := time.Since(start)
	if n != 3 || len(hungUp) != 3 {
		t.Fatalf("hung up %d (counted %d), want 3", len(hungUp), n)
	}
	for _, c := range hungUp {
		if c.ended {
			t.Error("an ended call was hung up again")
		}
	}
	if took < 2*time.Second || took > 5*time.Second {
		t.Errorf("a stuck hang-up took %v, want it cut at the 3 s budget", took)
	}

	// A caller's context that ends first ends the hang-ups with it.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start = time.Now()
	b2bleg.HangupAll(ctx, &mu, []*call{{stuck: true}}, func(c *call) bool { return c.ended },
		func(ctx context.Context, c *call) { <-ctx.Done() })
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("hang-ups outlived the caller's context: %v", took)
	}
}
