package sbc

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/b2bua"
	"github.com/siplab/siplab/internal/siptest"
	"github.com/siplab/siplab/media"
	"github.com/siplab/siplab/media/webrtcgw"
	"github.com/siplab/siplab/media/webrtcgw/webrtcgwtest"
	"github.com/siplab/siplab/sip/sdpneg"
	"github.com/siplab/siplab/sip/sipdialog"
	"github.com/siplab/siplab/uaclient"
)

// The browser and the PBX through the SBC's WebRTC gateway, on real
// sockets: a pion PeerConnection stands in for the browser (its
// microphone a tone, its speaker a tone meter) and speaks SIP over WSS
// to the SBC; behind it the proxy, the registrar, the PBX and desk
// phones on the core. Chromium's own run of the page is webphone_test.go.

// gwBrowserHz is the browser stand-in's microphone: a tone no lab phone
// and no music on hold uses.
const gwBrowserHz = 1550

// gwDialPlan is the PBX's: desk phones, the browser (carol) and bob's
// mailbox.
const gwDialPlan = "100 alice\n101 bob\n102 carol\n199 voicemail:bob\n"

// gatewayLab is the platform with the PBX, the SBC with WSS and its
// gateway, alice and bob at desk phones on the core, and carol's browser
// registered over WSS.
type gatewayLab struct {
	*lab
	alice, bob *uaclient.Phone
	carol      *wsPhone
}

func newGatewayLab(t *testing.T, settings map[string]string) *gatewayLab {
	t.Helper()
	dir := t.TempDir()
	opts := webrtcOpts(t, dir)
	opts.pbx = gwDialPlan
	l := newLab(t, opts)
	for name, v := range settings {
		if err := l.pbx.Set(name, v); err != nil {
			t.Fatal(err)
		}
	}
	g := &gatewayLab{lab: l, alice: l.deskPhone("alice", 50), bob: l.deskPhone("bob", 51)}
	g.carol = newWSPhone(t, filepath.Join(dir, "ca.pem"), l.sbc.AccessWSSAddr(), true)
	if res := g.carol.register(t, siptest.Ctx(t, 10*time.Second), "carol", "pw-carol"); res.StatusCode != 200 {
		t.Fatalf("carol's REGISTER over WSS: %d %s", res.StatusCode, res.Reason)
	}
	return g
}

// browser is a new browser stand-in for carol's page. ICE gathers from
// interface addresses, and of the loopback block only 127.0.0.1 is one.
func (g *gatewayLab) browser(t *testing.T) *webrtcgwtest.Browser {
	return webrtcgwtest.New(t, g.ctx, netip.MustParseAddr("127.0.0.1"), media.PCMU, gwBrowserHz)
}

// gatewayCall is the gateway's one call.
func (g *gatewayLab) gatewayCall(t *testing.T) webrtcgw.Stats {
	t.Helper()
	calls := g.sbc.WebRTCCalls()
	if len(calls) != 1 {
		t.Fatalf("gateway calls: %d, want 1", len(calls))
	}
	return calls[0]
}

