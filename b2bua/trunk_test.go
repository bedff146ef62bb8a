package b2bua

import (
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/internal/siptest"
	"github.com/siplab/siplab/uaclient"
)

// The lab's dial plan file stays valid and says what the lab needs: the
// carrier's DIDs reach alice, bob and carol (with their extension's
// forwards), numbers starting with + go to the SBC's core address.
func TestLabDialPlanDIDsAndTrunk(t *testing.T) {
	f, err := os.Open("../lab-nets/dialplan.conf")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dp, err := ParseDialPlan(f)
	if err != nil {
		t.Fatal(err)
	}
	sbc := netip.MustParseAddrPort("10.0.0.5:5060")
	for _, tc := range []struct {
		dialled, target, noanswer string
	}{
		{"+15550100", "alice", "voicemail:alice"},
		{"+15550101", "bob", "voicemail:bob"},
		{"+15550102", "carol", "voicemail:carol"},
		{"101", "bob", "voicemail:bob"},
		{"+15551234567", "trunk:+15551234567@" + sbc.String(), ""},
		{"+442079460000", "trunk:+442079460000@" + sbc.String(), ""},
	} {
		e, ok := dp.Lookup(tc.dialled)
		if !ok {
			t.Errorf("%s: not in the lab dial plan", tc.dialled)
			continue
		}
		na := ""
		if e.NoAnswer != nil {
			na = e.NoAnswer.String()
		}
		if e.Target.String() != tc.target || na != tc.noanswer {
			t.Errorf("%s -> %s (noanswer %q), want %s (noanswer %q)", tc.dialled, e.Target, na, tc.target, tc.noanswer)
		}
	}
	for user, did := range map[string]string{"alice": "+15550100", "bob": "+15550101", "carol": "+15550102", "dave": ""} {
		if got := dp.DIDOf(user); got != did {
			t.Errorf("DIDOf(%s) = %q, want %q", user, got, did)
		}
	}
	if _, ok := dp.Lookup("+1555abc"); ok {
		t.Error("+1555abc matched the + prefix: only digits may follow it")
	}
}

func TestParseDialPlanTrunks(t *testing.T) {
	for _, tc := range []struct {
		name, plan string
		err        string
		lookups    map[string]string // dialled -> target ("" = not found)
	}{
		{name: "did to extension and to user", plan: "100 alice noanswer=voicemail:alice\n+15550100 100\n+15550199 bob",
			lookups: map[string]string{"+15550100": "alice", "+15550199": "bob", "+15550198": ""}},
		{name: "did before its extension", plan: "+15550100 100\n100 alice", lookups: map[string]string{"+15550100": "alice"}},
		{name: "longest prefix wins, strip and prepend",
			plan: "100 alice\nprefix + trunk:10.0.0.5\nprefix 9 trunk:10.0.0.6:5080 strip=1 prepend=+1\nprefix 900 trunk:10.0.0.7",
			lookups: map[string]string{"+15551234567": "trunk:+15551234567@10.0.0.5:5060", "95551234567": "trunk:+15551234567@10.0.0.6:5080",
				"9001": "trunk:9001@10.0.0.7:5060", "100": "alice", "9": "", "9x": ""}},
		{name: "exact number to a trunk", plan: "911 trunk:10.0.0.5:5060", lookups: map[string]string{"911": "trunk:911@10.0.0.5:5060"}},
		{name: "prefix to a user", plan: "100 alice\nprefix + alice", err: "not trunk"},
		{name: "prefix without target", plan: "100 alice\nprefix +", err: "prefix"},
		{name: "bad prefix", plan: "100 alice\nprefix +a trunk:10.0.0.5", err: "prefix"},
		{name: "strip too long", plan: "100 alice\nprefix 9 trunk:10.0.0.5 strip=2", err: "strip"},
		{name: "bad prepend", plan: "100 alice\nprefix 9 trunk:10.0.0.5 prepend=x", err: "prepend"},
		{name: "prefix twice", plan: "100 alice\nprefix 9 trunk:10.0.0.5\nprefix 9 trunk:10.0.0.6", err: "twice"},
		{name: "trunk by name", plan: "911 trunk:sbc.example:5060", err: "trunk"},
		{name: "trunk port 0", plan: "911 trunk:10.0.0.5:0", err: "port 0"},
		{name: "DID too long", plan: "+1234567890123456 alice", err: "number"},
		{name: "forward to a trunk", plan: "100 alice busy=trunk:10.0.0.5", err: "trunks"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dp, err := ParseDialPlan(strings.NewReader(tc.plan))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one mentioning %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for dialled, want := range tc.lookups {
				e, ok := dp.Lookup(dialled)
				got := ""
				if ok {
					got = e.Target.String()
				}
				if got != want {
					t.Errorf("Lookup(%s) = %q, want %q", dialled, got, want)
				}
			}
		})
	}
}

