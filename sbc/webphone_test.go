package sbc

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"github.com/siplab/siplab/internal/siptest"
	"math"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/siplab/siplab/lab/labtls"
	"github.com/siplab/siplab/media/webrtcgw"
	"github.com/siplab/siplab/uaclient"
	"github.com/siplab/siplab/webphone"
)

const chromium = "/usr/bin/chromium"

// browserToneHz is the browser's fake microphone: a tone no lab phone uses.
const browserToneHz = 700

// writeToneWAV writes a 16-bit mono 48 kHz sine, what Chromium's
// --use-file-for-fake-audio-capture plays (and loops) as the microphone.
func writeToneWAV(t *testing.T, path string, hz float64, seconds int) {
	t.Helper()
	const rate = 48000
	n := rate * seconds
	b := make([]byte, 44+2*n)
	copy(b[0:], "RIFF")
	binary.LittleEndian.PutUint32(b[4:], uint32(36+2*n))
	copy(b[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(b[16:], 16)
	binary.LittleEndian.PutUint16(b[20:], 1) // PCM
	binary.LittleEndian.PutUint16(b[22:], 1) // mono
	binary.LittleEndian.PutUint32(b[24:], rate)
	binary.LittleEndian.PutUint32(b[28:], rate*2)
	binary.LittleEndian.PutUint16(b[32:], 2)
	binary.LittleEndian.PutUint16(b[34:], 16)
	copy(b[36:], "data")
	binary.LittleEndian.PutUint32(b[40:], uint32(2*n))
	for i := range n {
		v := int16(0.5 * 32767 * math.Sin(2*math.Pi*hz*float64(i)/rate))
		binary.LittleEndian.PutUint16(b[44+2*i:], uint16(v))
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func newPhoneBrowser(t *testing.T, wav string) context.Context {
	t.Helper()
	if _, err := exec.LookPath(chromium); err != nil {
		t.Fatalf("headless Chromium is needed for the web phone test: %v (apt-get install chromium)", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium),
		chromedp.Flag("log-level", "3"),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-file-for-fake-audio-capture", wav),
		chromedp.Flag("allow-loopback-in-peer-connection", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		// The lab CA is not in this browser's trust store: the intern
		// accepts the one certificate exception by hand.
		chromedp.Flag("ignore-certificate-errors", true),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(func() { cancelT(); cancelC(); cancelA() })
	return ctx
}

// pageState is window.phoneState.
type pageState struct {
	Ready      bool   `json:"ready"`
	Registered bool   `json:"registered"`
	Call       string `json:"call"`
	Error      string `json:"error"`
	ICE        string `json:"ice"`
	Selected   *struct {
		Local, Remote         string
		LocalType, RemoteType string
	} `json:"selected"`
	Inbound *struct {
		PacketsReceived  int     `json:"packetsReceived"`
		AudioLevel       float64 `json:"audioLevel"`
		TotalAudioEnergy float64 `json:"totalAudioEnergy"`
		Codec            string  `json:"codec"`
	} `json:"inbound"`
	Candidates []struct {
		Side, Type, Address string
	} `json:"candidates"`
	Pairs []struct {
		Local, Remote, State string
		Nominated            bool
		RequestsSent         int `json:"requestsSent"`
		ResponsesReceived    int `json:"responsesReceived"`
	} `json:"pairs"`
}

func readPage(t *testing.T, ctx context.Context) pageState {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify(window.phoneState || {})`))
	if err != nil {
		t.Fatal(err)
	}
	var st pageState
	if err := json.Unmarshal([]byte(s), &st); err != nil {
		t.Fatalf("phoneState %q: %v", s, err)
	}
	return st
}

func waitPage(t *testing.T, ctx context.Context, what string, d time.Duration, ok func(pageState) bool) pageState {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		st := readPage(t, ctx)
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("web phone: timed out waiting for %s: %+v", what, st)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// The browser phone end to end on loopback: headless Chromium loads
// /phone from the SBC's WSS port, registers carol over SIP-over-WSS with
// digest (the JS MD5 against the real registrar), calls bob's plain RTP
// phone through the SBC and its WebRTC media gateway (ICE, DTLS-SRTP,
// PCMU); bob identifies the browser's tone, the browser's getStats shows
// bob's audio arriving and the selected candidate pair; hanging up ends
// bob's call.
func TestWebPhoneCallsDeskPhone(t *testing.T) {
	dir := t.TempDir()
	srv, err := labtls.EnsureServerCert(dir, []netip.Addr{netip.MustParseAddr(sbcAccess), netip.MustParseAddr(sbcCore)})
	if err != nil {
		t.Fatal(err)
	}
	page, err := webphone.Handler(webphone.Config{Domain: domain})
	if err != nil {
		t.Fatal(err)
	}
	iceConn, err := net.ListenPacket("udp4", sbcAccess+":0")
	if err != nil {
		t.Fatal(err)
	}
	gw, err := webrtcgw.New(webrtcgw.Config{Lite: true, ICEConn: iceConn, IPs: []netip.Addr{netip.MustParseAddr(sbcAccess)}, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.Close() })
	l := newLab(t, labOpts{wss: srv, page: page, webrtc: gw})
	bob := l.addPhone("bob", 60, map[string]string{"auto_answer": "1s"}, "")
	l.register(bob)

	wav := filepath.Join(dir, "tone.wav")
	writeToneWAV(t, wav, browserToneHz, 10)
	ctx := newPhoneBrowser(t, wav)
	url := fmt.Sprintf("https://%s/phone/?user=carol&target=bob", l.sbc.AccessWSSAddr())
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}
	waitPage(t, ctx, "page ready", 10*time.Second, func(s pageState) bool { return s.Ready })
	if err := chromedp.Do(ctx, chromedp.SetValue(chromedp.ID("password"), "pw-carol"), chromedp.Click(chromedp.ID("register"))); err != nil {
		t.Fatal(err)
	}
	waitPage(t, ctx, "registered", 10*time.Second, func(s pageState) bool { return s.Registered || s.Error != "" })
	if reg, ok := l.regOf("carol"); !ok || reg.Transport != "wss" {
		t.Fatalf("SBC registration %+v, want carol over wss", reg)
	}

	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("call"))); err != nil {
		t.Fatal(err)
	}
	st := waitPage(t, ctx, "call confirmed", 20*time.Second, func(s pageState) bool { return s.Call == "confirmed" || s.Call == "failed" })
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
			t.Fatalf("bob does not hear the browser's %d Hz: %+v\ngateway: %s\npage: %+v", browserToneHz, cs.Media, js, readPage(t, ctx))
		}
		time.Sleep(100 * time.Millisecond)
	}
	// the browser hears bob.
	st = waitPage(t, ctx, "inbound audio in getStats", 15*time.Second, func(s pageState) bool {
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
	waitPage(t, ctx, "incoming call", 10*time.Second, func(s pageState) bool { return s.Call == "incoming" })
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("answer"))); err != nil {
		t.Fatal(err)
	}
	st = waitPage(t, ctx, "answered call with inbound audio", 20*time.Second, func(s pageState) bool {
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
	waitPage(t, ctx, "the browser sees bob's BYE", 10*time.Second, func(s pageState) bool { return s.Call == "ended" })
	siptest.WaitFor(t, 5*time.Second, "the gateway call released", func() bool { return len(l.sbc.WebRTCCalls()) == 0 })
}