// heard waits until a desk phone's call hears hz in what arrived after
// `after` audio packets.
func heard(t *testing.T, who string, ph *uaclient.Phone, id string, hz float64, after uint64) {
	t.Helper()
	var st uaclient.CallStatus
	for deadline := time.Now().Add(10 * time.Second); ; {
		st, _ = ph.CallStatus(id)
		if m := st.Media; m != nil && m.Received.AudioPackets > after+50 && webrtcgwtest.Near(m.Received.ToneHz, hz) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not hear %.0f Hz: %+v", who, hz, st.Media)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func audioIn(ph *uaclient.Phone, id string) uint64 {
	st, _ := ph.CallStatus(id)
	if st.Media == nil {
		return 0
	}
	return st.Media.Received.AudioPackets
}

func received(b *webrtcgwtest.Browser) uint64 { return b.Session.Stats().Received.AudioPackets }

// noReinvites checks that nothing but BYE reached the browser in dialog:
// the core's re-offers were the gateway's to answer.
func (g *gatewayLab) noReinvites(t *testing.T) {
	t.Helper()
	for {
		select {
		case r := <-g.carol.indialog:
			if r.Method != sip.BYE {
				t.Fatalf("the browser got a %s:\n%s", r.Method, r)
			}
		default:
			return
		}
	}
}

// The browser calls bob's desk phone through the PBX; bob holds it: the
// browser hears the PBX's music on hold, then bob again after he
// resumes; then the page holds and resumes. With media anchored the PBX
// answers bob's hold itself; with direct media it re-INVITEs the browser
// onto its relay for the music and off again, and the gateway answers
// those re-INVITEs — the browser never sees one.
func TestBrowserHoldResumeWithPBX(t *testing.T) {
	eachMediaMode(t, func(t *testing.T, g *gatewayLab, ctx context.Context, direct bool) {
		b, call, bobCall := g.browserCalls(t, ctx, "101", g.bob)
		t.Cleanup(func() {
			if t.Failed() {
				js, _ := json.MarshalIndent(g.sbc.WebRTCCalls(), "", " ")
				var pbx strings.Builder
				b2bua.WriteText(&pbx, g.pbx.Status())
				t.Logf("gateway: %s\nPBX:\n%s", js, pbx.String())
			}
		})

		// bob holds: music on hold in the browser.
		before := received(b)
		if err := g.bob.Hold(ctx, bobCall.ID); err != nil {
			t.Fatal(err)
		}
		webrtcgwtest.HearsAfter(t, "browser held by bob (music on hold)", b.Session, b2bua.DefaultMOHHz, before)
		before = received(b)
		if err := g.bob.Resume(ctx, bobCall.ID); err != nil {
			t.Fatal(err)
		}
		webrtcgwtest.HearsAfter(t, "browser after bob resumed", b.Session, g.bob.ToneHz(), before)
		heard(t, "bob after resuming", g.bob, bobCall.ID, gwBrowserHz, audioIn(g.bob, bobCall.ID))
		g.noReinvites(t)
		st := g.gatewayCall(t)
		if direct && st.Renegotiations < 2 {
			t.Errorf("direct media: the gateway answered %d re-offers from the PBX, want its hold and resume", st.Renegotiations)
		}

		// The page holds: bob hears the PBX's music, the browser nothing.
		res := call.reinvite(t, ctx, b.Reoffer(t, sdpneg.SendOnly, false))
		if res.StatusCode != 200 || !strings.Contains(string(res.Body()), "a=recvonly") {
			t.Fatalf("the page's hold: %d %s\n%s", res.StatusCode, res.Reason, res.Body())
		}
		b.Accept(t, string(res.Body()))
		heard(t, "bob held by the browser (music on hold)", g.bob, bobCall.ID, b2bua.DefaultMOHHz, audioIn(g.bob, bobCall.ID))
		webrtcgwtest.Silent(t, "browser holding", b.Session, time.Second)
		// The page resumes with an ICE restart (new credentials): the
		// gateway's answer has new ones too, and media flows on them.
		held := string(res.Body())
		res = call.reinvite(t, ctx, b.Reoffer(t, sdpneg.SendRecv, true))
		if res.StatusCode != 200 {
			t.Fatalf("the page's resume: %d %s", res.StatusCode, res.Reason)
		}
		if u := webrtcgwtest.Ufrag(string(res.Body())); u == "" || u == webrtcgwtest.Ufrag(held) {
			t.Errorf("ICE restart answered with ufrag %q, before %q", u, webrtcgwtest.Ufrag(held))
		}
		b.Accept(t, string(res.Body()))
		webrtcgwtest.HearsAfter(t, "browser after resuming", b.Session, g.bob.ToneHz(), received(b))
		heard(t, "bob after the browser resumed", g.bob, bobCall.ID, gwBrowserHz, audioIn(g.bob, bobCall.ID))

		// A re-offer the gateway cannot take (plain RTP from a browser):
		// 488, and the call goes on as it was.
		plain := "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
		if res := call.reinvite(t, ctx, plain); res.StatusCode != 488 {
			t.Fatalf("plain RTP re-offer from the browser: %d %s, want 488", res.StatusCode, res.Reason)
		}
		heard(t, "bob after the refused re-offer", g.bob, bobCall.ID, gwBrowserHz, audioIn(g.bob, bobCall.ID))
		webrtcgwtest.HearsAfter(t, "browser after the refused re-offer", b.Session, g.bob.ToneHz(), received(b))

		call.bye(t, ctx)
		if _, err := g.bob.WaitCall(siptest.Ctx(t, 5*time.Second), bobCall.ID, uaclient.StateTerminated); err != nil {
			t.Fatal(err)
		}
		siptest.WaitFor(t, 5*time.Second, "the gateway call released", func() bool { return len(g.sbc.WebRTCCalls()) == 0 })
	})
}

// mediaModes are the PBX's two ways to carry a call's media: through its
// relay, or phone to phone — then it re-INVITEs the browser onto its relay
// for music on hold or a transfer, and the gateway answers.
var mediaModes = []struct {
	name     string
	settings map[string]string
}{
	{"media anchored", nil},
	{"direct media", map[string]string{b2bua.SettingMediaAnchor: "off"}},
}

// eachMediaMode runs test in a new lab for each of mediaModes; direct is
// the PBX's direct media.
func eachMediaMode(t *testing.T, test func(t *testing.T, g *gatewayLab, ctx context.Context, direct bool)) {
	for _, tc := range mediaModes {
		t.Run(tc.name, func(t *testing.T) {
			test(t, newGatewayLab(t, tc.settings), siptest.Ctx(t, 60*time.Second), tc.settings != nil)
		})
	}
}

// browserCalls has a new browser call ext, answered by the desk phone ph,
// and waits for audio both ways.
func (g *gatewayLab) browserCalls(t *testing.T, ctx context.Context, ext string, ph *uaclient.Phone) (*webrtcgwtest.Browser, *wsCall, uaclient.CallStatus) {
	t.Helper()
	b := g.browser(t)
	call := g.carol.dial(t, ctx, ext, "carol", "pw-carol", b)
	in, err := ph.WaitCall(siptest.Ctx(t, 5*time.Second), "", uaclient.StateConfirmed)
	if err != nil {
		t.Fatal(err)
	}
	webrtcgwtest.Hears(t, "browser", b.Session, ph.ToneHz())
	heard(t, ph.Name(), ph, in.ID, gwBrowserHz, 0)
	return b, call, in
}

// --- carol's browser: SIP over WSS around the stand-in -----------------

// incomingCall is an INVITE to the browser waiting for the test's answer.
type incomingCall struct {
	req  *sip.Request
	tx   sip.ServerTransaction
	done chan struct{}
}

// answer hands an INVITE to the test and waits (at most 20 s) until it
// is answered, keeping the server transaction in its handler.
func (p *wsPhone) answer(req *sip.Request, tx sip.ServerTransaction) {
	in := incomingCall{req: req, tx: tx, done: make(chan struct{})}
	p.incoming <- in
	select {
	case <-in.done:
	case <-time.After(20 * time.Second):
	}
}

// accept answers an incoming call with the browser's SDP.
func (p *wsPhone) accept(t *testing.T, in incomingCall, sdp string) {
	t.Helper()
	defer close(in.done)
	res := sip.NewResponseFromRequest(in.req, sip.StatusOK, "OK", []byte(sdp))
	res.To().Params.Add("tag", sip.GenerateTagN(8))
	res.AppendHeader(p.contact())
	res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	if err := in.tx.Respond(res); err != nil {
		t.Fatal(err)
	}
}

// contact is the browser's RFC 7118 Contact.
func (p *wsPhone) contact() *sip.ContactHeader {
	u := sip.Uri{Scheme: "sip", User: "k3x9", Host: "df7jal23ls0d.invalid", UriParams: sip.NewParams()}
	u.UriParams.Add("transport", "ws")
	return &sip.ContactHeader{Address: u}
}

// wsCall is a call the browser made: its dialog, requests over its WSS
// connection to the SBC.
type wsCall struct {
	p   *wsPhone
	dlg sipdialog.Dialog
}

// dial calls target from user with the browser's offer, answers the
// proxy's challenge, ACKs the 2xx and gives the browser the answer.
func (p *wsPhone) dial(t *testing.T, ctx context.Context, target, user, password string, b *webrtcgwtest.Browser) *wsCall {
	t.Helper()
	aor := sip.Uri{Scheme: "sip", User: user, Host: domain}
	to := sip.Uri{Scheme: "sip", User: target, Host: domain}
	req := sip.NewRequest(sip.INVITE, to)
	from := &sip.FromHeader{Address: aor, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(8))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: to, Params: sip.NewParams()})
	req.AppendHeader(p.contact())
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody([]byte(b.Offer(t)))
	req.SetDestination(p.sbc.String())
	req.SetTransport("WSS")
	res, err := p.client.Do(ctx, req)
	if err == nil && (res.StatusCode == 401 || res.StatusCode == 407) {
		res, err = p.client.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: user, Password: password})
	}
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 {
		t.Fatalf("browser's INVITE to %s: %d %s", target, res.StatusCode, res.Reason)
	}
	c := &wsCall{p: p, dlg: sipdialog.Dialog{CallID: sipdialog.CallID(req), LocalTag: sipdialog.FromTag(req),
		RemoteTag: sipdialog.ToTag(res), LocalURI: aor, RemoteURI: to, LocalSeq: req.CSeq().SeqNo,
		RemoteTarget: *res.Contact().Address.Clone(), RouteSet: sipdialog.RouteSetAsUAC(res)}}
	c.ack(t, req.CSeq().SeqNo)
	b.Accept(t, string(res.Body()))
	return c
}

