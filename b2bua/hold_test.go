package b2bua

import (
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/internal/siptest"
	"github.com/siplab/siplab/sip/sdpneg"
	"github.com/siplab/siplab/sip/sipdialog"
	"github.com/siplab/siplab/uaclient"
)

const callerTone = 1000 // the scripted caller's test tone

// Both legs carry the same X-Siplab-Call on the wire: the caller sees it
// in every response, the callee in the PBX's INVITE, whose Call-ID differs.
func TestCorrelationHeaderOnBothLegs(t *testing.T) {
	l := newLab(t, labOpts{}, "carol")
	callee := l.rawPhone(t, "carol")
	caller := newRawUA(t, "127.0.9.90", "dave")
	caller.startMedia(callerTone)
	caller.dial(l.pbx.LocalAddr(), "102", "corr-"+sip.GenerateTagN(8))

	trying := caller.response(sip.INVITE, 100, 5*time.Second)
	id := trying.GetHeader(CorrelationHeader)
	if id == nil || id.Value() == "" {
		t.Fatalf("100 Trying without %s:\n%s", CorrelationHeader, trying)
	}
	inv, src := callee.request(sip.INVITE, 5*time.Second)
	if h := inv.GetHeader(CorrelationHeader); h == nil || h.Value() != id.Value() {
		t.Fatalf("callee INVITE %s = %v, caller leg has %q", CorrelationHeader, h, id.Value())
	}
	if sipdialog.CallID(inv) == caller.callID {
		t.Fatal("the callee leg reuses the caller's Call-ID: that is a proxy, not a B2BUA")
	}
	if inv.From().Address.Host != pbxIP {
		t.Errorf("callee leg From %s: want the PBX speaking for the caller", inv.From().Address.String())
	}
	offer, err := sdpneg.Parse(inv.Body())
	if err != nil || offer.Addr.String() != pbxIP {
		t.Fatalf("callee offer c=%v (%v): want the PBX relay address %s", offer, err, pbxIP)
	}
	callee.respond(inv, src, 180, "Ringing", "ctag", callee.contact())
	ringing := caller.response(sip.INVITE, 180, 5*time.Second)
	if h := ringing.GetHeader(CorrelationHeader); h == nil || h.Value() != id.Value() {
		t.Fatalf("180 to caller carries %v, want %q", h, id.Value())
	}
	callee.respond(inv, src, 486, "Busy Here", "ctag")
	busy := caller.response(sip.INVITE, 300, 5*time.Second)
	if busy.StatusCode != 486 || busy.GetHeader(CorrelationHeader) == nil {
		t.Fatalf("caller got %d, headers %s", busy.StatusCode, busy)
	}
	pc, ok := l.callOf(caller.callID)
	if !ok || pc.ID != id.Value() || legOf(pc, "b").CallID != sipdialog.CallID(inv) {
		t.Fatalf("status: %+v", pc)
	}
}

