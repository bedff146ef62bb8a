// Package browsertest starts Debian's headless Chromium for the tests that
// check a page in a real browser (the HTML ladder's layout, the console):
// what the projector shows can be checked nowhere else, so without the
// browser those tests fail, never skip.
package browsertest

import (
	"context"
	"os/exec"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/siplab/siplab/internal/chromium"
)

// Chromium is Debian's chromium (.ci/run installs it).
const Chromium = chromium.Path

// New starts headless Chromium with a w×h window and extra options; its
// contexts end with the test. need says what the browser is for, in the
// failure when it is missing.
func New(t testing.TB, need string, w, h int, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	if _, err := exec.LookPath(Chromium); err != nil {
		t.Fatalf("headless Chromium is needed %s: %v (apt-get install chromium)", need, err)
	}
	opts := chromium.Options(append([]chromedp.ExecAllocatorOption{chromedp.WindowSize(w, h)}, extra...)...)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelC(); cancelA() })
	return ctx
}
