package b2bua

import (
	"strings"
	"testing"
	"time"

	"github.com/siplab/siplab/internal/siptest"
	"github.com/siplab/siplab/uaclient"
)

// The lab's own phones drive hold and transfer (their hold and transfer
// commands, over the SIP wire): alice holds bob — bob hears music on hold
// and alice hears nothing; alice resumes — they hear each other; bob
// transfers alice to extension 102 — carol hears alice, and bob's leg ends.
func TestPhonesHoldResumeAndTransfer(t *testing.T) {
	l := newLab(t, labOpts{}, "alice", "bob", "carol")
	alice, bob, carol := l.phone("alice"), l.phone("bob"), l.phone("carol")
	autoAnswer(t, bob, carol)
	call, bc := callUp(t, alice, bob, l.dial("101"))
	both := func() bool {
		a, b := call.Status(), bc.Status()
		return near(a.ToneHz, bob.ToneHz(), 10) && near(b.ToneHz, alice.ToneHz(), 10)
	}
	siptest.WaitFor(t, 5*time.Second, "alice and bob to hear each other", both)

	if err := alice.Hold(siptest.Ctx(t, 5*time.Second), call.ID()); err != nil {
		t.Fatal(err)
	}
	siptest.WaitFor(t, 6*time.Second, "bob to hear music on hold", func() bool { return near(bc.Status().ToneHz, DefaultMOHHz, 15) })
	rx := func() uint64 { return call.Status().Media.Received.Packets }
	before := rx()
	time.Sleep(500 * time.Millisecond)
	if n := rx() - before; n > 2 {
		t.Fatalf("alice, holding, still received %d packets in 500 ms", n)
	}
	if err := alice.Resume(siptest.Ctx(t, 5*time.Second), call.ID()); err != nil {
		t.Fatal(err)
	}
	siptest.WaitFor(t, 6*time.Second, "audio both ways after resume", func() bool { return both() && rx()-before > 25 })

	if err := bob.Transfer(siptest.Ctx(t, 5*time.Second), bc.ID(), "102@"+l.pbx.LocalAddr().String(), ""); err != nil {
		t.Fatal(err)
	}
	cc, err := carol.WaitCall(siptest.Ctx(t, 5*time.Second), "", uaclient.StateConfirmed)
	if err != nil {
		t.Fatal(err)
	}
	siptest.WaitFor(t, 6*time.Second, "carol and alice to hear each other", func() bool {
		s, _ := carol.CallStatus(cc.ID)
		return near(s.ToneHz, alice.ToneHz(), 10) && near(call.Status().ToneHz, carol.ToneHz(), 10)
	})
	if _, err := bc.Wait(siptest.Ctx(t, 5*time.Second), uaclient.StateTerminated); err != nil {
		t.Fatalf("bob's leg after the transfer: %v", err)
	}
	if st := call.Status(); st.State != uaclient.StateConfirmed {
		t.Fatalf("alice's call after the transfer: %s", st.State)
	}
}

// Attended transfer: alice holds bob, consults carol on a second call,
// then transfers bob to carol with Replaces naming the consultation call.
// Bob and carol end up talking; both of alice's legs end.
func TestPhonesAttendedTransfer(t *testing.T) {
	l := newLab(t, labOpts{}, "alice", "bob", "carol")
	alice, bob, carol := l.phone("alice"), l.phone("bob"), l.phone("carol")
	autoAnswer(t, bob, carol)
	first := dialUp(t, alice, l.dial("101"))
	if err := alice.Hold(siptest.Ctx(t, 5*time.Second), first.ID()); err != nil {
		t.Fatal(err)
	}
	consult, bc := callUp(t, alice, bob, l.dial("102"))
	cc, err := carol.FindCall("")
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.Transfer(siptest.Ctx(t, 5*time.Second), first.ID(), "", consult.ID()); err != nil {
		t.Fatal(err)
	}
	siptest.WaitFor(t, 8*time.Second, "bob and carol to hear each other", func() bool {
		b, c := bc.Status(), cc.Status()
		return near(b.ToneHz, carol.ToneHz(), 10) && near(c.ToneHz, bob.ToneHz(), 10) &&
			b.State == uaclient.StateConfirmed && c.State == uaclient.StateConfirmed
	})
	for _, c := range []*uaclient.Call{first, consult} {
		if _, err := c.Wait(siptest.Ctx(t, 5*time.Second), uaclient.StateTerminated); err != nil {
			t.Fatalf("alice's call %s after the transfer: %v", c.ID(), err)
		}
	}
	if bs, cs := bc.Status(), cc.Status(); bs.State != uaclient.StateConfirmed || cs.State != uaclient.StateConfirmed {
		t.Fatalf("bob %s, carol %s after alice left", bs.State, cs.State)
	}
}

// Reliable provisionals on both legs with the lab's phones: alice requires
// 100rel, so the PBX relays bob's ringing to her reliably and she PRACKs
// it; bob prefers 100rel, so his 180 to the PBX is reliable and the PBX
// PRACKs it. The call then completes with audio.
func TestPhonesPRACKBothLegs(t *testing.T) {
	l := newLab(t, labOpts{}, "alice", "bob")
	alice, bob := l.phone("alice"), l.phone("bob")
	if err := alice.Set("100rel", "require"); err != nil {
		t.Fatal(err)
	}
	if err := bob.Set("100rel", "prefer"); err != nil {
		t.Fatal(err)
	}
	call, _ := ringUp(t, alice, bob, l.dial("101"))
	siptest.WaitFor(t, 5*time.Second, "PRACKs on both legs", func() bool {
		pc, _ := l.callOf(call.CallID())
		events := strings.Join(pc.Events, "\n")
		return strings.Contains(events, "from leg a: 200 OK") && strings.Contains(events, "INVITE on leg b: 200 OK")
	})
	if err := bob.Answer(""); err != nil {
		t.Fatal(err)
	}
	if _, err := call.Wait(siptest.Ctx(t, 5*time.Second), uaclient.StateConfirmed); err != nil {
		t.Fatal(err)
	}
	siptest.WaitFor(t, 5*time.Second, "alice to hear bob", func() bool { return near(call.Status().ToneHz, bob.ToneHz(), 10) })
}
