package e2e

// The browser phone from the classroom console (issue 16, docs/webrtc.md
// "From the console"): headless Chromium on the host itself — the intern's
// own browser, with every interface this machine has — opens the console's
// /phone/ page, whose SIP WebSocket goes to the SBC's WSS listener (another
// origin) and whose STUN/TURN servers are the SBC's live setting. The
// host routes of `siplab up` send the lab's internet via router-w, so the
// browser meets the lab behind router-w's NAT like the one in the browser
// site's namespace does.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/siplab/siplab/lab/labctl"
	"github.com/siplab/siplab/sbc"
	"github.com/siplab/siplab/webphone/headless"
	"github.com/siplab/siplab/webphone/webphonetest"
)

// hostRoutes adds the host routes `siplab up` adds as root (the lab's
// internet via router-w) and removes them when the test ends.
func hostRoutes(t *testing.T, ctx context.Context) {
	t.Helper()
	r := &labctl.Runner{Dir: lab.Root}
	t.Cleanup(func() {
		if err := r.DelHostRoutes(context.Background()); err != nil {
			t.Errorf("remove the host routes: %v", err)
		}
	})
	if err := r.AddHostRoutes(ctx); err != nil {
		t.Fatalf("host routes via router-w (this test needs root): %v", err)
	}
}

// shot writes a screenshot to $SIPLAB_SHOT_DIR, if set, to look at.
func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("SIPLAB_SHOT_DIR")
	if dir == "" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// The console's entry links the phone; the phone it serves registers dave