// request is an in-dialog request over the browser's connection.
func (c *wsCall) request(method sip.RequestMethod, seq uint32) *sip.Request {
	req := c.dlg.Request(method, seq)
	req.SetDestination(c.p.sbc.String())
	req.SetTransport("WSS")
	return req
}

func (c *wsCall) ack(t *testing.T, seq uint32) {
	t.Helper()
	if err := c.p.client.WriteRequest(c.request(sip.ACK, seq)); err != nil {
		t.Fatal(err)
	}
}

// reinvite sends a re-INVITE with the browser's re-offer, ACKs a 2xx and
// returns the final response.
func (c *wsCall) reinvite(t *testing.T, ctx context.Context, offer string) *sip.Response {
	t.Helper()
	req := c.request(sip.INVITE, 0)
	req.AppendHeader(c.p.contact())
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody([]byte(offer))
	res, err := c.p.client.Do(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if res.IsSuccess() {
		c.ack(t, req.CSeq().SeqNo)
	}
	return res
}

func (c *wsCall) bye(t *testing.T, ctx context.Context) {
	t.Helper()
	res, err := c.p.client.Do(ctx, c.request(sip.BYE, 0))
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("browser's BYE: %v %v", res, err)
	}
}

// The browser calls alice (100), who blind-transfers it to bob (101): the
// PBX calls bob and puts him in alice's place; the browser then talks to
// bob both ways on its unchanged dialog. With direct media the PBX first
// re-INVITEs the browser onto its relay; the gateway answers that.
func TestBrowserTransferredByPBX(t *testing.T) {
	eachMediaMode(t, func(t *testing.T, g *gatewayLab, ctx context.Context, direct bool) {
		b, call, aliceCall := g.browserCalls(t, ctx, "100", g.alice)

		before := received(b)
		if err := g.alice.Transfer(ctx, aliceCall.ID, "101", ""); err != nil {
			t.Fatal(err)
		}
		bobCall, err := g.bob.WaitCall(siptest.Ctx(t, 10*time.Second), "", uaclient.StateConfirmed)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := g.alice.WaitCall(siptest.Ctx(t, 10*time.Second), aliceCall.ID, uaclient.StateTerminated); err != nil {
			t.Fatal(err)
		}
		webrtcgwtest.HearsAfter(t, "browser after the transfer", b.Session, g.bob.ToneHz(), before)
		heard(t, "bob", g.bob, bobCall.ID, gwBrowserHz, 0)
		g.noReinvites(t)
		if st := g.gatewayCall(t); direct && st.Renegotiations == 0 {
			t.Errorf("direct media: the gateway answered no re-offer from the PBX's transfer")
		}
		call.bye(t, ctx)
		if _, err := g.bob.WaitCall(siptest.Ctx(t, 5*time.Second), bobCall.ID, uaclient.StateTerminated); err != nil {
			t.Fatal(err)
		}
	})
}

