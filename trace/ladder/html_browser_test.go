package ladder

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"github.com/siplab/siplab/internal/browsertest"
)

// updateScreenshots, when set, makes TestHTMLInChromium write the pages it
// renders as PNGs into docs/img (docs/ladder.md shows them), so the
// screenshots in the docs are the tested page, never a hand-made picture.
const updateScreenshots = "SIPLAB_UPDATE_SCREENSHOTS"

// layoutJS gathers the layout facts from the rendered DOM. Texts are
// measured with a Range over their contents (the glyphs, not the padded
// box); lifelines and arrowheads by their boxes. Only elements that are
// rendered count (a closed <details> panel is not).
const layoutJS = `(() => {
	scrollTo(0, 0); // the sticky header covers scrolled rows, by design
	const vis = r => r.width > 0 && r.height > 0;
	const textRect = el => { const g = document.createRange(); g.selectNodeContents(el); return g.getBoundingClientRect(); };
	const box = r => ({l: r.left + scrollX, t: r.top + scrollY, r: r.right + scrollX, b: r.bottom + scrollY});
	const name = el => (el.closest('details') ? '#' + (el.closest('details').id || 'rtp') + ' ' : '') + el.className + ' "' + el.textContent.trim().slice(0, 40) + '"';
	const texts = [], heads = [], lifes = [];
	for (const el of document.querySelectorAll('.lbl, .lblbox .nat span, .lblbox .alg, .col .name, .col .role, .col .addr, summary .t, summary .notes, .hdr .t, .hdr .notes')) {
		const r = textRect(el); if (vis(r)) texts.push({n: name(el), ...box(r)});
	}
	for (const el of document.querySelectorAll('.head')) { const r = el.getBoundingClientRect(); if (vis(r)) heads.push({n: name(el.closest('.arrow')), ...box(r)}); }
	for (const el of document.querySelectorAll('.life')) { const r = el.getBoundingClientRect(); if (vis(r)) lifes.push({n: 'lifeline', ...box(r)}); }
	// Smallest computed font size of any rendered text.
	let minFont = 1e9, minFontAt = '';
	const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
	for (let n = walk.nextNode(); n; n = walk.nextNode()) {
		if (!n.textContent.trim()) continue;
		const g = document.createRange(); g.selectNodeContents(n);
		if (!vis(g.getBoundingClientRect())) continue;
		const px = parseFloat(getComputedStyle(n.parentElement).fontSize);
		if (px < minFont) { minFont = px; minFontAt = n.parentElement.tagName + '.' + n.parentElement.className + ' "' + n.textContent.trim().slice(0, 30) + '"'; }
	}
	const life = lifes.map(l => (l.l + l.r) / 2);
	const zone = {};
	for (const z of ['site', 'core', 'public']) {
		const sw = document.querySelector('.sw.' + z);
		zone[z] = {legend: sw ? getComputedStyle(sw).backgroundColor : '', addrs: [...document.querySelectorAll('.addr.' + z)].map(a => a.textContent + '=' + getComputedStyle(a).color)};
	}
	// Each column's header over its lifeline: centres of the header cells
	// and of the first row's lifelines.
	const centre = e => { const r = e.getBoundingClientRect(); return (r.left + r.right) / 2; };
	const heads0 = [...document.querySelectorAll('.hdr .col')].map(centre);
	const firstRow = document.querySelector('summary.row');
	const lives0 = firstRow ? [...firstRow.querySelectorAll('.life')].map(centre) : [];
	const bad = document.querySelectorAll('.lbl.bad').length, notes = document.querySelectorAll('.lbl .note').length;
	return JSON.stringify({texts, heads, bad, notes, colCentres: heads0, lifeCentres: lives0, lifes: lifes.length, minFont, minFontAt,
		lifeMin: Math.min(...life), lifeMax: Math.max(...life),
		ladder: box(document.querySelector('.ladder').getBoundingClientRect()),
		lanes: box(document.querySelector('.hdr .cols').getBoundingClientRect()),
		innerWidth, scrollWidth: document.documentElement.scrollWidth, zone});
})()`

type rect struct {
	N          string
	L, T, R, B float64
}

