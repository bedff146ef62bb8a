package sbc

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/siplab/siplab/internal/siptest"
	"github.com/siplab/siplab/uaclient"
)

func near(got, want float64) bool { return math.Abs(got-want) <= 30 }

// callUp has from call to (a user at the platform domain) and waits until
// both ends are confirmed and media has flowed for a while.
func (l *lab) callUp(from, to *uaclient.Phone) (*uaclient.Call, uaclient.CallStatus) {
	l.t.Helper()
	ctx := siptest.Ctx(l.t, 15*time.Second)
	c, err := from.Call(ctx, to.Name())
	if err != nil {
		l.t.Fatal(err)
	}
	st, err := c.Wait(ctx, uaclient.StateConfirmed, uaclient.StateTerminated)
	if err != nil || st.State != uaclient.StateConfirmed {
		l.t.Fatalf("%s -> %s: %+v, %v", from.Name(), to.Name(), st, err)
	}
	var in uaclient.CallStatus
	siptest.WaitFor(l.t, 5*time.Second, to.Name()+"'s call confirmed", func() bool {
		for _, cs := range to.Status().Calls {
			if cs.Direction == uaclient.Incoming && cs.State == uaclient.StateConfirmed {
				in = cs
				return true
			}
		}
		return false
	})
	time.Sleep(1500 * time.Millisecond)
	in, _ = incoming(to)
	if c.Status().Media == nil || in.Media == nil {
		l.t.Fatalf("no media: caller %+v\ncallee %+v", c.Status(), in)
	}
	return c, in
}

func incoming(p *uaclient.Phone) (uaclient.CallStatus, bool) {
	calls := p.Status().Calls
	for i := len(calls) - 1; i >= 0; i-- {
		if calls[i].Direction == uaclient.Incoming {
			return calls[i], true
		}
	}
	return uaclient.CallStatus{}, false
}

// Two phones with every NAT fix off (private Via with another port,
// private Contact and SDP, no rport, no keep-alives) call each other
// through the SBC: two dialogs, audio both ways through the relay (each
// hears the other's tone), the 407 of the proxy passed through, nothing
// of the core in anything a phone received, BYE from the callee ends the
// caller's call.
func TestCallBetweenNATedPhones(t *testing.T) {
	l := newLab(t, labOpts{})
	as := natedSettings()
	as["via_addr"] = privateIP + ":5998" // responses must follow the source port
	alice := l.registered("alice", 50, as)
	bob := l.registered("bob", 51, natedSettings())

	c, in := l.callUp(alice, bob)
	out := c.Status()
	if !near(out.Media.Received.ToneHz, bob.ToneHz()) || !near(in.Media.Received.ToneHz, alice.ToneHz()) {
		t.Errorf("tones: alice hears %.0f Hz (bob sends %.0f), bob hears %.0f Hz (alice sends %.0f)",
			out.Media.Received.ToneHz, bob.ToneHz(), in.Media.Received.ToneHz, alice.ToneHz())
	}
	if out.Media.Received.Packets < 40 || in.Media.Received.Packets < 40 {
		t.Errorf("rtp received: alice %d, bob %d packets; want two-way audio", out.Media.Received.Packets, in.Media.Received.Packets)
	}
	for name, sdp := range map[string]string{"alice": out.RemoteSDP, "bob": in.RemoteSDP} {
		if !strings.HasPrefix(sdp, sbcAccess+":") {
			t.Errorf("%s was offered media at %q, want the SBC's access relay", name, sdp)
		}
	}
	cs, ok := l.sbc.Call(out.CallID)
	if !ok {
		t.Fatalf("SBC has no call for %s", out.CallID)
	}
	if cs.State != StateAnswered || cs.Kind != KindPhoneOut || cs.Legs[0].CallID == cs.Legs[1].CallID {
		t.Errorf("SBC call %+v", cs)
	}
	if m := cs.Media; m[0].PacketsIn < 40 || m[0].PacketsOut < 40 || m[1].PacketsIn < 40 || m[1].PacketsOut < 40 {
		t.Errorf("relay stats %+v / %+v: want packets both ways on both sides", m[0].StreamStats, m[1].StreamStats)
	}
	// Bob's leg came from the core: the proxy sent it to the token.
	bc, ok := l.sbc.Call(in.CallID)
	if !ok || bc.Kind != KindPhoneIn || bc.Legs[1].SignalTo != bob.Addr().String() {
		t.Errorf("callee leg %+v, want core->phone signalled to %s", bc, bob.Addr())
	}

	// The proxy's 407 reached alice with its challenge.
	saw407 := false
	for _, m := range l.readBy(alice.Addr().Addr().String()) {
		if strings.HasPrefix(string(m.msg), "SIP/2.0 407") && strings.Contains(string(m.msg), "Proxy-Authenticate:") {
			saw407 = true
		}
	}
	if !saw407 {
		t.Error("alice never read the proxy's 407 with Proxy-Authenticate")
	}

	ctx := siptest.Ctx(t, 10*time.Second)
	if err := bob.Hangup(ctx, in.ID); err != nil {
		t.Fatal(err)
	}
	if st, err := c.Wait(ctx, uaclient.StateTerminated); err != nil || st.EndedBy != "remote" && !strings.Contains(st.EndReason, "BYE") {
		t.Errorf("alice's call after bob's BYE: %+v, %v", st, err)
	}
	siptest.WaitFor(t, 5*time.Second, "SBC call ended", func() bool {
		cs, _ := l.sbc.Call(out.CallID)
		return cs.State == StateEnded && cs.EndedBy == "callee"
	})
	l.assertNoCoreLeak(t, alice, bob)
}