// The browser calls bob's mailbox (199): the PBX answers and records;
// the message holds the browser's tone.
func TestBrowserLeavesVoicemail(t *testing.T) {
	g := newGatewayLab(t, nil)
	b := g.browser(t)
	ctx := siptest.Ctx(t, 30*time.Second)
	call := g.carol.dial(t, ctx, "199", "carol", "pw-carol", b)
	siptest.WaitFor(t, 10*time.Second, "2 s recorded", func() bool {
		for _, c := range g.pbx.Status().Calls {
			if c.Recording != nil && c.Recording.Seconds >= 2 {
				return true
			}
		}
		return false
	})
	call.bye(t, ctx)
	var msg b2bua.Message
	siptest.WaitFor(t, 5*time.Second, "bob's message", func() bool {
		for _, m := range g.pbx.Status().Mailbox {
			if m.User == "bob" && len(m.Messages) == 1 {
				msg = m.Messages[0]
				return true
			}
		}
		return false
	})
	if msg.From != "carol" {
		t.Errorf("message from %q, want carol", msg.From)
	}
	wav, err := os.ReadFile(msg.File)
	if err != nil {
		t.Fatal(err)
	}
	samples, rate, err := siptest.ParseWAV(wav)
	if err != nil {
		t.Fatal(err)
	}
	if hz := siptest.ToneHz(samples); rate != 8000 || len(samples) < 12000 || !webrtcgwtest.Near(hz, gwBrowserHz) {
		t.Fatalf("voicemail: %d samples at %d Hz, tone %.0f Hz; the browser sends %d Hz", len(samples), rate, hz, gwBrowserHz)
	}
}

