package b2bua

import (
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/internal/siptest"
	"github.com/siplab/siplab/uaclient"
)

// A call through the PBX is two dialogs; with media anchored each phone
// hears the other through the relay, with it off they hear each other
// directly. The toggle is flipped live between the two calls.
func TestCallTwoLegsAnchoredAndDirect(t *testing.T) {
	l := newLab(t, labOpts{}, "alice", "bob")
	alice, bob := l.phone("alice"), l.phone("bob")
	if err := bob.Set("auto_answer", "200ms"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		anchor string
		media  string
	}{
		{"on", "anchored"},
		{"off", "direct"},
	} {
		t.Run(tc.media, func(t *testing.T) {
			if err := l.pbx.Set(SettingMediaAnchor, tc.anchor); err != nil {
				t.Fatal(err)
			}
			call, bobCall := callUp(t, alice, bob, l.dial("101"))
			// Let a second of audio flow each way.
			siptest.WaitFor(t, 6*time.Second, "both phones to hear each other", func() bool {
				a, b := call.Status(), bobCall.Status()
				return a.Media != nil && b.Media != nil && a.Media.Received.AudioPackets >= 50 && b.Media.Received.AudioPackets >= 50 &&
					near(a.ToneHz, bob.ToneHz(), 10) && near(b.ToneHz, alice.ToneHz(), 10)
			})
			pc, ok := l.callOf(call.CallID())
			if !ok {
				t.Fatalf("PBX has no call for alice's Call-ID %s", call.CallID())
			}
			a, b := legOf(pc, "a"), legOf(pc, "b")
			if a.CallID == b.CallID || b.CallID != bobCall.CallID() {
				t.Fatalf("legs: a %q b %q, bob's call %q: want two dialogs, b = bob's", a.CallID, b.CallID, bobCall.CallID())
			}
			if pc.State != StateAnswered || a.State != "confirmed" || b.State != "confirmed" || pc.Media != tc.media {
				t.Fatalf("call %s media %s, legs %s/%s", pc.State, pc.Media, a.State, b.State)
			}
			heardFrom := call.Status().Media.Received.LastSource
			if tc.media == "anchored" {
				if a.RTP == nil || b.RTP == nil {
					t.Fatal("anchored call without relay statistics")
				}
				if heardFrom != a.RTP.Local {
					t.Errorf("alice hears RTP from %v, want the relay's %s", heardFrom, a.RTP.Local)
				}
				if a.RTP.PacketsIn < 25 || b.RTP.PacketsIn < 25 || a.RTP.PacketsOut < 25 || b.RTP.PacketsOut < 25 {
					t.Errorf("relay counts: a %+v b %+v", *a.RTP, *b.RTP)
				}
			} else {
				if a.RTP != nil {
					t.Error("direct call has relay statistics")
				}
				if want := bobCall.Status().Media.Local; heardFrom.String() != want {
					t.Errorf("alice hears RTP from %v, want bob's own socket %s", heardFrom, want)
				}
			}
			// BYE from the caller ends the callee's leg too.
			if err := call.Hangup(siptest.Ctx(t, 5*time.Second)); err != nil {
				t.Fatal(err)
			}
			st, err := bobCall.Wait(siptest.Ctx(t, 5*time.Second), uaclient.StateTerminated)
			if err != nil || st.EndedBy != "remote" {
				t.Fatalf("bob's leg: %+v %v", st.EndReason, err)
			}
			siptest.WaitFor(t, 3*time.Second, "PBX call to end", func() bool {
				c, _ := l.callOf(call.CallID())
				return c.State == StateEnded
			})
		})
	}
}

