package e2e

import (
	"context"
	"encoding/json"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/siplab/siplab/b2bua"
	"github.com/siplab/siplab/internal/siptest"
	"github.com/siplab/siplab/uaclient"
)

// pbxMedia is the PBX's RTP relay address (its internet leg): with media
// anchored, both phones hear audio that comes from it, not from each other.
var pbxMedia = netip.MustParseAddr("203.0.113.30")

func pbxStatus(t *testing.T) b2bua.Status {
	t.Helper()
	return nodeStatus[b2bua.Status](t, testCtx(t, 20*time.Second), "pbx", "/b2bua")
}

// callThroughPBX has alice call to (an extension the PBX answers for)
// and returns her confirmed call and the PBX's two-leg call for it.
func callThroughPBX(t *testing.T, ctx context.Context, to string) (uaclient.CallStatus, b2bua.CallStatus) {
	t.Helper()
	a := placeCall(t, ctx, "alice", to, uaclient.StateConfirmed)
	if a.State != uaclient.StateConfirmed {
		t.Fatalf("call to %s ended: %d %s (%s)", to, a.Code, a.Reason, a.EndReason)
	}
	pc, ok := pbxCall(t, a.CallID)
	if !ok || len(pc.Legs) != 2 {
		t.Fatalf("the PBX has no two-leg call for alice's Call-ID %s: %+v", a.CallID, pc)
	}
	return a, pc
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
	a, pc := callThroughPBX(t, ctx, "101@pbx.siplab.test")
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
		if l.RTP == nil || l.RTP.PacketsIn < 50 || l.RTP.PacketsOut < 50 {
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

// waitUntil polls cond every half second until it holds or d passes; it
// returns the last error text cond gave, for the failure message.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s (last: %s)", d, what, last)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// subscribe makes phone SUBSCRIBE to target for event and unsubscribes
// when the test ends; it returns the subscription's id.
func subscribe(t *testing.T, ctx context.Context, phone, target, event string) string {
	t.Helper()
	out, err := phoneCmd(t, ctx, phone, "subscribe", "-json", target, event)
	if err != nil {
		t.Fatalf("%s subscribe %s %s: %v %s", phone, target, event, err, out)
	}
	var sub uaclient.SubscriptionStatus
	if err := json.Unmarshal([]byte(out), &sub); err != nil {
		t.Fatalf("subscribe output: %v\n%s", err, out)
	}
	t.Cleanup(func() { phoneCmd(t, context.Background(), phone, "unsubscribe", sub.ID) })
	return sub.ID
}

func subscriptionOf(t *testing.T, ctx context.Context, phone, id string) uaclient.SubscriptionStatus {
	t.Helper()
	for _, s := range phoneStatus(t, ctx, phone).Subscriptions {
		if s.ID == id {
			return s
		}
	}
	t.Fatalf("%s has no subscription %s", phone, id)
	return uaclient.SubscriptionStatus{}
}

// alice dials a plain extension, `call alice 101` (sip:101@siplab.test):
// the proxy's -route-user sends numbers to the PBX before any location
// lookup, and bob's phone rings through the PBX.
func TestPBXDialPlainExtension(t *testing.T) {
	ctx := testCtx(t, 2*time.Minute)
	if st := proxyStatus(t, ctx); len(st.UserRoutes) == 0 {
		t.Fatalf("proxy has no -route-user: %+v", st)
	}
	a, pc := callThroughPBX(t, ctx, "101")
	if pc.Dialled != "101" || pc.Target != "bob" {
		t.Fatalf("PBX call for alice's %s: %+v", a.CallID, pc)
	}
	aliceHz := phoneStatus(t, ctx, "alice").ToneHz
	bobCallID := pc.Legs[1].CallID
	waitUntil(t, 15*time.Second, "bob to hear alice through the PBX", func() (bool, string) {
		bc, _ := callOf(t, ctx, "bob", bobCallID)
		n, hz := received(bc)
		return n > 50 && near(hz, aliceHz), ""
	})
	hangup(t, ctx, "alice", a.ID)
}

// A blind transfer in the NATed lab: alice calls 101, bob answers and
// transfers her to 102 (REFER); the PBX calls carol and connects her in
// bob's place. Carol hears alice and alice hears carol, through the PBX's
// relay, on alice's unchanged dialog; bob's call ends.
func TestPBXBlindTransferConnectsCarol(t *testing.T) {
	ctx := testCtx(t, 3*time.Minute)
	a, pc := callThroughPBX(t, ctx, "101")
	bobCallID := pc.Legs[1].CallID
	aliceHz, carolHz := phoneStatus(t, ctx, "alice").ToneHz, phoneStatus(t, ctx, "carol").ToneHz
	carolBefore := map[string]bool{}
	for _, c := range phoneStatus(t, ctx, "carol").Calls {
		carolBefore[c.CallID] = true
	}
	if out, err := phoneCmd(t, ctx, "bob", "transfer", bobCallID, "102"); err != nil {
		t.Fatalf("bob transfer: %v %s", err, out)
	}
	var carolCall uaclient.CallStatus
	waitUntil(t, 20*time.Second, "carol to answer the transferred call", func() (bool, string) {
		for _, c := range phoneStatus(t, ctx, "carol").Calls {
			if !carolBefore[c.CallID] && c.State == uaclient.StateConfirmed {
				carolCall = c
				return true, ""
			}
		}
		return false, "no new confirmed call on carol"
	})
	t.Cleanup(func() { phoneCmd(t, context.Background(), "carol", "hangup", carolCall.ID) })
	waitUntil(t, 20*time.Second, "carol and alice to hear each other via the PBX relay", func() (bool, string) {
		cc, _ := callOf(t, ctx, "carol", carolCall.CallID)
		ac, _ := callOf(t, ctx, "alice", a.CallID)
		cn, chz := received(cc)
		an, ahz := received(ac)
		ok := cn > 50 && an > 50 && near(chz, aliceHz) && near(ahz, carolHz) &&
			cc.Media.Received.LastSource.Addr() == pbxMedia && ac.Media.Received.LastSource.Addr() == pbxMedia
		return ok, "carol " + string(cc.State) + ", alice " + string(ac.State)
	})
	ac, _ := callOf(t, ctx, "alice", a.CallID)
	if ac.State != uaclient.StateConfirmed {
		t.Fatalf("alice's call after the transfer: %s", ac.State)
	}
	waitUntil(t, 10*time.Second, "bob's leg to end", func() (bool, string) {
		bc, ok := callOf(t, ctx, "bob", bobCallID)
		return !ok || bc.State == uaclient.StateTerminated, string(bc.State)
	})
	pc, _ = pbxCall(t, a.CallID)
	if pc.Target != "carol" || !slices.ContainsFunc(pc.Events, func(e string) bool { return strings.Contains(e, "transfer connected") }) {
		t.Errorf("PBX call after the transfer: target %s, events %v", pc.Target, pc.Events)
	}
	hangup(t, ctx, "alice", a.ID)
}

// Voicemail and message waiting in the lab: bob subscribes to his
// mailbox (*97, message-summary), stops auto-answering; alice calls 101,
// which rings out (15 s) to bob's voicemail, and talks. The WAV file in the
// pbx container holds alice's tone, and bob's subscription lights.
func TestPBXVoicemailRecordsCallerAndLightsMWI(t *testing.T) {
	ctx := testCtx(t, 4*time.Minute)
	sub := subscribe(t, ctx, "bob", "*97", "message-summary")
	waitUntil(t, 10*time.Second, "the mailbox state NOTIFY", func() (bool, string) {
		s := subscriptionOf(t, ctx, "bob", sub)
		return s.State == uaclient.SubActive && s.Notifies >= 1 && s.MessagesWaiting != nil, s.State + " " + s.Error
	})
	setPhone(t, ctx, "bob", "auto_answer", "off")
	a := placeCall(t, ctx, "alice", "101", uaclient.StateConfirmed)
	if a.State != uaclient.StateConfirmed {
		t.Fatalf("call to 101 ended: %d %s (%s)", a.Code, a.Reason, a.EndReason)
	}
	var pc b2bua.CallStatus
	waitUntil(t, 20*time.Second, "3 s of recording", func() (bool, string) {
		pc, _ = pbxCall(t, a.CallID)
		return pc.Recording != nil && pc.Recording.Seconds >= 3, string(pc.State)
	})
	if pc.State != b2bua.StateVoicemail || pc.Target != "voicemail:bob" {
		t.Fatalf("PBX call %s target %s, want voicemail:bob", pc.State, pc.Target)
	}
	hangup(t, ctx, "alice", a.ID)
	var msg b2bua.Message
	waitUntil(t, 15*time.Second, "the message in bob's mailbox", func() (bool, string) {
		for _, mb := range pbxStatus(t).Mailbox {
			for _, m := range mb.Messages {
				if mb.User == "bob" && strings.Contains(m.File, pc.ID) {
					msg = m
					return true, ""
				}
			}
		}
		return false, ""
	})
	if msg.From != "alice" || msg.Duration < 3*time.Second {
		t.Errorf("message %+v", msg)
	}
	wav, err := lab.ReadFile(ctx, "pbx", msg.File)
	if err != nil {
		t.Fatal(err)
	}
	samples, rate, err := siptest.ParseWAV(wav)
	if err != nil {
		t.Fatal(err)
	}
	if rate != 8000 {
		t.Fatalf("%s: %d Hz, want 8 kHz", msg.File, rate)
	}
	aliceHz := phoneStatus(t, ctx, "alice").ToneHz
	if len(samples) < 3*8000 {
		t.Fatalf("%s: %d samples, want 3 s at 8 kHz", msg.File, len(samples))
	}
	if hz := siptest.ToneHz(samples); !near(hz, aliceHz) {
		t.Fatalf("voicemail holds a %.0f Hz tone, alice sends %.0f Hz", hz, aliceHz)
	}
	waitUntil(t, 10*time.Second, "bob's subscription to say a message waits", func() (bool, string) {
		s := subscriptionOf(t, ctx, "bob", sub)
		return s.MessagesWaiting != nil && *s.MessagesWaiting, s.Body
	})
}

// BLF in the lab: carol watches extension 101 (dialog package); the lamp
// is idle, blinks while alice's call rings bob, is on while they talk and
// goes off after.
func TestPBXBLFLampFollowsCall(t *testing.T) {
	ctx := testCtx(t, 3*time.Minute)
	sub := subscribe(t, ctx, "carol", "101", "dialog")
	lamp := func() string { return subscriptionOf(t, ctx, "carol", sub).Lamp }
	waitUntil(t, 10*time.Second, "the lamp to be idle", func() (bool, string) { l := lamp(); return l == "idle", l })
	setPhone(t, ctx, "bob", "auto_answer", "4s")
	a := placeCall(t, ctx, "alice", "101", uaclient.StateRinging, uaclient.StateConfirmed)
	waitUntil(t, 4*time.Second, "the lamp to blink (ringing)", func() (bool, string) { l := lamp(); return l == "ringing", l })
	waitUntil(t, 15*time.Second, "the lamp to be on (busy)", func() (bool, string) { l := lamp(); return l == "busy", l })
	hangup(t, ctx, "alice", a.ID)
	waitUntil(t, 10*time.Second, "the lamp to go off", func() (bool, string) { l := lamp(); return l == "idle", l })
	st := pbxStatus(t)
	if !slices.ContainsFunc(st.BLF, func(s b2bua.SubscriptionStatus) bool { return s.User == "bob" && strings.Contains(s.Watcher, "carol") }) {
		t.Errorf("PBX BLF subscriptions: %+v", st.BLF)
	}
}
