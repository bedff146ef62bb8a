package e2e

import (
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"github.com/siplab/siplab/b2bua"
	"github.com/siplab/siplab/uaclient"
)

// pbxMedia is the PBX's RTP relay address (its internet leg): with media
// anchored, both phones hear audio that comes from it, not from each other.
var pbxMedia = netip.MustParseAddr("203.0.113.30")

func pbxStatus(t *testing.T) b2bua.Status {
	t.Helper()
	out, err := lab.Exec(testCtx(t, 20*time.Second), "pbx", "/b2bua", "status", "-json")
	if err != nil {
		t.Fatal(err)
	}
	var st b2bua.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("pbx status: %v\n%s", err, out)
	}
	return st
}

// pbxCall finds the PBX call whose caller leg is the given Call-ID.
func pbxCall(t *testing.T, callerCallID string) (b2bua.CallStatus, bool) {
	t.Helper()
	for _, c := range pbxStatus(t).Calls {
		if len(c.Legs) > 0 && c.Legs[0].CallID == callerCallID {
			return c, true
		}
	}
	return b2bua.CallStatus{}, false
}

// The proxy routes only pbx.siplab.test to the PBX: the same extension at
// the PBX's bare address is a foreign domain, refused (no open relay).
func TestPBXOnlyThroughItsRoutedDomain(t *testing.T) {
	ctx := testCtx(t, time.Minute)
	c := placeCall(t, ctx, "alice", "101@10.0.0.30", uaclient.StateConfirmed)
	if c.State != uaclient.StateTerminated || c.Code != 403 {
		t.Fatalf("call to 101@10.0.0.30: state %s code %d %s, want 403 from the proxy", c.State, c.Code, c.Reason)
	}
}

// alice dials bob's extension at the PBX's domain: the proxy routes it to
// the PBX (its -route, not an open relay), the PBX calls bob back through
// the proxy. Two dialogs, media anchored at the PBX's internet address, both
// phones behind their NATs hear each other; hold plays music on hold to bob
// and resume restores the audio.
func TestCallThroughPBXTwoLegsAnchoredAudio(t *testing.T) {
	ctx := testCtx(t, 3*time.Minute)
	a := placeCall(t, ctx, "alice", "101@pbx.siplab.test", uaclient.StateConfirmed)
	if a.State != uaclient.StateConfirmed {
		t.Fatalf("call ended: %d %s (%s)", a.Code, a.Reason, a.EndReason)
	}
	pc, ok := pbxCall(t, a.CallID)
	if !ok || len(pc.Legs) != 2 {
		t.Fatalf("the PBX has no two-leg call for alice's Call-ID %s: %+v", a.CallID, pc)
	}
	if pc.Dialled != "101" || pc.Media != "anchored" {
		t.Errorf("PBX call: dialled %q media %q, want 101 anchored", pc.Dialled, pc.Media)
	}
	bobCallID := pc.Legs[1].CallID
	if bobCallID == a.CallID {
		t.Fatalf("both legs share Call-ID %s: a proxy, not a B2BUA", bobCallID)
	}
	aliceHz, bobHz := phoneStatus(t, ctx, "alice").ToneHz, phoneStatus(t, ctx, "bob").ToneHz

	// twoWay waits until each phone hears the other's tone, the audio
	// coming from the PBX's relay, and returns alice's call.
	twoWay := func(what string) uaclient.CallStatus {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			ac, _ := callOf(t, ctx, "alice", a.CallID)
			bc, ok := callOf(t, ctx, "bob", bobCallID)
			an, ahz := received(ac)
			bn, bhz := received(bc)
			if ok && an > 50 && bn > 50 && near(ahz, bobHz) && near(bhz, aliceHz) {
				for phone, c := range map[string]uaclient.CallStatus{"alice": ac, "bob": bc} {
					if src := c.Media.Received.LastSource.Addr(); src != pbxMedia {
						t.Errorf("%s: %s's audio came from %s, want the PBX relay %s", what, phone, src, pbxMedia)
					}
				}
				return ac
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: no two-way audio via the PBX: alice got %d pkts (%.0f Hz, want %.0f), bob got %d (%.0f Hz, want %.0f)",
					what, an, ahz, bobHz, bn, bhz, aliceHz)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	twoWay("call")
	// The relay's own count, per leg: it received from and sent to each phone.
	pc, _ = pbxCall(t, a.CallID)
	for _, l := range pc.Legs {
		if l.RTP == nil || l.RTP.FromPhone.Packets < 50 || l.RTP.ToPhone.Packets < 50 {
			t.Errorf("PBX leg %s (%s): relay stats %+v, want RTP both ways", l.Leg, l.Peer, l.RTP)
		}
	}

	// Hold: the PBX answers alice's sendonly re-INVITE, stops relaying and
	// plays music on hold to bob.
	if out, err := phoneCmd(t, ctx, "alice", "hold", a.ID); err != nil {
		t.Fatalf("alice hold: %v %s", err, out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		bc, _ := callOf(t, ctx, "bob", bobCallID)
		if _, hz := received(bc); near(hz, b2bua.DefaultMOHHz) {
			break
		}
		if time.Now().After(deadline) {
			_, hz := received(bc)
			t.Fatalf("bob hears %.0f Hz while held, want music on hold (%d Hz)", hz, b2bua.DefaultMOHHz)
		}
		time.Sleep(500 * time.Millisecond)
	}
	ac, _ := callOf(t, ctx, "alice", a.CallID)
	before, _ := received(ac)
	time.Sleep(time.Second)
	ac, _ = callOf(t, ctx, "alice", a.CallID)
	if after, _ := received(ac); after-before > 5 {
		t.Errorf("alice, holding, still received %d packets in 1 s", after-before)
	}

	if out, err := phoneCmd(t, ctx, "alice", "resume", a.ID); err != nil {
		t.Fatalf("alice resume: %v %s", err, out)
	}
	if ac := twoWay("after resume"); ac.Media.Received.Packets < before+25 {
		t.Errorf("alice received %d packets after resume, %d before hold: audio did not come back", ac.Media.Received.Packets, before)
	}

	// alice's BYE ends bob's leg too.
	hangup(t, ctx, "alice", a.ID)
	deadline = time.Now().Add(10 * time.Second)
	for {
		bc, ok := callOf(t, ctx, "bob", bobCallID)
		if !ok || bc.State == uaclient.StateTerminated {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("bob's leg still %s after alice hung up", bc.State)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