// The caller's CANCEL cancels the ringing callee leg; the callee's BYE
// ends the caller's leg; an unknown extension is 404.
func TestCancelAndCalleeByePropagate(t *testing.T) {
	l := newLab(t, labOpts{}, "alice", "bob")
	alice, bob := l.phone("alice"), l.phone("bob")

	t.Run("cancel", func(t *testing.T) {
		call, in := ringUp(t, bob, alice, l.dial("100"))
		if _, err := call.Wait(siptest.Ctx(t, 5*time.Second), uaclient.StateRinging); err != nil {
			t.Fatalf("bob never heard ringing relayed: %v", err)
		}
		if err := call.Cancel(siptest.Ctx(t, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
		st, err := alice.WaitCall(siptest.Ctx(t, 5*time.Second), in.ID, uaclient.StateTerminated)
		if err != nil || st.EndedBy != "remote" || st.Code != 487 {
			t.Fatalf("alice's ringing leg: code %d by %q (%s), %v", st.Code, st.EndedBy, st.EndReason, err)
		}
		if got := call.Status(); got.Code != 487 {
			t.Fatalf("bob's call ended %d %s, want 487", got.Code, got.Reason)
		}
		siptest.WaitFor(t, 3*time.Second, "PBX call to end", func() bool {
			c, _ := l.callOf(call.CallID())
			return c.State == StateEnded && c.EndedBy == "caller"
		})
	})

	t.Run("callee bye", func(t *testing.T) {
		autoAnswer(t, alice)
		call, err := bob.Call(siptest.Ctx(t, 5*time.Second), l.dial("alice"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := call.Wait(siptest.Ctx(t, 5*time.Second), uaclient.StateConfirmed); err != nil {
			t.Fatal(err)
		}
		in, err := alice.WaitCall(siptest.Ctx(t, 5*time.Second), "", uaclient.StateConfirmed)
		if err != nil {
			t.Fatal(err)
		}
		if err := alice.Hangup(siptest.Ctx(t, 5*time.Second), in.ID); err != nil {
			t.Fatal(err)
		}
		st, err := call.Wait(siptest.Ctx(t, 5*time.Second), uaclient.StateTerminated)
		if err != nil || st.EndedBy != "remote" {
			t.Fatalf("bob's leg: ended by %q (%s) %v", st.EndedBy, st.EndReason, err)
		}
		siptest.WaitFor(t, 3*time.Second, "PBX call ended by the callee", func() bool {
			c, _ := l.callOf(call.CallID())
			return c.State == StateEnded && c.EndedBy == "callee"
		})
	})

	t.Run("unknown extension", func(t *testing.T) {
		call, err := alice.Call(siptest.Ctx(t, 5*time.Second), l.dial("555"))
		if err != nil {
			t.Fatal(err)
		}
		st, _ := call.Wait(siptest.Ctx(t, 5*time.Second), uaclient.StateTerminated)
		if st.Code != 404 {
			t.Fatalf("dialling 555: %d %s, want 404", st.Code, st.Reason)
		}
	})
}

// Extension 101 forwards bob's busy to 102 (carol): alice ends up talking
// to carol, and hears carol's tone.
func TestForwardOnBusy(t *testing.T) {
	l := newLab(t, labOpts{}, "alice", "bob", "carol")
	alice, bob, carol := l.phone("alice"), l.phone("bob"), l.phone("carol")
	autoAnswer(t, carol)
	call, _ := ringUp(t, alice, bob, l.dial("101"))
	if err := bob.Reject("", 486); err != nil {
		t.Fatal(err)
	}
	if _, err := call.Wait(siptest.Ctx(t, 10*time.Second), uaclient.StateConfirmed); err != nil {
		t.Fatal(err)
	}
	siptest.WaitFor(t, 5*time.Second, "alice to hear carol", func() bool {
		s := call.Status()
		return s.Media != nil && s.Media.Received.AudioPackets >= 50 && near(s.ToneHz, carol.ToneHz(), 10)
	})
	pc, _ := l.callOf(call.CallID())
	if pc.Target != "carol" || pc.State != StateAnswered || len(pc.Events) == 0 {
		t.Fatalf("PBX call: target %q state %s events %v", pc.Target, pc.State, pc.Events)
	}
	if l.pbx.Status().Counters.Forwarded != 1 {
		t.Fatalf("counters: %+v", l.pbx.Status().Counters)
	}
}

// Flipping media_anchor while a call is up moves its media by re-INVITE on
// both legs: off, alice hears bob straight from bob's socket; on again,
// through a new relay. Audio never stops being verified in between.
func TestLiveToggleReanchorsCallUp(t *testing.T) {
	l := newLab(t, labOpts{}, "alice", "bob")
	alice, bob := l.phone("alice"), l.phone("bob")
	autoAnswer(t, bob)
	call, bobCall := callUp(t, alice, bob, l.dial("101"))
	// heardFrom waits until alice's last RTP packets came from src and both
	// phones still hear each other's tone.
	heardFrom := func(what string, src func() string) {
		t.Helper()
		siptest.WaitFor(t, 8*time.Second, what, func() bool {
			a, b := call.Status(), bobCall.Status()
			return a.Media != nil && b.Media != nil && a.Media.Received.LastSource.String() == src() &&
				near(a.ToneHz, bob.ToneHz(), 10) && near(b.ToneHz, alice.ToneHz(), 10) &&
				time.Since(a.Media.Received.LastPacket) < 100*time.Millisecond &&
				time.Since(b.Media.Received.LastPacket) < 100*time.Millisecond
		})
	}
	relayA := func() string {
		pc, _ := l.callOf(call.CallID())
		if r := legOf(pc, "a").RTP; r != nil {
			return r.Local.String()
		}
		return "no relay"
	}
	heardFrom("alice to hear bob through the relay", relayA)
	first := relayA()

	if err := l.pbx.Set(SettingMediaAnchor, "off"); err != nil {
		t.Fatal(err)
	}
	heardFrom("alice to hear bob directly", func() string { return bobCall.Status().Media.Local })
	if pc, _ := l.callOf(call.CallID()); pc.Media != "direct" || legOf(pc, "a").RTP != nil {
		t.Fatalf("after anchoring off: media %s", pc.Media)
	}

	if err := l.pbx.Set(SettingMediaAnchor, "on"); err != nil {
		t.Fatal(err)
	}
	heardFrom("alice to hear bob through a new relay", relayA)
	if relayA() == first {
		t.Fatalf("re-anchored through the old relay %s", first)
	}
	if st := call.Status(); st.State != uaclient.StateConfirmed || st.CallID != call.CallID() {
		t.Fatalf("the call did not survive: %+v", st.State)
	}
}

// Past its channel limit the PBX refuses new calls with 503 and
// Retry-After, instead of binding ever more sockets. (Behind the proxy a
// phone sees 500: a proxy never forwards 503, RFC 3261 §16.7.)
func TestChannelLimit(t *testing.T) {
	l := newLab(t, labOpts{maxCalls: 1}, "alice", "bob")
	first, err := l.phone("alice").Call(siptest.Ctx(t, 5*time.Second), l.dial("101"))
	if err == nil {
		_, err = first.Wait(siptest.Ctx(t, 5*time.Second), uaclient.StateRinging)
	}
	if err != nil {
		t.Fatal(err)
	}
	dave := newRawUA(t, "127.0.9.90", "dave")
	dave.startMedia(callerTone)
	dave.dial(l.pbx.LocalAddr(), "100", "limit-"+sip.GenerateTagN(6))
	res := dave.response(sip.INVITE, 200, 5*time.Second)
	if res.StatusCode != 503 || res.GetHeader("Retry-After") == nil {
		t.Fatalf("second call: %d %s", res.StatusCode, res.Reason)
	}
}