// overlaps allows a hair of anti-aliasing: boxes touching by under half a
// pixel do not cover each other.
func (a rect) overlaps(b rect) bool {
	const eps = 0.5
	return a.L < b.R-eps && b.L < a.R-eps && a.T < b.B-eps && b.T < a.B-eps
}

type layoutFacts struct {
	Texts, Heads     []rect
	Lifes            int
	Bad, Notes       int // labels drawn red (a problem) and grey (a note)
	ColCentres       []float64
	LifeCentres      []float64
	MinFont          float64
	MinFontAt        string
	LifeMin, LifeMax float64
	Ladder, Lanes    rect
	InnerWidth       float64
	ScrollWidth      float64
	Zone             map[string]struct {
		Legend string
		Addrs  []string
	}
}

// check asserts what a trainer projecting the page needs: nothing covers
// anything, the type is large, the drawing spans the window.
func (f layoutFacts) check(t *testing.T, lifelineRects []rect) {
	t.Helper()
	if f.MinFont < 16 {
		t.Errorf("smallest text is %.1f px (%s), want >= 16 px", f.MinFont, f.MinFontAt)
	}
	if f.ScrollWidth > f.InnerWidth {
		t.Errorf("page is %.0f px wide in a %.0f px window: it scrolls sideways", f.ScrollWidth, f.InnerWidth)
	}
	if w := f.Ladder.R - f.Ladder.L; w < 0.9*f.InnerWidth {
		t.Errorf("ladder uses %.0f of %.0f px (%.0f%%), want >= 90%%", w, f.InnerWidth, 100*w/f.InnerWidth)
	}
	// The lanes take most of it; the rest is the time gutter and the
	// capture-point notes.
	if w := f.Lanes.R - f.Lanes.L; w < 0.6*f.InnerWidth {
		t.Errorf("lanes are %.0f px of %.0f (%.0f%%), want >= 60%%", w, f.InnerWidth, 100*w/f.InnerWidth)
	}
	if f.LifeMin < f.Lanes.L || f.LifeMax > f.Lanes.R {
		t.Errorf("lifelines from x=%.0f to %.0f, outside the lanes %.0f..%.0f", f.LifeMin, f.LifeMax, f.Lanes.L, f.Lanes.R)
	}
	if len(f.ColCentres) != len(f.LifeCentres) {
		t.Errorf("%d column headers, %d lifelines", len(f.ColCentres), len(f.LifeCentres))
	} else {
		for i := range f.ColCentres {
			if d := f.ColCentres[i] - f.LifeCentres[i]; d > 2 || d < -2 {
				t.Errorf("column %d's header is centred at x=%.0f, its lifeline at x=%.0f", i+1, f.ColCentres[i], f.LifeCentres[i])
			}
		}
	}
	bad := 0
	report := func(format string, args ...any) {
		if bad++; bad <= 15 {
			t.Errorf(format, args...)
		}
	}
	for i, a := range f.Texts {
		for _, b := range f.Texts[i+1:] {
			if a.overlaps(b) {
				report("text %s %v overlaps text %s %v", a.N, a, b.N, b)
			}
		}
		for _, h := range f.Heads {
			if a.overlaps(h) {
				report("text %s overlaps the arrowhead of %s", a.N, h.N)
			}
		}
		for _, l := range lifelineRects {
			if a.overlaps(l) {
				report("text %s lies over a lifeline at x=%.0f", a.N, l.L)
			}
		}
	}
	if bad > 15 {
		t.Errorf("... %d overlaps in all", bad)
	}
	if len(f.Texts) < 10 || len(f.Heads) == 0 || f.Lifes == 0 {
		t.Errorf("measured %d texts, %d arrowheads, %d lifelines: the page did not render a ladder", len(f.Texts), len(f.Heads), f.Lifes)
	}
}

// newBrowser starts headless Chromium with a 1920×1080 page. The browser
// test fails without it: the layout facts below are what the projector
// shows, and nothing else can check them.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(browsertest.New(t, "to check the HTML ladder's layout", 1920, 1080), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// lifelineRects fetches every lifeline's box (separately: there are many,
// and the overlap check needs them all).
const lifelinesJS = `JSON.stringify([...document.querySelectorAll('.life')].map(e => e.getBoundingClientRect()).filter(r => r.width > 0 && r.height > 0).map(r => ({N: 'lifeline', L: r.left + scrollX, T: r.top + scrollY, R: r.right + scrollX, B: r.bottom + scrollY})))`

