package webrtcgw

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/siplab/siplab/media"
	"github.com/siplab/siplab/sip/sdpneg"
)

// The browser calls a plain RTP phone: its offer goes in, a plain RTP/AVP
// offer comes out toward the core, the phone's answer goes back in and the
// browser's answer comes out. Each side then hears the other's tone.
func TestBrowserCallsPhone(t *testing.T) {
	for _, tc := range []struct {
		name string
		lite bool
		mux  bool
		law  string
	}{
		{"full ICE PCMU", false, false, media.PCMU},
		{"ICE-lite PCMA", true, false, media.PCMA},
		{"shared ICE socket", false, true, media.PCMU},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cfg := Config{Lite: tc.lite}
			if tc.mux {
				cfg.ICEConn = listen(t)
			}
			g := newGateway(t, cfg)
			defer g.Close()
			call := newCallT(t, g)
			browser := newTestBrowser(t, ctx, tc.law, 440)

			coreOffer, err := call.OfferFromBrowser(browser.Offer(t))
			if err != nil {
				t.Fatal(err)
			}
			off, err := sdpneg.Parse(coreOffer)
			if err != nil {
				t.Fatal(err)
			}
			if off.Proto != "RTP/AVP" || off.AddrPort() != call.CoreLocal() {
				t.Fatalf("core offer is not plain RTP to the gateway's core socket:\n%s", coreOffer)
			}
			if strings.Contains(string(coreOffer), "fingerprint") || strings.Contains(string(coreOffer), "candidate") {
				t.Fatalf("core offer leaks WebRTC attributes:\n%s", coreOffer)
			}
			phoneConn := listen(t)
			ans, codec, _, err := sdpneg.Answer(off, sdpneg.Description{Addr: loopback, Port: int(addrOf(phoneConn).Port()),
				Codecs: []sdpneg.Codec{sdpneg.PCMU, sdpneg.PCMA}, DTMFPayloadType: 101, SessionID: 1})
			if err != nil {
				t.Fatal(err)
			}
			if codec.Name != tc.law {
				t.Fatalf("core offer negotiated %v, the browser offered only %s", codec, tc.law)
			}
			phone, err := media.New(media.Config{RTP: phoneConn, Remote: off.AddrPort(), Codec: codec.Name, ToneHz: 1000})
			if err != nil {
				t.Fatal(err)
			}
			defer phone.Close()
			go phone.Run(ctx)

			browserAnswer, err := call.AnswerFromCore(ctx, ans)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(browserAnswer, "a=fingerprint:") || !strings.Contains(browserAnswer, "a=candidate:") {
				t.Fatalf("browser answer lacks DTLS fingerprint or candidates:\n%s", browserAnswer)
			}
			if tc.lite != strings.Contains(browserAnswer, "a=ice-lite") {
				t.Fatalf("lite=%v but the answer says otherwise:\n%s", tc.lite, browserAnswer)
			}
			if err := browser.PC.SetRemoteDescription(sdpAnswer(browserAnswer)); err != nil {
				t.Fatal(err)
			}
			hears(t, "phone", phone, 440)
			hears(t, "browser", browser.Session, 1000)
			checkGatewayStats(t, call, 440, 1000, addrOf(phoneConn).String())
		})
	}
}

// The core calls the browser: the PBX's plain offer in, a WebRTC offer
// out, the browser's answer in, a plain answer out.
func TestPhoneCallsBrowser(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	g := newGateway(t, Config{})
	call := newCallT(t, g)
	browser := newTestBrowser(t, ctx, media.PCMA, 600)

	phoneConn := listen(t)
	offer, err := sdpneg.Build(sdpneg.Description{Addr: loopback, Port: int(addrOf(phoneConn).Port()),
		Codecs: []sdpneg.Codec{sdpneg.PCMA, sdpneg.PCMU}, DTMFPayloadType: 101, SessionID: 7})
	if err != nil {
		t.Fatal(err)
	}
	browserOffer, err := call.OfferFromCore(ctx, offer)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(browserOffer, "UDP/TLS/RTP/SAVPF 8") || !strings.Contains(browserOffer, "a=candidate:") {
		t.Fatalf("browser offer is not DTLS-SRTP PCMA with candidates:\n%s", browserOffer)
	}
	coreAnswer, err := call.AnswerFromBrowser(browser.Answer(t, browserOffer))
	if err != nil {
		t.Fatal(err)
	}
	off, _ := sdpneg.Parse(offer)
	ans, err := sdpneg.Parse(coreAnswer)
	if err != nil {
		t.Fatal(err)
	}
	codec, dtmf, err := sdpneg.Negotiated(off, ans)
	if err != nil || codec.Name != media.PCMA || dtmf != 101 {
		t.Fatalf("core answer negotiates %v dtmf %d (%v):\n%s", codec, dtmf, err, coreAnswer)
	}
	phone, err := media.New(media.Config{RTP: phoneConn, Remote: ans.AddrPort(), Codec: codec.Name, ToneHz: 1000, DTMFPayloadType: dtmf})
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	go phone.Run(ctx)
	hears(t, "phone", phone, 600)
	hears(t, "browser", browser.Session, 1000)
	st := checkGatewayStats(t, call, 600, 1000, addrOf(phoneConn).String())
	if st.CoreDTMFPT != 101 || st.BrowserDTMFPT == 0 {
		t.Errorf("telephone-event not negotiated on both sides: core %d browser %d", st.CoreDTMFPT, st.BrowserDTMFPT)
	}
	// The phone's DTMF is counted on the way but not relayed to the browser.
	if err := phone.SendDTMF(ctx, "5", 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if st := call.Stats(); st.ToBrowser.DTMFPackets == 0 || st.ToBrowser.Dropped < st.ToBrowser.DTMFPackets {
		t.Errorf("phone's DTMF: %+v", st.ToBrowser)
	}
}

func checkGatewayStats(t *testing.T, call *Call, browserHz, phoneHz float64, phoneAddr string) Stats {
	t.Helper()
	st := call.Stats()
	if st.ICE != "connected" && st.ICE != "completed" {
		t.Errorf("ICE state %q", st.ICE)
	}
	if st.Peer != "connected" || st.DTLS != "connected" {
		t.Errorf("peer state %q, DTLS %q", st.Peer, st.DTLS)
	}
	if !strings.HasPrefix(st.SelectedPair, "host 127.0.0.1:") {
		t.Errorf("selected pair %q", st.SelectedPair)
	}
	if len(st.LocalCandidates) == 0 || len(st.RemoteCandidates) == 0 {
		t.Errorf("candidates: local %v remote %v", st.LocalCandidates, st.RemoteCandidates)
	}
	if math.Abs(st.ToCore.ToneHz-browserHz) > browserHz*0.02 || math.Abs(st.ToBrowser.ToneHz-phoneHz) > phoneHz*0.02 {
		t.Errorf("gateway heard %v Hz toward the core and %v Hz toward the browser, want %v and %v",
			st.ToCore.ToneHz, st.ToBrowser.ToneHz, browserHz, phoneHz)
	}
	if len(st.CoreSources) != 1 || st.CoreSources[0].Addr.String() != phoneAddr {
		t.Errorf("core sources %v, want only the phone %s", st.CoreSources, phoneAddr)
	}
	return st
}
