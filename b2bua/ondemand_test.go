package b2bua

import (
	"strings"
	"testing"
	"time"

	"github.com/siplab/siplab/internal/siptest"
	"github.com/siplab/siplab/uaclient"
)

func directSettings() *Settings {
	s := DefaultSettings()
	s.MediaAnchor = false
	return &s
}

// With direct media, alice puts bob on hold: the PBX answers the hold
// itself, re-INVITEs bob onto its relay and bob hears music on hold from
// the PBX; on resume both hear each other again and the call goes back
// to direct media (RTP straight from the other phone).
func TestDirectMediaHoldPlaysMusicThenGoesDirect(t *testing.T) {
	l := newLab(t, labOpts{settings: directSettings()}, "alice", "bob")
	alice, bob := l.phone("alice"), l.phone("bob")
	autoAnswer(t, bob)
	// A plain number: the proxy's user route takes it to the PBX.
	call, bobCall := callUp(t, alice, bob, "101")
	bobLocal := func() string { return bobCall.Status().Media.Local }
	aliceLocal := func() string { return call.Status().Media.Local }
	direct := func() bool {
		a, b := call.Status(), bobCall.Status()
		return a.Media != nil && b.Media != nil && near(a.ToneHz, bob.ToneHz(), 10) && near(b.ToneHz, alice.ToneHz(), 10) &&
			a.Media.Received.LastSource.String() == bobLocal() && b.Media.Received.LastSource.String() == aliceLocal()
	}
	siptest.WaitFor(t, 6*time.Second, "direct audio both ways", direct)
	t.Cleanup(func() {
		if t.Failed() {
			var sb strings.Builder
			WriteText(&sb, l.pbx.Status())
			t.Log(sb.String())
		}
	})

	if err := alice.Hold(siptest.Ctx(t, 5*time.Second), call.Status().ID); err != nil {
		t.Fatal(err)
	}
	siptest.WaitFor(t, 8*time.Second, "bob to hear music on hold from the PBX relay", func() bool {
		pc, _ := l.callOf(call.CallID())
		b := legOf(pc, "b")
		st := bobCall.Status()
		return b.RTP != nil && near(st.ToneHz, DefaultMOHHz, 15) && st.Media.Received.LastSource == b.RTP.Local
	})
	pc, _ := l.callOf(call.CallID())
	if pc.Media != "anchored" || !pc.TempAnchor || !legOf(pc, "a").RTP.Holding || legOf(pc, "b").RTP.Injected < 25 {
		t.Fatalf("on hold: media %s temp %v, relay a %+v b %+v", pc.Media, pc.TempAnchor, legOf(pc, "a").RTP, legOf(pc, "b").RTP)
	}
	// Setting media_anchor off again (it is off) must not move a call
	// that is anchored only for its hold: the music goes on.
	if err := l.pbx.Set(SettingMediaAnchor, "off"); err != nil {
		t.Fatal(err)
	}
	moh := legOf(pc, "b").RTP.Injected
	time.Sleep(time.Second)
	pc, _ = l.callOf(call.CallID())
	if pc.Media != "anchored" || legOf(pc, "b").RTP == nil || legOf(pc, "b").RTP.Injected < moh+25 {
		t.Fatalf("after media_anchor off during the hold: media %s, b %+v", pc.Media, legOf(pc, "b").RTP)
	}

	if err := alice.Resume(siptest.Ctx(t, 5*time.Second), call.Status().ID); err != nil {
		t.Fatal(err)
	}
	siptest.WaitFor(t, 10*time.Second, "the call to go back to direct media", func() bool {
		pc, _ := l.callOf(call.CallID())
		return pc.Media == "direct" && !pc.TempAnchor && direct()
	})
	if st := bobCall.Status(); st.State != uaclient.StateConfirmed || st.CallID != bobCall.CallID() {
		t.Fatalf("bob's call after hold/resume: %s", st.State)
	}
}

// With direct media, bob (the callee) transfers alice to 102 (carol) with
// a blind REFER: the PBX re-INVITEs alice onto its relay, calls carol,
// connects her in bob's place, and afterwards moves alice and carol back
// to direct media. Carol hears alice and alice hears carol; alice's dialog
// never changes.
func TestDirectMediaBlindTransfer(t *testing.T) {
	l := newLab(t, labOpts{settings: directSettings()}, "alice", "bob", "carol")
	alice, bob, carol := l.phone("alice"), l.phone("bob"), l.phone("carol")
	autoAnswer(t, bob, carol)
	call, bobCall := callUp(t, alice, bob, "101")
	siptest.WaitFor(t, 6*time.Second, "alice and bob to hear each other", func() bool {
		return near(call.Status().ToneHz, bob.ToneHz(), 10) && near(bobCall.Status().ToneHz, alice.ToneHz(), 10)
	})
	t.Cleanup(func() {
		if t.Failed() {
			var sb strings.Builder
			WriteText(&sb, l.pbx.Status())
			t.Log(sb.String())
		}
	})

	if err := bob.Transfer(siptest.Ctx(t, 5*time.Second), bobCall.Status().ID, "102", ""); err != nil {
		t.Fatal(err)
	}
	carolCall, err := carol.WaitCall(siptest.Ctx(t, 8*time.Second), "", uaclient.StateConfirmed)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bobCall.Wait(siptest.Ctx(t, 8*time.Second), uaclient.StateTerminated); err != nil {
		t.Fatal(err)
	}
	siptest.WaitFor(t, 10*time.Second, "carol and alice to hear each other, directly again", func() bool {
		c, _ := carol.CallStatus(carolCall.ID)
		a := call.Status()
		pc, _ := l.callOf(call.CallID())
		return c.Media != nil && a.Media != nil && near(c.ToneHz, alice.ToneHz(), 10) && near(a.ToneHz, carol.ToneHz(), 10) &&
			pc.Media == "direct" && c.Media.Received.LastSource.String() == a.Media.Local
	})
	st := call.Status()
	if st.State != uaclient.StateConfirmed {
		t.Fatalf("alice's call after the transfer: %s", st.State)
	}
	pc, _ := l.callOf(call.CallID())
	ev := strings.Join(pc.Events, "\n")
	for _, want := range []string{"transfer with direct media", "transfer connected", "media path changed to direct"} {
		if !strings.Contains(ev, want) {
			t.Errorf("PBX events lack %q:\n%s", want, ev)
		}
	}
	if pc.Target != "carol" {
		t.Errorf("PBX call target %s, want carol", pc.Target)
	}
}