// A hold re-INVITE (sendonly) from the caller: the PBX answers recvonly
// itself, stops relaying, and plays music on hold to the callee; the
// caller hears nothing. Resume (sendrecv) restores audio both ways.
func TestHoldPlaysMusicAndResumeRestoresAudio(t *testing.T) {
	l := newLab(t, labOpts{}, "bob")
	bob := l.phone("bob")
	autoAnswer(t, bob)
	caller := newRawUA(t, "127.0.9.90", "dave")
	caller.startMedia(callerTone)
	caller.call(l.pbx.LocalAddr(), "101")
	bobCall, err := bob.WaitCall(siptest.Ctx(t, 5*time.Second), "", uaclient.StateConfirmed)
	if err != nil {
		t.Fatal(err)
	}
	bobHears := func() float64 {
		st, _ := bob.CallStatus(bobCall.ID)
		return st.ToneHz
	}
	callerRx := func() uint64 { return caller.sess.Stats().Received.Packets }
	siptest.WaitFor(t, 5*time.Second, "audio both ways", func() bool {
		return near(bobHears(), callerTone, 10) && near(caller.sess.Stats().Received.ToneHz, bob.ToneHz(), 10)
	})

	// Hold.
	ans := caller.reinvite(sdpneg.SendOnly)
	if ans.Direction != sdpneg.RecvOnly || ans.Addr.String() != pbxIP {
		t.Fatalf("hold answered %s at %v, want recvonly from the PBX", ans.Direction, ans.Addr)
	}
	siptest.WaitFor(t, 6*time.Second, "bob to hear music on hold", func() bool { return near(bobHears(), DefaultMOHHz, 15) })
	before := callerRx()
	time.Sleep(time.Second)
	if got := callerRx() - before; got > 2 {
		t.Fatalf("caller on hold still received %d packets in 1 s", got)
	}
	pc, _ := l.callOf(caller.callID)
	a, b := legOf(pc, "a"), legOf(pc, "b")
	if !a.RTP.Holding || a.RTP.Dropped.Hold < 25 || b.RTP.Injected < 50 {
		t.Fatalf("relay on hold: a %+v b %+v", *a.RTP, *b.RTP)
	}
	if !strings.Contains(strings.Join(pc.Events, "\n"), "hold (sendonly) from leg a") {
		t.Errorf("events: %v", pc.Events)
	}

	// Resume.
	ans = caller.reinvite(sdpneg.SendRecv)
	if ans.Direction != sdpneg.SendRecv {
		t.Fatalf("resume answered %s", ans.Direction)
	}
	siptest.WaitFor(t, 6*time.Second, "audio both ways again", func() bool {
		return near(bobHears(), callerTone, 10) && callerRx()-before > 50
	})
	pc, _ = l.callOf(caller.callID)
	moh := legOf(pc, "b").RTP.Injected
	time.Sleep(300 * time.Millisecond)
	pc, _ = l.callOf(caller.callID)
	if legOf(pc, "a").RTP.Holding || legOf(pc, "b").RTP.Injected != moh {
		t.Fatalf("after resume: holding %v, moh still flowing", legOf(pc, "a").RTP.Holding)
	}

	caller.inDialog("BYE", 0, "")
	if res := caller.response(sip.BYE, 200, 5*time.Second); res.StatusCode != 200 {
		t.Fatalf("BYE: %d", res.StatusCode)
	}
	if _, err := bob.WaitCall(siptest.Ctx(t, 5*time.Second), bobCall.ID, uaclient.StateTerminated); err != nil {
		t.Fatal(err)
	}
}

// The callee holds (the PBX's own offer is what it answers from): the
// caller hears music on hold, then the callee again after the resume.
func TestCalleeHoldPlaysMusicToCaller(t *testing.T) {
	l := newLab(t, labOpts{}, "alice", "bob")
	alice, bob := l.phone("alice"), l.phone("bob")
	autoAnswer(t, bob)
	call, in := callUp(t, alice, bob, l.dial("101"))
	aliceHears := func(hz float64) func() bool {
		return func() bool {
			st, _ := alice.CallStatus(call.ID())
			return st.Media != nil && near(st.Media.Received.ToneHz, hz, 10)
		}
	}
	siptest.WaitFor(t, 6*time.Second, "alice to hear bob", aliceHears(bob.ToneHz()))
	if err := bob.Hold(siptest.Ctx(t, 5*time.Second), in.ID()); err != nil {
		t.Fatalf("bob's hold: %v", err)
	}
	siptest.WaitFor(t, 6*time.Second, "alice to hear music on hold", aliceHears(DefaultMOHHz))
	if err := bob.Resume(siptest.Ctx(t, 5*time.Second), in.ID()); err != nil {
		t.Fatalf("bob's resume: %v", err)
	}
	siptest.WaitFor(t, 6*time.Second, "alice to hear bob again", aliceHears(bob.ToneHz()))
}