// across origins at the SBC, calls bob, and the call's media goes through
// router-w: bob hears the browser's tone, the browser hears bob, and the
// browser's selected local candidate is router-w's public address (srflx
// or prflx 203.0.113.9), never one of the host's own addresses.
func TestConsoleBrowserPhoneOnHost(t *testing.T) {
	ctx := testCtx(t, 8*time.Minute)
	hostRoutes(t, ctx)
	// bob registers through the SBC, so the media comes back through its
	// relay (docs/webrtc.md step 2); back at the proxy afterwards.
	behindSBC(t, ctx, "bob")
	base := startConsole(t, ctx)

	wav := filepath.Join(t.TempDir(), "tone.wav")
	webphonetest.WriteToneWAV(t, wav, webphonetest.ToneHz, 30)
	// headless.Start: the fake microphone, ignore-certificate-errors (the
	// exception an intern accepts once), no namespace: the host's browser.
	bctx := webphonetest.NewBrowser(t, wav, chromedp.WindowSize(1600, 1000))
	t.Cleanup(func() { headless.Leave(bctx) })

	// The console's entry: a link to the phone as dave, and the SBC's
	// certificate address, read from the SBC's status.
	if err := chromedp.Do(bctx, chromedp.Navigate(base)); err != nil {
		t.Fatal(err)
	}
	wss := sbcStatus(t, ctx).AccessWSS
	waitJS(t, bctx, "the certificate link names the SBC's WSS listener",
		`document.getElementById('webphone-cert')?.href === 'https://`+wss+`/'`, 15*time.Second)
	link := js[string](t, bctx, `document.getElementById('webphone-link').href`)
	if link != base+"phone/?user=dave&target=bob" {
		t.Errorf("browser phone link %q, want %sphone/?user=dave&target=bob", link, base)
	}
	if err := chromedp.Do(bctx, chromedp.ScrollIntoView(chromedp.ID("webphone"))); err != nil {
		t.Fatal(err)
	}
	shot(t, bctx, "console-browser-phone-entry.png")

	// The page, on the console's origin, opens the SBC's WebSocket and
	// gets the SBC's live STUN/TURN servers.
	if err := chromedp.Do(bctx, chromedp.Navigate(link)); err != nil {
		t.Fatal(err)
	}
	st := webphonetest.Wait(t, bctx, "the page", 20*time.Second, func(s webphonetest.State) bool { return s.Ready })
	if st.WSURL != "wss://"+wss+"/" || !st.Secure || st.Notice != "" {
		t.Fatalf("page: SIP WebSocket %q (want wss://%s/), secure context %v (127.0.0.1 is one), notice %q", st.WSURL, wss, st.Secure, st.Notice)
	}
	var conf struct {
		ICEServers []string `json:"ice_servers"`
		Policy     string   `json:"ice_transport_policy"`
	}
	if err := json.Unmarshal([]byte(js[string](t, bctx, `JSON.stringify(cfg)`)), &conf); err != nil {
		t.Fatal(err)
	}
	want, err := sbc.ParseICEServers(sbcStatus(t, ctx).Settings[sbc.SettingWebRTCICEServers])
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(conf.ICEServers, ",") != strings.Join(want, ",") || len(want) == 0 {
		t.Errorf("page's ICE servers %v, want the SBC's webrtc_ice_servers %v", conf.ICEServers, want)
	}
	if p := sbcStatus(t, ctx).WebRTCICEPolicy; conf.Policy != p || p != "all" {
		t.Errorf("page's ICE policy %q, want the SBC's -webrtc-ice-policy %q (the lab's: all)", conf.Policy, p)
	}
	if err := headless.Open(bctx, link, "dave-secret"); err != nil {
		t.Fatal(err)
	}
	if reg, ok := sbcRegistration(sbcStatus(t, ctx), "dave"); !ok || reg.Transport != "wss" {
		t.Errorf("the SBC's registration of dave %+v, want one over wss", reg)
	}

	res := callBob(t, ctx, bctx)
	sel := res.page.Selected
	if (sel.LocalType != "srflx" && sel.LocalType != "prflx") || !strings.HasPrefix(sel.Local, sel.LocalType+" 203.0.113.9:") {
		t.Errorf("selected local candidate %q (%s), want srflx or prflx 203.0.113.9 (router-w); candidates %+v; pairs %+v",
			sel.Local, sel.LocalType, res.page.Candidates, res.page.Pairs)
	}
	for _, own := range []string{"192.0.2.", "172."} {
		if strings.Contains(sel.Local, " "+own) {
			t.Errorf("selected local candidate %q is the host's own address", sel.Local)
		}
	}
	if res.page.Inbound.Codec != "audio/PCMU" {
		t.Errorf("browser decodes %q, want audio/PCMU", res.page.Inbound.Codec)
	}
	t.Logf("host candidates %v, srflx %v, prflx %v", res.page.Local("host"), res.page.Local("srflx"), res.page.Local("prflx"))
	shot(t, bctx, "console-browser-phone-call.png")

	// The console's main page in a second tab shows the call in its Calls
	// panel while it is up.
	cctx := consoleShowsBrowserCall(t, bctx, base)

	// The keypad: RFC 4733 events through the gateway reach bob.
	for _, k := range []string{"1", "5", "#"} {
		if _, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`(() => { for (const b of document.querySelectorAll('#keys button')) if (b.textContent === '`+k+`') { b.click(); return true; } return false; })()`)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		calls := phoneStatus(t, ctx, "bob").Calls
		got := calls[len(calls)-1].DTMFReceived
		if got == "15#" {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("bob received DTMF %q, want 15#", got)
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	hangUpWeb(t, ctx, bctx)
	waitJS(t, cctx, "the browser call leaves the Calls panel", `!document.querySelector('#calls tr[data-browser-call]')`, 15*time.Second)
}

// consoleShowsBrowserCall opens the console's main page in a new tab of
// the browser and waits for the browser call in its Calls panel: dave with
// the browser badge calling bob, ICE and DTLS connected, the selected pair
// with the browser's side srflx or prflx at router-w's address, the
// gateway's packet counts rising both ways, and who hears whom. It returns
// the tab.
func consoleShowsBrowserCall(t *testing.T, bctx context.Context, base string) context.Context {
	t.Helper()
	cctx, cancel := chromedp.NewContext(bctx)
	t.Cleanup(cancel)
	if err := chromedp.Do(cctx, chromedp.EmulateViewport(1600, 1000), chromedp.Navigate(base)); err != nil {
		t.Fatal(err)
	}
	const row = `document.querySelector('#calls tr[data-browser-call]')`
	waitJS(t, cctx, "the browser call in the Calls panel", `!!`+row+` && `+row+`.nextElementSibling?.querySelector('.pair')?.dataset.browser !== undefined`, 20*time.Second)
	type shown struct {
		Who, Peer, Detail, Browser, Gateway string
		Tx, Rx                              int
	}
	read := func() shown {
		var s shown
		if err := json.Unmarshal([]byte(js[string](t, cctx, `(() => { const r = `+row+`, d = r.nextElementSibling, p = d.querySelector('.pair');
			return JSON.stringify({who: r.cells[0].textContent, peer: r.cells[2].textContent, detail: d.textContent,
				browser: p?.dataset.browser || '', gateway: p?.dataset.gateway || '',
				tx: Number(r.querySelector('.tx').textContent), rx: Number(r.querySelector('.rx').textContent)}); })()`)), &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	first := read()
	t.Logf("console Calls panel: %s | %s | sent %d, rcvd %d | %s", first.Who, first.Peer, first.Tx, first.Rx, first.Detail)
	if !strings.Contains(first.Who, "dave") || !strings.Contains(first.Who, "browser") || first.Peer != "out bob" {
		t.Errorf("browser call row: who %q, peer %q; want dave with the browser badge, out bob", first.Who, first.Peer)
	}
	if (first.Browser != "srflx" && first.Browser != "prflx") || first.Gateway != "host" ||
		!strings.Contains(first.Detail, first.Browser+" 203.0.113.9:") || !strings.Contains(first.Detail, "↔ host 203.0.113.5:") {
		t.Errorf("selected pair: browser %q, gateway %q in %q; want srflx/prflx 203.0.113.9 ↔ host 203.0.113.5", first.Browser, first.Gateway, first.Detail)
	}
	for _, want := range []string{"ICE connected", "DTLS connected", "bob hears dave", "dave hears bob"} {
		if !strings.Contains(first.Detail, want) {
			t.Errorf("the call's detail line %q lacks %q", first.Detail, want)
		}
	}
	// The counts rise with the status rounds (one a second, slower on a
	// loaded machine).
	waitJS(t, cctx, "the packet counts rise both ways", fmt.Sprintf(`(() => { const r = `+row+`; return r && Number(r.querySelector('.tx').textContent) > %d && Number(r.querySelector('.rx').textContent) > %d; })()`, first.Tx, first.Rx), 20*time.Second)
	later := read()
	t.Logf("console Calls panel later: sent %d, rcvd %d", later.Tx, later.Rx)
	if err := chromedp.Do(cctx, chromedp.ScrollIntoView(chromedp.ID("state"))); err != nil {
		t.Fatal(err)
	}
	shot(t, cctx, "console-browser-call-panel.png")
	return cctx
}