// assertNoCoreLeak: no SIP message a phone read names a core address.
func (l *lab) assertNoCoreLeak(t *testing.T, phones ...*uaclient.Phone) {
	t.Helper()
	for _, p := range phones {
		msgs := l.readBy(p.Addr().Addr().String())
		if len(msgs) == 0 {
			t.Errorf("%s read nothing: the check would be vacuous", p.Name())
		}
		for _, m := range msgs {
			if strings.Contains(string(m.msg), coreNet) {
				t.Errorf("%s received a core address from %s:\n%s", p.Name(), m.raddr, m.msg)
			}
		}
	}
}

// latching off: the relay trusts the SDP, so the phone with a private SDP
// address hears nothing while the other, honest one hears it — one-way
// audio. Switching to learn mid-call fixes it without a re-INVITE.
func TestLatchingOffGivesOneWayAudio(t *testing.T) {
	s := DefaultSettings()
	s.Latching = "off"
	l := newLab(t, labOpts{settings: &s})
	alice := l.addPhone("alice", 50, natedSettings(), "")
	bs := natedSettings()
	bs["sdp_addr"] = "local" // bob's SDP tells the truth
	bob := l.addPhone("bob", 51, bs, "")
	l.register(alice)
	l.register(bob)

	c, in := l.callUp(alice, bob)
	out := c.Status()
	if out.Media.Received.Packets != 0 {
		t.Errorf("latching off: alice (private SDP) received %d packets, want none", out.Media.Received.Packets)
	}
	if in.Media.Received.Packets < 40 || !near(in.Media.Received.ToneHz, alice.ToneHz()) {
		t.Errorf("latching off: bob (honest SDP) received %d packets at %.0f Hz, want alice's tone", in.Media.Received.Packets, in.Media.Received.ToneHz)
	}

	if _, err := l.sbc.Set(SettingLatching, "learn"); err != nil {
		t.Fatal(err)
	}
	siptest.WaitFor(t, 5*time.Second, "alice hears bob after latching learn", func() bool {
		st := c.Status()
		return st.Media.Received.Packets > 20 && near(st.Media.Received.ToneHz, bob.ToneHz())
	})
	ctx := siptest.Ctx(t, 10*time.Second)
	if err := c.Hangup(ctx); err != nil { // BYE from the caller
		t.Fatal(err)
	}
	siptest.WaitFor(t, 5*time.Second, "bob's call ended by alice's BYE", func() bool {
		cs, _ := incoming(bob)
		return cs.State == uaclient.StateTerminated
	})
	// The SBC records the end once bob has answered the BYE it relayed:
	// bob is terminated a moment before that 200 reaches the SBC.
	siptest.WaitFor(t, 5*time.Second, "the SBC's call ended by the caller", func() bool {
		cs, _ := l.sbc.Call(out.CallID)
		return cs.State == StateEnded && cs.EndedBy == "caller"
	})
}

// CANCEL while the callee rings: the callee's INVITE is cancelled too, the
// caller gets 487, the SBC's call ends.
//
// alice's Via names another port than she sends from (a port-changing NAT
// without rport): sipgo's own 200/487 go to that port, the SBC's copies to
// her source.
func TestCancelWhileRinging(t *testing.T) {
	l := newLab(t, labOpts{})
	as := natedSettings()
	as["via_addr"] = privateIP + ":5998"
	alice := l.addPhone("alice", 50, as, "")
	cs := natedSettings()
	cs["auto_answer"] = "off"
	carol := l.addPhone("carol", 52, cs, "")
	l.register(alice)
	l.register(carol)

	ctx := siptest.Ctx(t, 15*time.Second)
	c, err := alice.Call(ctx, "carol")
	if err != nil {
		t.Fatal(err)
	}
	siptest.WaitFor(t, 5*time.Second, "carol ringing", func() bool {
		in, ok := incoming(carol)
		return ok && in.State != uaclient.StateTerminated
	})
	if _, err := c.Wait(ctx, uaclient.StateRinging, uaclient.StateEarly); err != nil {
		t.Fatal(err)
	}
	if err := c.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := c.Wait(ctx, uaclient.StateTerminated)
	if err != nil || st.Code != 487 {
		t.Errorf("alice's call after CANCEL: %+v, %v; want 487", st, err)
	}
	siptest.WaitFor(t, 5*time.Second, "carol's call cancelled", func() bool {
		in, _ := incoming(carol)
		return in.State == uaclient.StateTerminated
	})
	siptest.WaitFor(t, 5*time.Second, "SBC call ended", func() bool {
		sc, _ := l.sbc.Call(st.CallID)
		return sc.State == StateEnded
	})
	l.assertNoCoreLeak(t, alice, carol)
}