// alice calls the browser through the PBX (102): the SBC's INVITE
// carries the gateway's WebRTC offer, the browser answers, audio both
// ways; alice holds (the browser hears music on hold) and resumes, and
// her hang-up reaches the browser and releases the gateway.
func TestBrowserIsCalledThroughPBX(t *testing.T) {
	g := newGatewayLab(t, nil)
	b := g.browser(t)
	ctx := siptest.Ctx(t, 60*time.Second)
	out, err := g.alice.Call(ctx, "102")
	if err != nil {
		t.Fatal(err)
	}
	var in incomingCall
	select {
	case in = <-g.carol.incoming:
	case <-ctx.Done():
		t.Fatal("the browser got no INVITE")
	}
	if !isWebRTCSDP(in.req.Body()) {
		t.Fatalf("INVITE to the browser without a WebRTC offer:\n%s", in.req.Body())
	}
	g.carol.accept(t, in, b.Answer(t, string(in.req.Body())))
	if _, err := out.Wait(siptest.Ctx(t, 10*time.Second), uaclient.StateConfirmed); err != nil {
		t.Fatal(err)
	}
	webrtcgwtest.Hears(t, "browser", b.Session, g.alice.ToneHz())
	heard(t, "alice", g.alice, out.ID(), gwBrowserHz, 0)

	before := received(b)
	if err := g.alice.Hold(ctx, out.ID()); err != nil {
		t.Fatal(err)
	}
	webrtcgwtest.HearsAfter(t, "browser held by alice (music on hold)", b.Session, b2bua.DefaultMOHHz, before)
	before = received(b)
	if err := g.alice.Resume(ctx, out.ID()); err != nil {
		t.Fatal(err)
	}
	webrtcgwtest.HearsAfter(t, "browser after alice resumed", b.Session, g.alice.ToneHz(), before)

	if err := out.Hangup(siptest.Ctx(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-g.carol.indialog:
		if r.Method != sip.BYE {
			t.Fatalf("the browser got a %s, want alice's BYE", r.Method)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("alice's BYE did not reach the browser")
	}
	siptest.WaitFor(t, 5*time.Second, "the gateway call released", func() bool { return len(g.sbc.WebRTCCalls()) == 0 })
}