func measure(t *testing.T, ctx context.Context) (layoutFacts, []rect) {
	t.Helper()
	var f layoutFacts
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](layoutJS))
	if err != nil {
		t.Fatalf("measuring the page: %v", err)
	}
	if err := json.Unmarshal([]byte(s), &f); err != nil {
		t.Fatal(err)
	}
	var lifes []rect
	s, err = chromedp.Run(ctx, chromedp.Evaluate[string](lifelinesJS))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(s), &lifes); err != nil {
		t.Fatal(err)
	}
	return f, lifes
}

// TestHTMLInChromium renders the HTML ladder of recorded calls in headless
// Chromium at 1920×1080 (a projector) and checks the layout from the DOM:
// no text over another text, an arrowhead or a lifeline; type of 16 px or
// more; the drawing across the window; address colours as the legend
// says; a click on an arrow opens its message, explained.
func TestHTMLInChromium(t *testing.T) {
	ctx := newBrowser(t)
	for _, tt := range []struct {
		scenario string
		// open is the message whose panel the test opens, and what the
		// panel must then show.
		open     int
		openText []string
		// red says whether a label must be red: a healthy call shows none
		// (its private Contact, repaired by the proxy, is a grey note).
		red bool
	}{
		{"edge-direct", 2, []string{"siplab explain 1.2", "INVITE sip:bob@", "request line: method INVITE", "the router translated this copy: 192.168.1.50:5060 ⇒ 203.0.113.2:5060", "note private address 192.168.1.50 in Contact"}, false},
		{"edge-pbx", 11, []string{"c=IN IP4 203.0.113.2", "connection: the address the other side must send its RTP"}, false},
		{"private-sdp", 0, nil, true},
		{"alg-rewrite-call-id", 2, []string{"ALG rewrote Call-ID", "a NAT never changes the SIP text"}, true},
	} {
		t.Run(tt.scenario, func(t *testing.T) {
			c, err := Find(load(t, tt.scenario), "")
			if err != nil {
				t.Fatal(err)
			}
			f := show(t, ctx, c)
			if (f.Bad > 0) != tt.red {
				t.Errorf("%d red labels, %d notes; want red: %v", f.Bad, f.Notes, tt.red)
			}
			shot(t, ctx, "ladder-"+tt.scenario+".png")
			// A smaller screen (a laptop on the projector) gets narrower
			// lanes, not smaller type, and still nothing overlaps.
			laptopToo(t, ctx)
			if tt.open == 0 {
				return
			}
			sel := fmt.Sprintf("#m%d > summary", tt.open)
			if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel))); err != nil {
				t.Fatalf("clicking message %d: %v", tt.open, err)
			}
			panel, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(
				`(() => { const p = document.querySelector('#m%d .panel'); const r = p.getBoundingClientRect(); return r.height > 0 && r.width > 0.8 * innerWidth ? p.innerText : ''; })()`, tt.open)))
			if err != nil {
				t.Fatal(err)
			}
			if panel == "" {
				t.Fatalf("message %d: no panel across the window after a click", tt.open)
			}
			for _, want := range tt.openText {
				if !strings.Contains(panel, want) {
					t.Errorf("message %d's panel lacks %q:\n%s", tt.open, want, panel)
				}
			}
			// Open, the page keeps its promises: large type, nothing
			// covering anything in the rows around the panel.
			f, lifes := measure(t, ctx)
			f.check(t, lifes)
			if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf(`(() => { const s = document.querySelector('#m%d'); scrollTo(0, s.getBoundingClientRect().top + scrollY - 260); return true; })()`, tt.open))); err != nil {
				t.Fatal(err)
			}
			shot(t, ctx, "ladder-"+tt.scenario+"-message.png")
			// Where the media starts: RTP hop by hop, translated at the
			// routers.
			if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => { document.querySelectorAll('details[open]').forEach(d => d.open = false); const s = document.querySelector('details.rtp'); if (!s) return false; scrollTo(0, s.getBoundingClientRect().top + scrollY - 420); return true; })()`)); err != nil {
				t.Fatal(err)
			}
			shot(t, ctx, "ladder-"+tt.scenario+"-rtp.png")
		})
	}
}

// show loads the call's page at 1920×1080 and checks its layout.
func show(t *testing.T, ctx context.Context, c *Call) layoutFacts {
	t.Helper()
	var page bytes.Buffer
	if err := WriteHTML(&page, c); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "ladder.html")
	if err := os.WriteFile(file, page.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1920, 1080), chromedp.Navigate("file://"+file)); err != nil {
		t.Fatalf("loading the page: %v", err)
	}
	f, lifes := measure(t, ctx)
	if f.InnerWidth != 1920 {
		t.Fatalf("window is %.0f px wide, want 1920", f.InnerWidth)
	}
	f.check(t, lifes)
	checkZones(t, f)
	return f
}

// checkZones: every address is drawn in its zone's colour, the legend's
// swatch for that zone, and each zone is the right one for the lab's plan.
func checkZones(t *testing.T, f layoutFacts) {
	t.Helper()
	want := map[string]string{"192.168.": "site", "10.0.0.": "core", "203.0.113.": "public"}
	colours := map[string]string{}
	for zone, z := range f.Zone {
		if z.Legend == "" {
			t.Errorf("legend has no %s swatch", zone)
		}
		colours[zone] = z.Legend
		for _, a := range z.Addrs {
			addr, colour, _ := strings.Cut(a, "=")
			if colour != z.Legend {
				t.Errorf("%s is drawn %s, the legend's %s is %s", addr, colour, zone, z.Legend)
			}
			for prefix, wz := range want {
				if strings.HasPrefix(addr, prefix) && wz != zone {
					t.Errorf("%s shown as %s, want %s", addr, zone, wz)
				}
			}
		}
	}
	if colours["site"] == colours["core"] || colours["site"] == colours["public"] || colours["core"] == colours["public"] {
		t.Errorf("zones share a colour: %v", colours)
	}
}

// docsShots are the screenshots docs/ladder.md shows: only these are kept.
var docsShots = map[string]bool{
	"ladder-edge-pbx.png":            true,
	"ladder-edge-direct-message.png": true,
	"ladder-edge-pbx-rtp.png":        true,
	"ladder-private-sdp.png":         true,
	"ladder-healthy-most-legs.png":   true,
	"ladder-browser-ice.png":         true, // stun_browser_test.go
}

// TestDocsShowTheScreenshots: every picture docs/ladder.md shows is one
// this test makes, and every one it makes is shown.
func TestDocsShowTheScreenshots(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "ladder.md"))
	if err != nil {
		t.Fatal(err)
	}
	for name := range docsShots {
		if !strings.Contains(string(doc), "(img/"+name+")") {
			t.Errorf("docs/ladder.md does not show img/%s", name)
		}
		if _, err := os.Stat(filepath.Join("..", "..", "docs", "img", name)); err != nil {
			t.Errorf("%v (run SIPLAB_UPDATE_SCREENSHOTS=1 go test -run TestHTMLInChromium ./trace/ladder)", err)
		}
	}
	for _, m := range regexp.MustCompile(`\(img/(ladder-[^)]+\.png)\)`).FindAllStringSubmatch(string(doc), -1) {
		if !docsShots[m[1]] {
			t.Errorf("docs/ladder.md shows img/%s, which no test makes", m[1])
		}
	}
}

// shot captures the window; with SIPLAB_UPDATE_SCREENSHOTS=1 it is written
// to docs/img, the pictures docs/ladder.md shows.
func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	// The pointer rests in the page's corner, not on a row (a hovered row
	// is shaded).
	if err := chromedp.Do(ctx, chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, 1, 1)); err != nil {
		t.Fatal(err)
	}
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if len(png) < 1000 {
		t.Fatalf("screenshot of %d bytes", len(png))
	}
	if os.Getenv(updateScreenshots) == "" || !docsShots[name] {
		return
	}
	dst := filepath.Join("..", "..", "docs", "img", name)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", dst)
}