// A wrong password on a call: the proxy's 407 keeps coming (the phone
// gives up), never a call; the SBC counted the challenges.
func TestCallWithWrongPasswordChallenged(t *testing.T) {
	l := newLab(t, labOpts{})
	alice := l.registered("alice", 50, natedSettings())
	bob := l.registered("bob", 51, natedSettings())
	if err := alice.Set("password", "nope"); err != nil {
		t.Fatal(err)
	}
	ctx := siptest.Ctx(t, 15*time.Second)
	c, err := alice.Call(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.Wait(ctx, uaclient.StateTerminated)
	if err != nil || st.Code != 407 {
		t.Errorf("call with a wrong password: %+v, %v; want 407", st, err)
	}
	if _, ok := incoming(bob); ok {
		t.Error("bob rang despite the failed authentication")
	}
	if n := l.sbc.Status().Counters.AuthFailures; n < 2 {
		t.Errorf("SBC counted %d challenges, want 2", n)
	}
	_ = context.Background
}

// In-dialog requests cross the border: a hold re-INVITE (offer rewritten
// through the relay, answered, ACKed on both legs), the resume, and DTMF
// as SIP INFO, from the callee's side towards the caller.
func TestReinviteAndInfoCrossTheBorder(t *testing.T) {
	l := newLab(t, labOpts{})
	alice := l.addPhone("alice", 50, natedSettings(), "")
	bs := natedSettings()
	bs["dtmf_mode"] = "info"
	bob := l.addPhone("bob", 51, bs, "")
	l.register(alice)
	l.register(bob)
	c, in := l.callUp(alice, bob)
	ctx := siptest.Ctx(t, 15*time.Second)

	if err := bob.Hold(ctx, in.ID); err != nil {
		t.Fatal(err)
	}
	siptest.WaitFor(t, 5*time.Second, "alice sees the hold", func() bool { return c.Status().Hold == "remote" })
	if err := bob.Resume(ctx, in.ID); err != nil {
		t.Fatal(err)
	}
	siptest.WaitFor(t, 5*time.Second, "alice sees the resume", func() bool { return c.Status().Hold == "" })
	if rs := c.Status().RemoteSDP; !strings.HasPrefix(rs, sbcAccess+":") {
		t.Errorf("after re-INVITE alice's remote SDP is %q, want the relay", rs)
	}
	before := c.Status().Media.Received.Packets
	time.Sleep(600 * time.Millisecond)
	if after := c.Status().Media.Received.Packets; after < before+15 {
		t.Errorf("audio to alice after resume: %d -> %d packets", before, after)
	}

	if err := bob.SendDTMF(ctx, in.ID, "12#"); err != nil {
		t.Fatal(err)
	}
	siptest.WaitFor(t, 5*time.Second, "alice got the INFO digits", func() bool { return c.Status().DTMFInfoReceived == "12#" })
	if err := c.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	l.assertNoCoreLeak(t, alice, bob)
}

// A MESSAGE outside any call crosses the border both ways as one
// transaction: to the proxy from alice, to bob by his token from the core.
func TestMessageAcrossTheBorder(t *testing.T) {
	l := newLab(t, labOpts{})
	alice := l.registered("alice", 50, natedSettings())
	bob := l.registered("bob", 51, natedSettings())
	ctx := siptest.Ctx(t, 10*time.Second)
	rec, err := alice.SendMessage(ctx, "bob", "hello through the border")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Code != 200 {
		t.Errorf("MESSAGE answered %d", rec.Code)
	}
	siptest.WaitFor(t, 5*time.Second, "bob got the MESSAGE", func() bool {
		for _, m := range bob.Messages() {
			if m.Text == "hello through the border" {
				return true
			}
		}
		return false
	})
	l.assertNoCoreLeak(t, alice, bob)
}

// topology_hiding off: the call still works (routing headers are rebuilt
// anyway) but what the core wrote leaks to the phones — the SDP origin of
// the core-side relay, the registrar's Server header; on again, nothing.
func TestTopologyHidingOffLeaks(t *testing.T) {
	l := newLab(t, labOpts{})
	if _, err := l.sbc.Set(SettingTopologyHiding, "off"); err != nil {
		t.Fatal(err)
	}
	alice := l.registered("alice", 50, natedSettings())
	bob := l.registered("bob", 51, natedSettings())
	c, in := l.callUp(alice, bob)
	if !near(c.Status().Media.Received.ToneHz, bob.ToneHz()) || !near(in.Media.Received.ToneHz, alice.ToneHz()) {
		t.Error("no two-way audio with topology_hiding off")
	}
	ctx := siptest.Ctx(t, 10*time.Second)
	if err := c.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	leaked := 0
	for _, m := range l.readBy(bob.Addr().Addr().String()) {
		if strings.Contains(string(m.msg), coreNet) {
			leaked++
		}
	}
	if leaked == 0 {
		t.Error("topology_hiding off leaked nothing to bob: the toggle shows nothing")
	}
}
