package uaclient

import (
	"errors"
	"math"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/media"
	"github.com/siplab/siplab/sip/sdpneg"
)

// pair10 is pair on 127.0.10.x (alice .1, bob .2): two phones whose
// "proxy" is each other.
func pair10(t *testing.T, aliceMod, bobMod func(*Config)) (alice, bob *Phone) {
	t.Helper()
	return pairAt(t, "127.0.10.1", "127.0.10.2", aliceMod, bobMod)
}

// mediaOf is a call's live media statistics (fatal if none).
func mediaOf(t *testing.T, p *Phone, ref string) media.Stats {
	t.Helper()
	st, err := p.CallStatus(ref)
	if err != nil || st.Media == nil {
		t.Fatalf("%s call %s: no media (%v)", p.Name(), ref, err)
	}
	return *st.Media
}

// connect makes alice call bob (auto-answer) and waits for audio both ways.
func connect(t *testing.T, alice, bob *Phone) (aRef, bRef string) {
	t.Helper()
	if err := bob.Set("auto_answer", "1ms"); err != nil {
		t.Fatal(err)
	}
	c, err := alice.Call(testCtx(t), "bob")
	if err != nil {
		t.Fatal(err)
	}
	waitCall(t, alice, c.ID(), StateConfirmed)
	b := waitCall(t, bob, "", StateConfirmed)
	eventually(t, "audio both ways", func() bool {
		return mediaReceived(alice, c.ID(), 25) && mediaReceived(bob, b.ID, 25)
	})
	return c.ID(), b.ID
}

// TestHoldResume: hold by re-INVITE (a=sendonly or a=inactive, answered
// recvonly or inactive), from either end of the call, proven with RTP
// counters: while held, the held phone sends no packet at all and the
// holder takes in nothing; after resume audio flows both ways again.
func TestHoldResume(t *testing.T) {
	tests := []struct {
		name       string
		holder     string // "alice" (caller) or "bob" (callee)
		mode       string
		holderDir  string
		heldDir    string
		holderSend bool // the holder keeps sending (music on hold)
	}{
		{name: "caller holds sendonly", holder: "alice", mode: HoldSendOnly, holderDir: "sendonly", heldDir: "recvonly", holderSend: true},
		{name: "callee holds sendonly", holder: "bob", mode: HoldSendOnly, holderDir: "sendonly", heldDir: "recvonly", holderSend: true},
		{name: "caller holds inactive", holder: "alice", mode: HoldInactive, holderDir: "inactive", heldDir: "inactive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			alice, bob := pair10(t, nil, nil)
			aRef, bRef := connect(t, alice, bob)
			holder, held, hRef, dRef := alice, bob, aRef, bRef
			if tt.holder == "bob" {
				holder, held, hRef, dRef = bob, alice, bRef, aRef
			}
			if err := holder.Set("hold_mode", tt.mode); err != nil {
				t.Fatal(err)
			}
			ctx := testCtx(t)
			if err := holder.Resume(ctx, hRef); !errors.Is(err, ErrCallState) {
				t.Fatalf("resume of a call not on hold: %v, want ErrCallState", err)
			}
			if err := holder.Hold(ctx, hRef); err != nil {
				t.Fatal(err)
			}
			if err := holder.Hold(ctx, hRef); !errors.Is(err, ErrCallState) {
				t.Fatalf("second hold: %v, want ErrCallState", err)
			}
			h, _ := holder.CallStatus(hRef)
			if h.Hold != "local" || h.LocalDirection != tt.holderDir || h.RemoteDirection != tt.heldDir {
				t.Fatalf("holder: hold %q local %s remote %s, want local %s/%s", h.Hold, h.LocalDirection, h.RemoteDirection, tt.holderDir, tt.heldDir)
			}
			d, _ := held.CallStatus(dRef)
			if d.Hold != "remote" || d.LocalDirection != tt.heldDir || d.RemoteDirection != tt.holderDir {
				t.Fatalf("held: hold %q local %s remote %s, want remote %s/%s", d.Hold, d.LocalDirection, d.RemoteDirection, tt.heldDir, tt.holderDir)
			}
			// The held phone's answer went out before the holder's re-INVITE
			// returned, but its media loop applies it on its next tick.
			eventually(t, "held phone stops sending", func() bool { return !mediaOf(t, held, dRef).Sending })
			if mediaOf(t, holder, hRef).Receiving {
				t.Fatal("holder still takes in audio while holding")
			}
			if got := mediaOf(t, holder, hRef).Sending; got != tt.holderSend {
				t.Fatalf("holder sending %v during %s hold, want %v", got, tt.mode, tt.holderSend)
			}
			// Watch a window: with sendonly, until the held phone has taken
			// in 25 packets of the holder's audio (music on hold); with
			// inactive, one second. A send loop tick that read "sending"
			// just before the change may still land one packet: at most 1
			// is tolerated, a working stream would be dozens.
			heldSent := mediaOf(t, held, dRef).Sent.Packets
			holderRx := mediaOf(t, holder, hRef).Received.Packets
			heldRx := mediaOf(t, held, dRef).Received.AudioPackets
			if tt.holderSend {
				eventually(t, "held phone hears music on hold", func() bool {
					return mediaOf(t, held, dRef).Received.AudioPackets >= heldRx+25
				})
			} else {
				time.Sleep(time.Second)
				if n := mediaOf(t, held, dRef).Received.AudioPackets - heldRx; n > 1 {
					t.Errorf("inactive hold: held phone got %d audio packets", n)
				}
			}
			if n := mediaOf(t, held, dRef).Sent.Packets - heldSent; n > 1 {
				t.Errorf("held phone sent %d RTP packets during hold", n)
			}
			if n := mediaOf(t, holder, hRef).Received.Packets - holderRx; n > 1 {
				t.Errorf("holder received %d RTP packets during hold", n)
			}

			if err := holder.Resume(ctx, hRef); err != nil {
				t.Fatal(err)
			}
			h, _ = holder.CallStatus(hRef)
			d, _ = held.CallStatus(dRef)
			if h.Hold != "" || d.Hold != "" || h.LocalDirection != "sendrecv" || d.LocalDirection != "sendrecv" {
				t.Fatalf("after resume: holder %q %s, held %q %s", h.Hold, h.LocalDirection, d.Hold, d.LocalDirection)
			}
			holderAudio := mediaOf(t, holder, hRef).Received.AudioPackets
			heldAudio := mediaOf(t, held, dRef).Received.AudioPackets
			eventually(t, "audio both ways after resume", func() bool {
				return mediaOf(t, holder, hRef).Received.AudioPackets >= holderAudio+25 &&
					mediaOf(t, held, dRef).Received.AudioPackets >= heldAudio+25
			})
			if hz := mediaOf(t, holder, hRef).Received.ToneHz; math.Abs(hz-held.ToneHz()) > 30 {
				t.Errorf("holder hears %.0f Hz after resume, held phone sends %.0f Hz", hz, held.ToneHz())
			}
			if err := holder.Hangup(ctx, hRef); err != nil {
				t.Fatal(err)
			}
			waitCall(t, held, dRef, StateTerminated)
		})
	}
}

