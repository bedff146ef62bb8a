package ladder

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestHTMLInChromiumBrowserCall draws the browser call with its STUN
// (stun_test.go) on the projector page: nothing overlaps at 1920×1080 or
// 1366×768, the STUN rows are there, and a click on a check opens its
// attributes.
func TestHTMLInChromiumBrowserCall(t *testing.T) {
	ctx := newBrowser(t)
	dir, _ := browserLab(t)
	c, err := Find(Build(readDir(t, dir), Lab()), "1")
	if err != nil {
		t.Fatal(err)
	}
	f := show(t, ctx, c)
	if f.Bad > 0 {
		t.Errorf("%d red labels: a 401 to a first Allocate is how TURN asks for credentials, not a fault", f.Bad)
	}
	laptopToo(t, ctx)
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[[]int](`[document.querySelectorAll('details.stun').length, document.querySelectorAll('details.stunrun').length]`))
	if err != nil {
		t.Fatal(err)
	}
	if rows[0] != len(c.STUN) || rows[1] != len(c.STUNRuns) {
		t.Errorf("page has %d STUN rows and %d runs, the call %d and %d", rows[0], rows[1], len(c.STUN), len(c.STUNRuns))
	}
	// The nominating check: its panel names the attributes.
	panel, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => {
		const d = [...document.querySelectorAll('details.stun')].find(d => d.querySelector('.sdp') && d.innerText.includes('Binding request'));
		if (!d) return '';
		d.open = true;
		scrollTo(0, d.getBoundingClientRect().top + scrollY - 300);
		return d.querySelector('.panel').innerText; })()`))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"STUN Binding request", "transaction", "gwufrag:brufrag", "controlling", "the controlling side nominates this pair"} {
		if !strings.Contains(panel, want) {
			t.Errorf("the nominating check's panel lacks %q:\n%s", want, panel)
		}
	}
	f, lifes := measure(t, ctx)
	f.check(t, lifes)
	// The real calls (testdata/captures/browser-ice): the direct one and
	// the relayed one, SIP on both sides of the SBC.
	real := load(t, "browser-ice")
	for _, sel := range []string{"2", "4"} {
		rc, err := Find(real, sel)
		if err != nil {
			t.Fatal(err)
		}
		if f := show(t, ctx, rc); f.Bad > 0 {
			t.Errorf("browser-ice call %s: %d red labels", sel, f.Bad)
		}
		if sel == "4" {
			// docs/ladder.md's picture: the relay at work.
			if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => { const s = document.querySelector('details.stunrun'); if (!s) return false; scrollTo(0, s.getBoundingClientRect().top + scrollY - 560); return true; })()`)); err != nil {
				t.Fatal(err)
			}
			shot(t, ctx, "ladder-browser-ice.png")
		}
		laptopToo(t, ctx)
	}
}

// laptopToo checks the page on a laptop's screen (1366×768) as well, and
// goes back to the projector's.
func laptopToo(t *testing.T, ctx context.Context) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1366, 768)); err != nil {
		t.Fatal(err)
	}
	small, lifes := measure(t, ctx)
	small.check(t, lifes)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1920, 1080)); err != nil {
		t.Fatal(err)
	}
}
