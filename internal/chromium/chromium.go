// Package chromium is how siplab starts Debian's headless Chromium: the
// browser tests (internal/browsertest) and the browser phone
// (webphone/headless) share the path and the base options.
package chromium

import "github.com/chromedp/chromedp"

// Path is Debian's chromium (apt-get install chromium; .ci/run installs it).
const Path = "/usr/bin/chromium"

// Options are chromedp's default allocator options, Path, and Chromium's
// own log quietened, followed by extra.
func Options(extra ...chromedp.ExecAllocatorOption) []chromedp.ExecAllocatorOption {
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(Path),
		chromedp.Flag("log-level", "3"))
	return append(opts, extra...)
}