// alice dials a plain E.164 number (sip:+15551234567@siplab.test): the
// proxy's user route sends it to the PBX, whose + prefix sends it to the
// trunk as sip:+15551234567@<trunk>, presenting alice's DID as caller id,
// not through the proxy. The trunk answers and alice hears it.
func TestCallOutThroughTrunk(t *testing.T) {
	l, trunk := newTrunkLab(t, "carrier", "+15550100 100", "alice")
	alice := l.phone("alice")

	call, err := alice.Call(siptest.Ctx(t, 5*time.Second), "+15551234567")
	if err != nil {
		t.Fatal(err)
	}
	inv, src := trunk.request(sip.INVITE, 5*time.Second)
	if want := "sip:+15551234567@" + trunk.addr.String(); inv.Recipient.String() != want {
		t.Errorf("Request-URI at the trunk %s, want %s", inv.Recipient.String(), want)
	}
	if src != l.pbx.LocalAddr() {
		t.Errorf("trunk INVITE came from %v, want the PBX %v (not the proxy)", src, l.pbx.LocalAddr())
	}
	if u := inv.From().Address.User; u != "+15550100" {
		t.Errorf("caller id on the trunk %q, want alice's DID +15550100", u)
	}
	trunk.respond(inv, src, 180, "Ringing", "ttag", trunk.contact())
	trunk.answer(inv, src, "ttag")
	if _, err := call.Wait(siptest.Ctx(t, 5*time.Second), uaclient.StateConfirmed); err != nil {
		t.Fatal(err)
	}
	siptest.WaitFor(t, 5*time.Second, "alice to hear the trunk and the trunk alice", func() bool {
		s := call.Status()
		return s.Media != nil && near(s.ToneHz, callerTone, 10) && near(trunk.sess.Stats().Received.ToneHz, alice.ToneHz(), 10)
	})
	pc, _ := l.callOf(call.CallID())
	if pc.Target != "trunk:+15551234567@"+trunk.addr.String() || legOf(pc, "b").Peer != "sip:+15551234567@"+trunk.addr.String() {
		t.Errorf("PBX call target %q, leg b peer %q", pc.Target, legOf(pc, "b").Peer)
	}
}

// The carrier delivers a call for bob's DID: bob's phone rings and
// answers, the carrier hears bob. A number that is not a DID, sent from
// the trunk, is refused: the PBX is no trunk-to-trunk relay.
func TestDIDFromTrunkReachesExtension(t *testing.T) {
	l, trunk := newTrunkLab(t, "+15557654321", "+15550101 101", "bob")
	bob := l.phone("bob")
	autoAnswer(t, bob)
	res := trunk.call(l.pbx.LocalAddr(), "+15550101")
	if res.StatusCode != 200 {
		t.Fatalf("DID call: %d", res.StatusCode)
	}
	bobCall, err := bob.WaitCall(siptest.Ctx(t, 5*time.Second), "", uaclient.StateConfirmed)
	if err != nil {
		t.Fatal(err)
	}
	siptest.WaitFor(t, 5*time.Second, "the carrier and bob to hear each other", func() bool {
		st, _ := bob.CallStatus(bobCall.ID)
		return near(st.ToneHz, callerTone, 10) && near(trunk.sess.Stats().Received.ToneHz, bob.ToneHz(), 10)
	})
	if st, _ := bob.CallStatus(bobCall.ID); !strings.Contains(st.Peer, "+15557654321") {
		t.Errorf("bob sees the caller as %q, want the carrier's number", st.Peer)
	}
	trunk.inDialog("BYE", 0, "")
	trunk.response(sip.BYE, 200, 5*time.Second)

	fraud := newRawUA(t, trunk.addr.Addr().String(), "+15557654321")
	fraud.startMedia(callerTone)
	fraud.dial(l.pbx.LocalAddr(), "+15559999999", sip.GenerateTagN(12))
	if res := fraud.response(sip.INVITE, 200, 5*time.Second); res.StatusCode != 403 {
		t.Fatalf("trunk-to-trunk call answered %d %s, want 403", res.StatusCode, res.Reason)
	}
}
