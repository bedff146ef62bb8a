// Package webphonetest is headless (webphone/headless) for tests: the same
// browser, microphone and page state, failing the test instead of
// returning errors. The loopback test in sbc/ and the lab test in e2e/ use
// it.
package webphonetest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/siplab/siplab/webphone/headless"
)

// ToneHz is the browser's fake microphone: a tone no lab phone uses.
const ToneHz = headless.ToneHz

// State is window.phoneState.
type State = headless.State

// Selected is the selected candidate pair in getStats.
type Selected = headless.Selected

// WriteToneWAV writes headless.ToneWAV to path.
func WriteToneWAV(t testing.TB, path string, hz float64, seconds int) {
	t.Helper()
	if err := os.WriteFile(path, headless.ToneWAV(hz, seconds), 0o644); err != nil {
		t.Fatal(err)
	}
}

// NewBrowser starts headless Chromium with the fake microphone playing
// wav, plus extra options; the browser closes when the test ends.
// Without Chromium the test fails, never skips.
func NewBrowser(t testing.TB, wav string, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	ctx, stop, err := headless.Start(wav, 3*time.Minute, extra...)
	if err != nil {
		t.Fatalf("headless Chromium is needed for the web phone test: %v", err)
	}
	t.Cleanup(stop)
	return ctx
}

// Read returns window.phoneState.
func Read(t testing.TB, ctx context.Context) State {
	t.Helper()
	st, err := headless.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// Wait polls window.phoneState until ok, failing the test after d.
func Wait(t testing.TB, ctx context.Context, what string, d time.Duration, ok func(State) bool) State {
	t.Helper()
	st, err := headless.Wait(ctx, what, d, ok)
	if err != nil {
		t.Fatalf("web phone: %v: %+v", err, st)
	}
	return st
}
