package ladder

import (
	"fmt"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestHTMLInChromiumEveryCall draws every call of a recording of the whole
// lab — direct, PBX (hold, transfer, voicemail), STUN and TURN, through the
// SBC, the trunk both ways — and checks each page's layout at 1920×1080
// and 1366×768: the calls with the most columns and legs are the hardest
// to fit.
func TestHTMLInChromiumEveryCall(t *testing.T) {
	ctx := newBrowser(t)
	calls := load(t, everyCallFixture)
	// The call with the most legs (a trunk call through the SBC and the
	// PBX) is the picture of "one call, one ladder" in docs/ladder.md.
	var most *Call
	for _, c := range calls {
		if c.IsInvite() && (most == nil || len(c.Legs) > len(most.Legs)) {
			most = c
		}
	}
	n := 0
	for _, c := range calls {
		if !c.IsInvite() {
			continue
		}
		n++
		t.Run(fmt.Sprintf("call-%d", c.N), func(t *testing.T) {
			f := show(t, ctx, c)
			if f.Bad > 0 {
				t.Errorf("call %d (%s): %d red labels in a healthy lab", c.N, c.Summary(), f.Bad)
			}
			if err := chromedp.Do(ctx, chromedp.EmulateViewport(1366, 768)); err != nil {
				t.Fatal(err)
			}
			small, lifes := measure(t, ctx)
			small.check(t, lifes)
			if c == most {
				if err := chromedp.Do(ctx, chromedp.EmulateViewport(1920, 1080)); err != nil {
					t.Fatal(err)
				}
				shot(t, ctx, "ladder-healthy-most-legs.png")
			}
		})
	}
	if n < 5 {
		t.Errorf("%d calls in %s, want the lab's every kind of call", n, everyCallFixture)
	}
}

// everyCallFixture is the healthy-lab recording (its README and record.sh
// say how it is made).
const everyCallFixture = "healthy"
