package sbc

import (
	"net/netip"
	"testing"
	"time"

	"github.com/siplab/siplab/internal/siptest"
	"github.com/siplab/siplab/uaclient"
)

// startUA starts a uaclient that is not a lab phone: the carrier on the
// access side, a PBX stand-in on the core (it answers any number).
func (l *lab) startUA(name, listen, server, dom string) *uaclient.Phone {
	l.t.Helper()
	ua, err := uaclient.New(uaclient.Config{Name: name, Domain: dom, Proxy: server, Listen: listen,
		Settings: map[string]string{"auto_answer": "1s"}, Logger: testLogger()})
	return siptest.Run(l.t, l.ctx, ua, err)
}

// The trunk: a call from the carrier's (trusted) IP goes to the core's
// trunk inbound (the PBX), a core call to a +E.164 number without a token
// goes out to the carrier, audio flows both ways through the relay; a
// phone dialling an E.164 number from another IP is an ordinary phone
// call to the proxy, never a trunk call.
func TestTrunkCallsBothWays(t *testing.T) {
	// Ports for the carrier and PBX stand-in are fixed before the SBC
	// exists: the SBC's config names them.
	carrierAddr := netip.MustParseAddrPort(accessNet + "40:25060")
	pbxAddr := netip.MustParseAddrPort(coreNet + "30:25060")
	s := DefaultSettings()
	s.KeepaliveInterval = time.Second
	l := newLab(t, labOpts{trunk: carrierAddr, inbound: pbxAddr, settings: &s})
	carrier := l.startUA("carrier", carrierAddr.String(), l.sbc.AccessAddr().String(), "carrier.example")
	pbx := l.startUA("pbx", pbxAddr.String(), l.sbc.CoreAddr().String(), "pbx.siplab.test")

	ctx := siptest.Ctx(t, 20*time.Second)
	in, err := carrier.CallAs(ctx, "+4930123456", "+15551234")
	if err != nil {
		t.Fatal(err)
	}
	if st, err := in.Wait(ctx, uaclient.StateConfirmed, uaclient.StateTerminated); err != nil || st.State != uaclient.StateConfirmed {
		t.Fatalf("carrier -> platform: %+v, %v", st, err)
	}
	time.Sleep(1500 * time.Millisecond)
	st := in.Status()
	cs, ok := l.sbc.Call(st.CallID)
	if !ok || cs.Kind != KindTrunkIn || cs.Legs[1].Realm != "core" {
		t.Fatalf("SBC call %+v, want trunk->core", cs)
	}
	pin, _ := incoming(pbx)
	if st.Media == nil || pin.Media == nil || !near(st.Media.Received.ToneHz, pbx.ToneHz()) || !near(pin.Media.Received.ToneHz, carrier.ToneHz()) {
		t.Errorf("trunk-in audio: carrier %+v, pbx %+v", st.Media, pin.Media)
	}
	if err := in.Hangup(ctx); err != nil {
		t.Fatal(err)
	}

	out, err := pbx.Call(ctx, "+4930999888")
	if err != nil {
		t.Fatal(err)
	}
	if st, err := out.Wait(ctx, uaclient.StateConfirmed, uaclient.StateTerminated); err != nil || st.State != uaclient.StateConfirmed {
		t.Fatalf("platform -> carrier: %+v, %v", st, err)
	}
	time.Sleep(1000 * time.Millisecond)
	ocs, _ := l.sbc.Call(out.Status().CallID)
	if ocs.Kind != KindTrunkOut || ocs.Legs[1].SignalTo != carrierAddr.String() {
		t.Errorf("SBC call %+v, want core->trunk to %s", ocs, carrierAddr)
	}
	cin, _ := incoming(carrier)
	if cin.Media == nil || !near(cin.Media.Received.ToneHz, pbx.ToneHz()) {
		t.Errorf("trunk-out audio at the carrier: %+v", cin.Media)
	}
	if err := out.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	l.assertNoCoreLeak(t, carrier)
	// The SBC's OPTIONS keep-alive towards the carrier (1 s here).
	siptest.WaitFor(t, 5*time.Second, "trunk ping answered", func() bool {
		h := l.sbc.Status().TrunkHealth
		return h != nil && h.Up && h.PingsOK > 0
	})

	// ACL: the same number dialled by a phone from another IP is a phone
	// call (to the proxy, which does not know the number), not a trunk call.
	alice := l.addPhone("alice", 50, natedSettings(), "")
	before := len(pbx.Status().Calls)
	c, err := alice.Call(ctx, "+4930123456")
	if err != nil {
		t.Fatal(err)
	}
	fst, _ := c.Wait(ctx, uaclient.StateTerminated)
	if fst.Code < 400 {
		t.Errorf("phone dialling an E.164 number got %d", fst.Code)
	}
	if n := len(pbx.Status().Calls); n != before {
		t.Errorf("a phone's call reached the trunk inbound (%d calls, was %d)", n, before)
	}
	if acs, _ := l.sbc.Call(fst.CallID); acs.Kind != KindPhoneOut {
		t.Errorf("phone's E.164 call routed as %q", acs.Kind)
	}
}
