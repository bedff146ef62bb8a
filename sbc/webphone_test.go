package sbc

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/siplab/siplab/internal/siptest"

	"github.com/chromedp/chromedp"

	"github.com/siplab/siplab/uaclient"
	"github.com/siplab/siplab/webphone"
	"github.com/siplab/siplab/webphone/webphonetest"
)

// browserToneHz is the browser's fake microphone: a tone no lab phone uses.
const browserToneHz = webphonetest.ToneHz

// The browser phone end to end on loopback: headless Chromium loads
// /phone from the SBC's WSS port, registers carol over SIP-over-WSS with
// digest (the JS MD5 against the real registrar), calls bob's plain RTP
// phone through the SBC and its WebRTC media gateway (ICE, DTLS-SRTP,
// PCMU); bob identifies the browser's tone, the browser's getStats shows
// bob's audio arriving and the selected candidate pair; hanging up ends
// bob's call.
func TestWebPhoneCallsDeskPhone(t *testing.T) {
	dir := t.TempDir()
	page, err := webphone.Handler(webphone.Config{Domain: domain})
	if err != nil {
		t.Fatal(err)
	}
	opts := webrtcOpts(t, dir)
	opts.page = page
	l := newLab(t, opts)
	bob := l.addPhone("bob", 60, map[string]string{"auto_answer": "1s"}, "")
	l.register(bob)

	wav := filepath.Join(dir, "tone.wav")
	webphonetest.WriteToneWAV(t, wav, browserToneHz, 10)
	ctx := webphonetest.NewBrowser(t, wav, chromedp.Flag("allow-loopback-in-peer-connection", true))
	url := fmt.Sprintf("https://%s/phone/?user=carol&target=bob", l.sbc.AccessWSSAddr())
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}
	webphonetest.Wait(t, ctx, "page ready", 10*time.Second, func(s webphonetest.State) bool { return s.Ready })
	if err := chromedp.Do(ctx, chromedp.SetValue(chromedp.ID("password"), "pw-carol"), chromedp.Click(chromedp.ID("register"))); err != nil {
		t.Fatal(err)
	}
	webphonetest.Wait(t, ctx, "registered", 10*time.Second, func(s webphonetest.State) bool { return s.Registered || s.Error != "" })
	if reg, ok := l.regOf("carol"); !ok || reg.Transport != "wss" {
		t.Fatalf("SBC registration %+v, want carol over wss", reg)
	}

	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("call"))); err != nil {
		t.Fatal(err)
	}
	st := webphonetest.Wait(t, ctx, "call confirmed", 20*time.Second, func(s webphonetest.State) bool { return s.Call == "confirmed" || s.Call == "failed" })
	if st.Call != "confirmed" {
		t.Fatalf("call %s: %s", st.Call, st.Error)
	}
	// bob hears the browser's microphone.
	var in uaclient.CallStatus
	for deadline := time.Now().Add(15 * time.Second); ; {
		cs, ok := incoming(bob)
		in = cs
		if ok && cs.Media != nil && cs.Media.Received.AudioPackets > 50 && near(cs.Media.Received.ToneHz, browserToneHz) {
			break
		}
		if time.Now().After(deadline) {
			js, _ := json.MarshalIndent(l.sbc.WebRTCCalls(), "", " ")
			t.Fatalf("bob does not hear the browser's %d Hz: %+v\ngateway: %s\npage: %+v", browserToneHz, cs.Media, js, webphonetest.Read(t, ctx))
		}
		time.Sleep(100 * time.Millisecond)
	}
	// the browser hears bob.
	st = webphonetest.Wait(t, ctx, "inbound audio in getStats", 15*time.Second, func(s webphonetest.State) bool {
		return s.Inbound != nil && s.Inbound.PacketsReceived > 50 && s.Inbound.AudioLevel > 0.01 && s.Selected != nil
	})
	if st.Inbound.Codec != "audio/PCMU" {
		t.Errorf("browser decodes %q, want audio/PCMU", st.Inbound.Codec)
	}
	if st.Selected.LocalType != "host" || st.Selected.RemoteType != "host" {
		t.Errorf("selected pair %+v: on loopback both ends are host candidates", st.Selected)
	}
	calls := l.sbc.WebRTCCalls()
	if len(calls) != 1 {
		t.Fatalf("gateway calls %+v, want one", calls)
	}
	g := calls[0]
	if !near(g.ToCore.ToneHz, browserToneHz) || !near(g.ToBrowser.ToneHz, bob.ToneHz()) || g.SelectedPair == "" {
		t.Errorf("gateway: to core %.0f Hz, to browser %.0f Hz (bob sends %.0f), pair %q", g.ToCore.ToneHz, g.ToBrowser.ToneHz, bob.ToneHz(), g.SelectedPair)
	}
	var text strings.Builder
	WriteText(&text, l.sbc.Status())
	if !strings.Contains(text.String(), "webrtc "+g.Name+": ice connected") {
		t.Errorf("sbc status does not show the browser call:\n%s", text.String())
	}
	t.Logf("browser: selected %s <-> %s, %d packets in, level %.2f; bob hears %.0f Hz", st.Selected.Local, st.Selected.Remote,
		st.Inbound.PacketsReceived, st.Inbound.AudioLevel, in.Media.Received.ToneHz)

	// DTMF from the keypad: RFC 4733 events through the gateway to bob.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => { for (const k of "5#") [...document.querySelectorAll("#keys button")].find((b) => b.textContent === k).click(); return true; })()`)); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		cs, ok := incoming(bob)
		if ok && cs.Media != nil && cs.Media.Received.DTMF == "5#" {
			break
		}
		if time.Now().After(deadline) {
			g := l.sbc.WebRTCCalls()
			t.Fatalf("bob's DTMF: %+v\ngateway to core: %+v", cs.Media, g[0].ToCore)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("hangup"))); err != nil {
		t.Fatal(err)
	}
	siptest.WaitFor(t, 10*time.Second, "bob's call ended by the browser's BYE", func() bool {
		cs, ok := incoming(bob)
		return ok && cs.State == uaclient.StateTerminated
	})
	siptest.WaitFor(t, 5*time.Second, "the gateway call released", func() bool { return len(l.sbc.WebRTCCalls()) == 0 })

	// And the other way: bob calls the browser, the intern answers.
	out, err := bob.Call(siptest.Ctx(t, 30*time.Second), "carol")
	if err != nil {
		t.Fatal(err)
	}
	webphonetest.Wait(t, ctx, "incoming call", 10*time.Second, func(s webphonetest.State) bool { return s.Call == "incoming" })
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("answer"))); err != nil {
		t.Fatal(err)
	}
	st = webphonetest.Wait(t, ctx, "answered call with inbound audio", 20*time.Second, func(s webphonetest.State) bool {
		return s.Call == "failed" || (s.Call == "confirmed" && s.Inbound != nil && s.Inbound.PacketsReceived > 50 && s.Inbound.AudioLevel > 0.01)
	})
	if st.Call != "confirmed" {
		t.Fatalf("answering bob's call: %s", st.Error)
	}
	for deadline := time.Now().Add(15 * time.Second); ; {
		m := out.Status().Media
		if m != nil && m.Received.AudioPackets > 50 && near(m.Received.ToneHz, browserToneHz) {
			break
		}
		if time.Now().After(deadline) {
			js, _ := json.MarshalIndent(l.sbc.WebRTCCalls(), "", " ")
			t.Fatalf("bob does not hear the browser on his outgoing call: %+v\ngateway: %s", m, js)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := out.Hangup(siptest.Ctx(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	webphonetest.Wait(t, ctx, "the browser sees bob's BYE", 10*time.Second, func(s webphonetest.State) bool { return s.Call == "ended" })
	siptest.WaitFor(t, 5*time.Second, "the gateway call released", func() bool { return len(l.sbc.WebRTCCalls()) == 0 })
}
