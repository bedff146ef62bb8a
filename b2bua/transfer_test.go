package b2bua

import (
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/internal/siptest"
	"github.com/siplab/siplab/uaclient"
)

// The caller talks to bob, then transfers bob to 102 (carol) with a blind
// REFER. The PBX answers 202, reports 100 then 200 in sipfrag NOTIFYs,
// calls carol and connects her to bob: carol hears bob and bob hears
// carol, on bob's unchanged dialog.
func TestBlindTransferConnectsTarget(t *testing.T) {
	l := newLab(t, labOpts{}, "bob", "carol")
	bob, carol := l.phone("bob"), l.phone("carol")
	autoAnswer(t, bob, carol)
	dave := newRawUA(t, "127.0.9.90", "dave")
	dave.startMedia(callerTone)
	dave.call(l.pbx.LocalAddr(), "101")
	bobCall, err := bob.WaitCall(siptest.Ctx(t, 5*time.Second), "", uaclient.StateConfirmed)
	if err != nil {
		t.Fatal(err)
	}

	dave.inDialog("REFER", 0, "Refer-To: <sip:102@"+l.pbx.LocalAddr().String()+">\r\nReferred-By: <sip:dave@siplab.test>\r\n")
	if res := dave.response(sip.REFER, 200, 5*time.Second); res.StatusCode != 202 {
		t.Fatalf("REFER: %d %s", res.StatusCode, res.Reason)
	}
	var frags []string
	for {
		n, src := dave.request(sip.NOTIFY, 10*time.Second)
		if ev := n.GetHeader("Event"); ev == nil || ev.Value() != "refer" ||
			!strings.HasPrefix(n.ContentType().Value(), "message/sipfrag") {
			t.Fatalf("NOTIFY without refer event / sipfrag:\n%s", n)
		}
		dave.respond(n, src, 200, "OK", "")
		frags = append(frags, strings.TrimSpace(string(n.Body())))
		if strings.HasPrefix(n.GetHeader("Subscription-State").Value(), "terminated") {
			break
		}
	}
	if frags[0] != "SIP/2.0 100 Trying" || frags[len(frags)-1] != "SIP/2.0 200 OK" {
		t.Fatalf("sipfrag progress %q", frags)
	}
	dave.inDialog("BYE", 0, "")
	if res := dave.response(sip.BYE, 200, 5*time.Second); res.StatusCode != 200 {
		t.Fatalf("transferor BYE: %d", res.StatusCode)
	}

	carolCall, err := carol.WaitCall(siptest.Ctx(t, 5*time.Second), "", uaclient.StateConfirmed)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			c, _ := carol.CallStatus(carolCall.ID)
			b, _ := bob.CallStatus(bobCall.ID)
			t.Logf("carol: %+v\nbob: %+v", c.Media, b.Media)
			var sb strings.Builder
			WriteText(&sb, l.pbx.Status())
			t.Log(sb.String())
		}
	})
	siptest.WaitFor(t, 6*time.Second, "carol and bob to hear each other", func() bool {
		c, _ := carol.CallStatus(carolCall.ID)
		b, _ := bob.CallStatus(bobCall.ID)
		return c.Media != nil && c.Media.Received.AudioPackets >= 50 && near(c.ToneHz, bob.ToneHz(), 10) &&
			near(b.ToneHz, carol.ToneHz(), 10)
	})
	if st, _ := bob.CallStatus(bobCall.ID); st.State != uaclient.StateConfirmed || st.CallID != bobCall.CallID {
		t.Fatalf("bob's call after the transfer: %s %s", st.State, st.CallID)
	}
	pc, _ := l.callOf(legOf(mustCall(t, l, bobCall.CallID), "a").CallID)
	if pc.Target != "carol" || pc.State != StateAnswered || legOf(pc, "a").Peer != "sip:carol@"+domain {
		t.Fatalf("PBX call after transfer: target %s state %s legs %+v", pc.Target, pc.State, pc.Legs)
	}
}

// mustCall finds the PBX call one of whose legs has Call-ID cid.
func mustCall(t *testing.T, l *lab, cid string) CallStatus {
	t.Helper()
	for _, c := range l.pbx.Status().Calls {
		for _, lg := range c.Legs {
			if lg.CallID == cid {
				return c
			}
		}
	}
	t.Fatalf("no PBX call with a leg %s", cid)
	return CallStatus{}
}
