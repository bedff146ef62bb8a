package webrtcgw

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/siplab/siplab/media"
	"github.com/siplab/siplab/media/webrtcgw/webrtcgwtest"
	"github.com/siplab/siplab/sip/sdpneg"
)

// corePhone is a plain RTP endpoint on the core side: the desk phone, the
// PBX's music on hold, a transfer target.
type corePhone struct {
	conn net.PacketConn
	s    *media.Session
	stop context.CancelFunc
}

func newCorePhone(t *testing.T, ctx context.Context, call *Call, hz float64) *corePhone {
	t.Helper()
	conn := listen(t)
	s, err := media.New(media.Config{RTP: conn, Remote: call.CoreLocal(), Codec: media.PCMU, ToneHz: hz})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx, stop := context.WithCancel(ctx)
	go s.Run(ctx)
	return &corePhone{conn: conn, s: s, stop: stop}
}

// offer is the core's (re-)offer pointing at this endpoint.
func (p *corePhone) offer(t *testing.T, dir sdpneg.Direction, version uint64) []byte {
	t.Helper()
	b, err := sdpneg.Build(sdpneg.Description{Addr: loopback, Port: int(addrOf(p.conn).Port()), Codecs: []sdpneg.Codec{sdpneg.PCMU},
		DTMFPayloadType: 101, Direction: dir, SessionID: 9, SessionVersion: version})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// answer is this endpoint's answer to the gateway's (re-)offer.
func (p *corePhone) answer(t *testing.T, offer []byte, dir sdpneg.Direction) []byte {
	t.Helper()
	off, err := sdpneg.Parse(offer)
	if err != nil {
		t.Fatal(err)
	}
	b, _, _, err := sdpneg.Answer(off, sdpneg.Description{Addr: loopback, Port: int(addrOf(p.conn).Port()),
		Codecs: []sdpneg.Codec{sdpneg.PCMU}, DTMFPayloadType: 101, Direction: dir, SessionID: 9, SessionVersion: 2})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func received(s *media.Session) uint64 { return s.Stats().Received.AudioPackets }

// A call from the browser is renegotiated from both sides as a PBX does
// it: the core holds the browser with music from another address (the
// gateway answers recvonly itself, the browser hears the music and sends
// the core nothing), resumes toward a transfer target, then the page holds
// (sendonly to the core, the browser hears nothing while the target still
// hears it) and resumes with an ICE restart. Each side hears the right
// tone at every step; the core-side changes never renegotiate the
// browser's PeerConnection.
func TestRenegotiationFromBothSides(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	g := newGateway(t, Config{Lite: true, ICEConn: listen(t)})
	defer g.Close()
	call := newCallT(t, g)
	browser := newTestBrowser(t, ctx, media.PCMU, 440)
	desk := newCorePhone(t, ctx, call, 1000)

	coreOffer, err := call.OfferFromBrowser(browser.Offer(t))
	if err != nil {
		t.Fatal(err)
	}
	browserAnswer, err := call.AnswerFromCore(ctx, desk.answer(t, coreOffer, sdpneg.SendRecv))
	if err != nil {
		t.Fatal(err)
	}
	browser.Accept(t, browserAnswer)
	hears(t, "desk phone", desk.s, 440)
	hears(t, "browser", browser.Session, 1000)
	firstAnswer := browser.PC.RemoteDescription().SDP

	// The PBX holds the browser: music from its own address, sendonly.
	desk.stop()
	moh := newCorePhone(t, ctx, call, 1400)
	before := received(browser.Session)
	ans, err := call.ReofferFromCore(moh.offer(t, sdpneg.SendOnly, 2))
	if err != nil {
		t.Fatal(err)
	}
	a := mustParse(t, ans)
	if a.Direction != sdpneg.RecvOnly || a.AddrPort() != call.CoreLocal() || a.SessionVersion < 2 {
		t.Fatalf("hold answered %s at %v version %d, want recvonly at the gateway's %v", a.Direction, a.AddrPort(), a.SessionVersion, call.CoreLocal())
	}
	webrtcgwtest.HearsAfter(t, "browser on hold (music)", browser.Session, 1400, before)
	webrtcgwtest.Silent(t, "the PBX holding the browser", moh.s, time.Second)
	if st := call.Stats(); st.CoreDirection != sdpneg.SendOnly || st.ToCore.Dropped == 0 {
		t.Errorf("gateway while held: core %s, to core %+v", st.CoreDirection, st.ToCore)
	}

	// The PBX resumes toward a transfer target at yet another address.
	moh.stop()
	target := newCorePhone(t, ctx, call, 1200)
	before = received(browser.Session)
	if ans, err = call.ReofferFromCore(target.offer(t, sdpneg.SendRecv, 3)); err != nil {
		t.Fatal(err)
	}
	if a := mustParse(t, ans); a.Direction != sdpneg.SendRecv {
		t.Fatalf("resume answered %s", a.Direction)
	}
	webrtcgwtest.HearsAfter(t, "browser after the transfer", browser.Session, 1200, before)
	hears(t, "transfer target", target.s, 440)
	if got := browser.PC.RemoteDescription().SDP; got != firstAnswer {
		t.Errorf("the core's re-offers renegotiated the browser:\n%s", got)
	}

	// The page holds: sendonly toward the core, nothing toward the browser.
	plain, err := call.ReofferFromBrowser(browser.Reoffer(t, sdpneg.SendOnly, false))
	if err != nil {
		t.Fatal(err)
	}
	o := mustParse(t, plain)
	if o.Direction != sdpneg.SendOnly || o.AddrPort() != call.CoreLocal() || o.Proto != "RTP/AVP" {
		t.Fatalf("core re-offer for the page's hold: %s at %v %s", o.Direction, o.AddrPort(), o.Proto)
	}
	browserAnswer, err = call.AnswerFromCore(ctx, target.answer(t, plain, sdpneg.SendRecv))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(browserAnswer, "a=recvonly") {
		t.Fatalf("the page's hold answered without recvonly:\n%s", browserAnswer)
	}
	browser.Accept(t, browserAnswer)
	webrtcgwtest.Silent(t, "browser holding", browser.Session, time.Second)
	before = received(target.s)
	webrtcgwtest.HearsAfter(t, "transfer target while the page holds", target.s, 440, before)

	// The page resumes with an ICE restart; its first try (inactive, say)
	// is refused by the core and changes nothing, the second is taken:
	// audio both ways again.
	resume := browser.Reoffer(t, sdpneg.SendRecv, true)
	if _, err := call.ReofferFromBrowser(strings.ReplaceAll(resume, "a=sendrecv", "a=inactive")); err != nil {
		t.Fatal(err)
	}
	call.Refused()
	if st := call.Stats(); st.BrowserDirection != sdpneg.SendOnly || st.Renegotiations != 3 {
		t.Fatalf("a refused re-offer changed the call: browser %s, %d renegotiations", st.BrowserDirection, st.Renegotiations)
	}
	before = received(browser.Session)
	plain, err = call.ReofferFromBrowser(resume)
	if err != nil {
		t.Fatal(err)
	}
	if o := mustParse(t, plain); o.Direction != sdpneg.SendRecv {
		t.Fatalf("resume re-offer %s", o.Direction)
	}
	browserAnswer, err = call.AnswerFromCore(ctx, target.answer(t, plain, sdpneg.SendRecv))
	if err != nil {
		t.Fatal(err)
	}
	if webrtcgwtest.Ufrag(browserAnswer) == webrtcgwtest.Ufrag(firstAnswer) || webrtcgwtest.Ufrag(browserAnswer) == "" {
		t.Errorf("ICE restart answered with the old credentials %q", webrtcgwtest.Ufrag(browserAnswer))
	}
	browser.Accept(t, browserAnswer)
	webrtcgwtest.HearsAfter(t, "browser after resuming", browser.Session, 1200, before)
	before = received(target.s)
	webrtcgwtest.HearsAfter(t, "transfer target after the ICE restart", target.s, 440, before)
	if st := call.Stats(); st.Renegotiations != 4 || st.BrowserDirection != sdpneg.SendRecv || st.CoreDirection != sdpneg.SendRecv {
		t.Errorf("after resume: %d renegotiations, browser %s, core %s", st.Renegotiations, st.BrowserDirection, st.CoreDirection)
	}
}

// Re-offers the gateway cannot take are refused with the error the SBC
// maps to 488 or 491, and leave the call as it was.
func TestRenegotiationRefusals(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	g := newGateway(t, Config{Lite: true})
	defer g.Close()
	call := newCallT(t, g)
	browser := newTestBrowser(t, ctx, media.PCMU, 440)
	desk := newCorePhone(t, ctx, call, 1000)
	if _, err := call.ReofferFromCore(desk.offer(t, sdpneg.SendRecv, 1)); !isErr(err, ErrState) {
		t.Fatalf("re-offer before any call: %v, want ErrState", err)
	}
	coreOffer, err := call.OfferFromBrowser(browser.Offer(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := call.ReofferFromBrowser(browser.PC.LocalDescription().SDP); !isErr(err, ErrState) {
		t.Fatalf("browser re-offer before the core answered: %v, want ErrState", err)
	}
	browserAnswer, err := call.AnswerFromCore(ctx, desk.answer(t, coreOffer, sdpneg.SendRecv))
	if err != nil {
		t.Fatal(err)
	}
	browser.Accept(t, browserAnswer)
	pcma, _ := sdpneg.Build(sdpneg.Description{Addr: loopback, Port: 4000, Codecs: []sdpneg.Codec{sdpneg.PCMA}, SessionID: 9, SessionVersion: 5})
	if _, err := call.ReofferFromCore(pcma); !isErr(err, ErrNoCommonCodec) {
		t.Fatalf("core re-offer of another codec: %v, want ErrNoCommonCodec", err)
	}
	if _, err := call.ReofferFromBrowser(string(pcma)); !isErr(err, ErrBadSDP) {
		t.Fatalf("plain RTP re-offer from the browser: %v, want ErrBadSDP", err)
	}
	// Offerless: the gateway offers what it has.
	body, err := call.ReofferFromCore(nil)
	if err != nil {
		t.Fatal(err)
	}
	if o := mustParse(t, body); o.AddrPort() != call.CoreLocal() || o.Direction != sdpneg.SendRecv {
		t.Fatalf("offer for an offerless re-INVITE: %s at %v", o.Direction, o.AddrPort())
	}
	hears(t, "browser still", browser.Session, 1000)
}

func mustParse(t *testing.T, body []byte) *sdpneg.Remote {
	t.Helper()
	r, err := sdpneg.Parse(body)
	if err != nil {
		t.Fatalf("%v:\n%s", err, body)
	}
	return r
}
