package e2e

// The browser phone in the Docker lab (issue 16, docs/webrtc.md): headless
// Chromium in a network namespace on the browser site (bridge
// siplab-browser), so its only way into the lab is router-w's NAT. It
// registers dave over WSS at the SBC, calls bob (behind router-b), bob
// identifies the browser's tone, and getStats shows inbound audio and the
// selected candidate pair — under router-w's default preset and under
// symmetric NAT.

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/siplab/siplab/lab/browsersite"
	"github.com/siplab/siplab/media/webrtcgw"
	"github.com/siplab/siplab/natrouter"
	"github.com/siplab/siplab/uaclient"
	"github.com/siplab/siplab/webphone/headless"
	"github.com/siplab/siplab/webphone/webphonetest"
)

// browserSite makes the browser's namespace on the browser bridge
// (lab/browsersite): Chromium there gathers only 192.168.9.10 (never this
// machine's other addresses) and reaches the lab only through router-w.
func browserSite(t *testing.T, ctx context.Context) *browsersite.Site {
	t.Helper()
	site, err := browsersite.Open(ctx, browsersite.DefaultNS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(site.Close)
	return site
}

// webCall is one browser call's outcome.
type webCall struct {
	page    webphonetest.State
	bob     uaclient.CallStatus
	gateway webrtcgw.Stats
}

// openWebPhone loads the phone page in a fresh Chromium behind router-w and
// registers dave. policy is the page's ICE policy ("" = the SBC's).
func openWebPhone(t *testing.T, site *browsersite.Site, policy string) context.Context {
	t.Helper()
	// Chromium's own DNS lookups (the host's resolvers) leave through
	// router-w and die at its unused default route: they show as
	// mappings in router-w's status, never off the host.
	b, err := site.Start(3 * time.Minute)
	if err != nil {
		t.Fatalf("headless Chromium behind router-w: %v", err)
	}
	// A test that stops mid-call still hangs up and unregisters before
	// the browser closes: no gateway call or binding outlives it.
	t.Cleanup(b.Close)
	if err := headless.Open(b.Ctx, browsersite.PageURL("dave", "bob", policy), "dave-secret"); err != nil {
		t.Fatal(err)
	}
	return b.Ctx
}

// dialBob clicks Call and waits for the 200 OK; it returns how many calls
// bob had before, so the new one is the next.
func dialBob(t *testing.T, ctx, bctx context.Context) int {
	t.Helper()
	before := len(phoneStatus(t, ctx, "bob").Calls)
	if err := chromedp.Do(bctx, chromedp.Click(chromedp.ID("call"))); err != nil {
		t.Fatal(err)
	}
	st := webphonetest.Wait(t, bctx, "call confirmed", 40*time.Second, func(s webphonetest.State) bool { return s.Call == "confirmed" || s.Call == "failed" })
	if st.Call != "confirmed" {
		t.Fatalf("the browser's call to bob: %s", st.Error)
	}
	return before
}

// callBob calls bob from the page and waits until bob hears the browser's
// tone and the browser's getStats shows bob's audio on a selected pair.
func callBob(t *testing.T, ctx, bctx context.Context) webCall {
	t.Helper()
	before := dialBob(t, ctx, bctx)
	var res webCall
	for deadline := time.Now().Add(30 * time.Second); ; {
		calls := phoneStatus(t, ctx, "bob").Calls
		if len(calls) > before {
			res.bob = calls[len(calls)-1]
		}
		n, hz := received(res.bob)
		if n > 50 && near(hz, webphonetest.ToneHz) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("bob does not hear the browser's %d Hz: %d packets, %.0f Hz\ngateway: %+v\npage: %+v",
				webphonetest.ToneHz, n, hz, sbcStatus(t, ctx).WebRTC, webphonetest.Read(t, bctx))
		}
		time.Sleep(500 * time.Millisecond)
	}
	res.page = webphonetest.Wait(t, bctx, "bob's audio in getStats", 20*time.Second, func(s webphonetest.State) bool {
		return s.Inbound != nil && s.Inbound.PacketsReceived > 50 && s.Inbound.AudioLevel > 0.01 && s.Selected != nil
	})
	if gw := sbcStatus(t, ctx).WebRTC; len(gw) > 0 {
		res.gateway = gw[len(gw)-1]
	}
	t.Logf("selected %s <-> %s; browser got %d packets (%s, level %.2f); bob hears %.0f Hz; gateway ICE %s, pair %s",
		res.page.Selected.Local, res.page.Selected.Remote, res.page.Inbound.PacketsReceived, res.page.Inbound.Codec,
		res.page.Inbound.AudioLevel, res.bob.ToneHz, res.gateway.ICE, res.gateway.SelectedPair)
	return res
}