func TestHoldErrors(t *testing.T) {
	alice, bob := pair10(t, nil, nil)
	ctx := testCtx(t)
	if err := alice.Hold(ctx, ""); !errors.Is(err, ErrNoSuchCall) {
		t.Fatalf("hold without a call: %v", err)
	}
	if err := alice.Set("hold_mode", "sideways"); !errors.Is(err, ErrBadValue) {
		t.Fatalf("bad hold_mode: %v", err)
	}
	c, err := alice.Call(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	waitCall(t, bob, "", StateRinging)
	if err := alice.Hold(ctx, c.ID()); !errors.Is(err, ErrCallState) {
		t.Fatalf("hold of a ringing call: %v", err)
	}
}

// TestReinviteGlareAndOldHold, against a raw peer: a re-INVITE that
// crosses ours gets 491, our refused re-INVITE leaves the call as it was,
// and the RFC 2543 hold (c=0.0.0.0) shows as held by remote and stops
// our RTP.
func TestReinviteGlareAndOldHold(t *testing.T) {
	peer := newRawPeer(t, "127.0.10.4")
	phone := startPhone(t, Config{Name: "alice", Listen: "127.0.10.1:0", Settings: map[string]string{"auto_answer": "1ms"}})
	to, from := phone.Addr(), peer.addr()
	rtp := rtpSocket(t, "127.0.10.4")
	peer.send(rawRequest(sip.INVITE, phone, from, "glare-1", "caller", "", 1, rawOffer(t, rtp)), to)
	ok := peer.nextResponse(sip.INVITE, 200)
	tag, _ := ok.To().Params.Get("tag")
	peer.send(rawRequest(sip.ACK, phone, from, "glare-1", "caller", tag, 1, nil), to)
	waitCall(t, phone, "", StateConfirmed)

	held := make(chan error, 1)
	go func() { held <- phone.Hold(testCtx(t), "") }()
	ours, src := peer.next(sip.INVITE)
	if !strings.Contains(string(ours.Body()), "a=sendonly") {
		t.Fatalf("hold re-INVITE without a=sendonly:\n%s", ours.Body())
	}
	theirs := rawRequest(sip.INVITE, phone, from, "glare-1", "caller", tag, 2, rawOffer(t, rtp))
	peer.send(theirs, to)
	if res := peer.nextResponse(sip.INVITE, 0); res.StatusCode != sip.StatusRequestPending {
		t.Fatalf("crossing re-INVITE answered %d, want 491", res.StatusCode)
	}
	peer.reply(ours, src, sip.StatusRequestPending, "Request Pending")
	var re *ResponseError
	if err := <-held; !errors.As(err, &re) || re.Code != 491 {
		t.Fatalf("hold: %v, want 491", err)
	}
	if st, _ := phone.CallStatus(""); st.Hold != "" || st.LocalDirection != "sendrecv" || st.State != StateConfirmed {
		t.Fatalf("after a refused hold: hold %q, local %s, %s", st.Hold, st.LocalDirection, st.State)
	}

	ap := rtp.LocalAddr().(*net.UDPAddr).AddrPort()
	old, err := sdpneg.Build(sdpneg.Description{Addr: netip.IPv4Unspecified(), Port: int(ap.Port()), Codecs: []sdpneg.Codec{sdpneg.PCMU}, SessionID: 9, SessionVersion: 2})
	if err != nil {
		t.Fatal(err)
	}
	peer.send(rawRequest(sip.INVITE, phone, from, "glare-1", "caller", tag, 3, old), to)
	if res := peer.nextResponse(sip.INVITE, 0); res.StatusCode != 200 {
		t.Fatalf("c=0.0.0.0 re-INVITE: %d", res.StatusCode)
	}
	peer.send(rawRequest(sip.ACK, phone, from, "glare-1", "caller", tag, 3, nil), to)
	st, _ := phone.CallStatus("")
	if st.Hold != "remote" || st.RemoteDirection != "sendrecv (c=0.0.0.0)" {
		t.Fatalf("old-style hold: hold %q remote %q", st.Hold, st.RemoteDirection)
	}
	eventually(t, "RTP stops", func() bool { return !mediaOf(t, phone, "").Sending })
}
