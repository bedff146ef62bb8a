package browsertest

import (
	"testing"

	"github.com/chromedp/chromedp"
)

// TestNewOpensAPage loads a page and reads it and the window the browser
// was started with.
func TestNewOpensAPage(t *testing.T) {
	ctx := New(t, "for this package's own test", 800, 600)
	if err := chromedp.Do(ctx, chromedp.Navigate("data:text/html,<p id=x>hello</p>")); err != nil {
		t.Fatal(err)
	}
	got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('#x').textContent + ' ' + innerWidth`))
	if err != nil {
		t.Fatal(err)
	}
	if got != "hello 800" {
		t.Fatalf("page says %q, want \"hello 800\" (its text, the window's width)", got)
	}
}