// hangUpWeb ends the browser's call and waits until the gateway released it.
func hangUpWeb(t *testing.T, ctx, bctx context.Context) {
	t.Helper()
	if err := chromedp.Do(bctx, chromedp.Click(chromedp.ID("hangup"))); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(15 * time.Second); len(sbcStatus(t, ctx).WebRTC) > 0; {
		if time.Now().After(deadline) {
			t.Fatalf("the gateway still holds the browser's call: %+v", sbcStatus(t, ctx).WebRTC)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func TestWebPhoneBehindRouterW(t *testing.T) {
	ctx := testCtx(t, 10*time.Minute)
	bin := buildSiplab(t, ctx)
	site := browserSite(t, ctx)
	t.Cleanup(func() { setRouter(t, context.Background(), "router-w", "preset", natrouter.DefaultPreset) })
	// The browser's media goes through the SBC's relay: bob registers
	// through the SBC too, or the SBC's core-side SDP (10.0.0.5) would
	// reach him through the proxy and his audio would never come back.
	behindSBC(t, ctx, "bob")

	for _, tc := range []struct {
		preset, policy string
		// local is the selected pair's local candidate type the browser
		// must report; srflx means STUN's answer was the mapping used.
		local string
	}{
		// Port-restricted cone: one mapping per socket whatever the
		// destination, so the gateway sees the browser at the address the
		// lab STUN told it (its srflx candidate).
		{natrouter.DefaultPreset, "", "srflx"},
		// Symmetric: a new mapping per destination, so the address STUN
		// saw is not the one the gateway sees (a peer-reflexive candidate);
		// the ICE-lite gateway answers wherever the checks come from, so
		// the direct path still works.
		{"symmetric", "", "prflx"},
		// A network that allows only TURN (policy=relay): under symmetric
		// NAT the relay via the lab TURN carries the call.
		{"symmetric", "relay", "relay"},
	} {
		t.Run(tc.preset+"/"+tc.local, func(t *testing.T) {
			// As the intern would: siplab set, and siplab status shows it.
			if out, err := exec.CommandContext(ctx, bin, "set", "router-w", "preset", tc.preset).CombinedOutput(); err != nil {
				t.Fatalf("siplab set router-w preset %s: %v\n%s", tc.preset, err, out)
			}
			out, err := exec.CommandContext(ctx, bin, "status").CombinedOutput()
			if line := lineWith(string(out), "router-w"); err != nil || !strings.Contains(line, tc.preset) {
				t.Errorf("siplab status does not show router-w %s: %q (%v)", tc.preset, line, err)
			}
			bctx := openWebPhone(t, site, tc.policy)
			res := callBob(t, ctx, bctx)
			if got := res.page.Selected.LocalType; got != tc.local {
				t.Errorf("selected local candidate %s (%s), want %s; candidates %+v", got, res.page.Selected.Local, tc.local, res.page.Candidates)
			}
			if res.page.Inbound.Codec != "audio/PCMU" {
				t.Errorf("browser decodes %q, want audio/PCMU", res.page.Inbound.Codec)
			}
			// The browser's own address is router-w's LAN, never the host's.
			for _, a := range res.page.Local("host") {
				if !strings.HasPrefix(a, "192.168.9.10:") {
					t.Errorf("host candidate %s: Chromium is not confined to the browser site", a)
				}
			}
			if tc.policy == "" {
				srflx := res.page.Local("srflx")
				if len(srflx) == 0 || !strings.HasPrefix(srflx[0], "203.0.113.9:") {
					t.Errorf("srflx candidates %v: the lab STUN should see router-w's 203.0.113.9", srflx)
				}
			}
			if res.gateway.ICE != "connected" && res.gateway.ICE != "completed" {
				t.Errorf("gateway ICE %q", res.gateway.ICE)
			}
			if !near(res.gateway.ToCore.ToneHz, webphonetest.ToneHz) {
				t.Errorf("gateway relays %.0f Hz to the core, want the browser's %d", res.gateway.ToCore.ToneHz, webphonetest.ToneHz)
			}
			remote := fmt.Sprintf("%v", res.gateway.SelectedPair)
			// The gateway names the browser's side the same way: from the
			// candidates in the browser's SDP, or prflx when none matches.
			want := map[string]string{"srflx": "<-> srflx 203.0.113.9:", "prflx": "<-> prflx 203.0.113.9:", "relay": "<-> relay 203.0.113.20:"}[tc.local]
			if !strings.Contains(remote, want) {
				t.Errorf("gateway's selected pair %q, want %s…", remote, want)
			}
			if out := doctorSays(t, ctx, bin); strings.Contains(out, "[state-ice]") {
				t.Errorf("the doctor calls a working browser call failed:\n%s", out)
			}
			hangUpWeb(t, ctx, bctx)
		})
	}

	// Relay only, symmetric NAT, and the lab TURN down (paused: it answers
	// nothing): the browser has no candidate, the call is up in SIP, no
	// audio flows, and the doctor says why from the gateway's ICE state.
	t.Run("symmetric/relay-only/turn-off", func(t *testing.T) {
		setRouter(t, ctx, "router-w", "preset", "symmetric")
		stun, err := lab.Container(ctx, "stun")
		if err != nil {
			t.Fatal(err)
		}
		if out, err := lab.Docker(ctx, "pause", stun); err != nil {
			t.Fatalf("docker pause %s: %v %s", stun, err, out)
		}
		t.Cleanup(func() { _, _ = lab.Docker(context.Background(), "unpause", stun) })
		bctx := openWebPhone(t, site, "relay")
		before := dialBob(t, ctx, bctx) // set up in SIP even without a pair
		gw := sbcStatus(t, ctx).WebRTC
		if len(gw) == 0 {
			t.Fatal("the gateway has no call for the browser's INVITE")
		}
		call := gw[len(gw)-1].Name
		var out string
		for deadline := time.Now().Add(40 * time.Second); ; {
			if out = doctorSays(t, ctx, bin); strings.Contains(out, "no usable pair for browser call "+call) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no ICE finding; gateway %+v\ndoctor:\n%s", sbcStatus(t, ctx).WebRTC, out)
			}
			time.Sleep(2 * time.Second)
		}
		var line string // the finding's summary line for this call
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, "browser call "+call) {
				line = l
				break
			}
		}
		if !strings.Contains(line, "ICE failed: no usable pair") || !strings.Contains(line, "no candidate at all") {
			t.Errorf("the doctor's ICE finding does not say why:\n%s", out)
		}
		calls := phoneStatus(t, ctx, "bob").Calls
		if len(calls) > before {
			if n, hz := received(calls[len(calls)-1]); near(hz, webphonetest.ToneHz) {
				t.Errorf("bob hears the browser (%d packets, %.0f Hz) with no ICE pair", n, hz)
			}
		}
		page := webphonetest.Read(t, bctx)
		if page.Selected != nil {
			t.Errorf("the browser selected a pair without TURN: %+v", page.Selected)
		}
		t.Logf("browser ICE %s, candidates %+v; doctor:\n%s", page.ICE, page.Candidates, out)
		hangUpWeb(t, ctx, bctx)
	})
}
