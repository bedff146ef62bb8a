package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/siplab/siplab/carrier"
	"github.com/siplab/siplab/sbc"
	"github.com/siplab/siplab/scanner"
	"github.com/siplab/siplab/uaclient"
)

// The SBC's public SIP address, and the attacker's (labctl.AttackerIP).
const (
	sbcSIP     = "203.0.113.5:5060"
	attackerIP = "203.0.113.66"
)

func sbcStatus(t *testing.T, ctx context.Context) sbc.Status {
	t.Helper()
	return nodeStatus[sbc.Status](t, ctx, "sbc", "/sbc")
}

func setSBC(t *testing.T, ctx context.Context, name, value string) {
	t.Helper()
	old, ok := sbcStatus(t, ctx).Settings[name]
	if !ok {
		t.Fatalf("sbc has no setting %q", name)
	}
	changeSetting(t, ctx, "sbc", name, old, value, func(ctx context.Context, v string) (string, error) {
		return lab.Exec(ctx, "sbc", "/sbc", "set", name, v)
	})
}

// behindSBCWithEveryFixOff points a phone at the SBC and turns off every
// phone-side NAT fix: no rport, its private address in Contact and SDP, no
// keep-alives. Only symmetric RTP stays: latching needs the phone to send
// from the port it receives on, and no SBC can change that.
func behindSBCWithEveryFixOff(t *testing.T, ctx context.Context, phone string) {
	t.Helper()
	// Back on the proxy with its defaults, the phone registers there again
	// (this cleanup runs after the settings are restored): the next test
	// expects it registered at the proxy.
	reRegisterAtEnd(t, phone)
	setPhone(t, ctx, phone, "rport", "off")
	setPhone(t, ctx, phone, "sdp_addr", "local")
	setPhone(t, ctx, phone, "keepalive", "off")
	moveToSBC(t, ctx, phone)
}

// behindSBC points a phone at the SBC with its NAT fixes as they are, and
// back at the proxy when the test ends.
func behindSBC(t *testing.T, ctx context.Context, phone string) {
	t.Helper()
	reRegisterAtEnd(t, phone)
	moveToSBC(t, ctx, phone)
}

// moveToSBC registers the phone through the SBC only.
func moveToSBC(t *testing.T, ctx context.Context, phone string) {
	t.Helper()
	setPhone(t, ctx, phone, "proxy", sbcSIP)
	// The un-REGISTER the move sent through the proxy may have lost its
	// challenge on the way back (no rport: the 401 goes to the Via port,
	// which another phone may hold on a shared router), leaving a direct
	// binding that forks calls past the SBC. A wildcard un-REGISTER
	// through the SBC clears every binding first.
	if out, err := phoneCmd(t, ctx, phone, "unregister"); err != nil {
		t.Fatalf("%s unregister through the SBC: %v\n%s", phone, err, out)
	}
	if err := reRegister(t, ctx, phone); err != nil {
		t.Fatal(err)
	}
}

// sbcRegistration is the SBC's cached registration of the phone's AOR.
func sbcRegistration(st sbc.Status, user string) (sbc.RegStatus, bool) {
	for _, r := range st.Registrations {
		if strings.Contains(r.AOR, "sip:"+user+"@") {
			return r, true
		}
	}
	return sbc.RegStatus{}, false
}

// newestCall is the phone's most recent call (through a B2BUA the callee's
// Call-ID differs from the caller's).
func newestCall(t *testing.T, ctx context.Context, phone string) (uaclient.CallStatus, bool) {
	t.Helper()
	calls := phoneStatus(t, ctx, phone).Calls
	if len(calls) == 0 {
		return uaclient.CallStatus{}, false
	}
	return calls[len(calls)-1], true
}

// twoWayAudio waits until caller and callee each hear the other's tone.
func twoWayAudio(t *testing.T, ctx context.Context, caller, callee string, callerCallID string, within time.Duration) (callerGot, calleeGot uint64, ok bool) {
	t.Helper()
	callerHz, calleeHz := phoneStatus(t, ctx, caller).ToneHz, phoneStatus(t, ctx, callee).ToneHz
	deadline := time.Now().Add(within)
	for {
		ac, _ := callOf(t, ctx, caller, callerCallID)
		bc, _ := newestCall(t, ctx, callee)
		an, ahz := received(ac)
		bn, bhz := received(bc)
		if an > 50 && bn > 50 && near(ahz, calleeHz) && near(bhz, callerHz) {
			return an, bn, true
		}
		if time.Now().After(deadline) {
			t.Logf("%s got %d pkts (%.0f Hz, want %.0f), %s got %d (%.0f Hz, want %.0f)", caller, an, ahz, calleeHz, callee, bn, bhz, callerHz)
			return an, bn, false
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// The training page's last module: with every phone-side fix off, the SBC
// alone makes the call work — signalling latched to where REGISTERs came
// from, media relayed and latched — and no core address reaches a phone.
func TestSBCFixesEveryNATLieWithoutThePhones(t *testing.T) {
	ctx := testCtx(t, 4*time.Minute)
	inet, err := StartWire("siplab-internet")
	if err != nil {
		t.Fatal(err)
	}
	defer inet.Close()
	for _, p := range []string{"alice", "bob"} {
		behindSBCWithEveryFixOff(t, ctx, p)
	}

	st := sbcStatus(t, ctx)
	for user, router := range map[string]string{"alice": "203.0.113.2:", "bob": "203.0.113.3:"} {
		r, ok := sbcRegistration(st, user)
		if !ok {
			t.Fatalf("the SBC has no registration for %s: %+v", user, st.Registrations)
		}
		if !strings.HasPrefix(r.Latched, router) || !r.NATed {
			t.Errorf("%s latched at %s (NATed=%v), want its router %s*", user, r.Latched, r.NATed, router)
		}
		if !strings.Contains(r.Contact, "192.168.") {
			t.Errorf("%s's Contact %q should be the private one it wrote", user, r.Contact)
		}
	}
	// The short NAT expiry reached the phone: it refreshes (and reopens its
	// pinhole) every minute or so instead of every hour.
	if left := phoneStatus(t, ctx, "alice").Registration.ExpiresIn; left <= 0 || left > 120 {
		t.Errorf("alice's registration lasts %d s: want the SBC's short NAT expiry", left)
	}

	a := placeCall(t, ctx, "alice", "bob", uaclient.StateConfirmed)
	if a.State != uaclient.StateConfirmed {
		t.Fatalf("call through the SBC: %d %s (%s)", a.Code, a.Reason, a.EndReason)
	}
	if !strings.HasPrefix(a.LocalSDP, "192.168.1.50:") {
		t.Fatalf("alice's SDP said %s: the test wants her private address", a.LocalSDP)
	}
	if !strings.HasPrefix(a.RemoteSDP, "203.0.113.5:") {
		t.Errorf("alice was told to send media to %s, want the SBC's relay", a.RemoteSDP)
	}
	if _, _, ok := twoWayAudio(t, ctx, "alice", "bob", a.CallID, 20*time.Second); !ok {
		t.Fatal("no two-way audio through the SBC")
	}
	var relayed bool
	for _, c := range sbcStatus(t, ctx).Calls {
		if c.State == sbc.StateAnswered && c.Media[0].PacketsIn > 0 && c.Media[1].PacketsIn > 0 {
			relayed = true
		}
	}
	if !relayed {
		t.Errorf("the SBC's status shows no confirmed call relaying media both ways")
	}
	hangup(t, ctx, "alice", a.ID)
	waitCallGone(t, ctx, "bob")

	// Topology hiding: every SIP message between the SBC and the phones'
	// routers, in both directions, is free of core (10.0.0.0/24) addresses.
	var seen int
	for _, p := range inet.Packets(nil) {
		sbcSide := p.Src.Addr().String() == "203.0.113.5" || p.Dst.Addr().String() == "203.0.113.5"
		if !sbcSide || p.Src.Port() != 5060 && p.Dst.Port() != 5060 {
			continue
		}
		seen++
		if strings.Contains(string(p.Payload), "10.0.0.") {
			t.Errorf("core address leaked on the internet (%s → %s):\n%s", p.Src, p.Dst, p.Payload)
		}
	}
	if seen < 10 {
		t.Errorf("only %d SIP packets seen at the SBC's public side: capture broken?", seen)
	}
}

// waitCallGone waits until the phone has no call that is still up.
func waitCallGone(t *testing.T, ctx context.Context, phone string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		up := false
		for _, c := range phoneStatus(t, ctx, phone).Calls {
			if c.State != uaclient.StateTerminated {
				up = true
			}
		}
		if !up {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s still has a call up: the BYE never arrived", phone)
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// Latching off: the relay trusts the phones' SDP, which names their private
// addresses: no audio reaches them, though the call is up.
func TestSBCLatchingOffLosesAudio(t *testing.T) {
	ctx := testCtx(t, 3*time.Minute)
	for _, p := range []string{"alice", "bob"} {
		behindSBCWithEveryFixOff(t, ctx, p)
	}
	setSBC(t, ctx, "latching", "off")
	a := placeCall(t, ctx, "alice", "bob", uaclient.StateConfirmed)
	if a.State != uaclient.StateConfirmed {
		t.Fatalf("call: %d %s", a.Code, a.Reason)
	}
	an, bn := audioThenHangup(t, ctx, a, "")
	if an > 0 && bn > 0 {
		t.Fatalf("audio both ways (%d, %d packets) with latching off and private SDP", an, bn)
	}
	t.Logf("latching off: alice got %d packets, bob got %d", an, bn)
}

// A password-guessing attacker on the internet is blocked after a few
// attempts, while a phone behind the SBC keeps registering and calling.
func TestSBCBlocksPasswordGuessingWhileAPhoneWorks(t *testing.T) {
	ctx := testCtx(t, 4*time.Minute)
	behindSBCWithEveryFixOff(t, ctx, "alice")
	t.Cleanup(func() {
		lab.Exec(context.Background(), "sbc", "/sbc", "unblock", attackerIP)
	})
	// A careful attacker hides behind a phone's User-Agent: only the count
	// of failed challenges gives it away.
	rep := runScanner(t, ctx, attackerIP, "register", "-target", sbcSIP, "-domain", "siplab.test", "-user", "bob",
		"-count", "40", "-rate", "20", "-timeout", "300ms", "-user-agent", "Grandstream GXP2170 1.0.11.3")
	if rep.Cracked != "" {
		t.Fatalf("the attacker found bob's password %q", rep.Cracked)
	}
	if rep.LastAnswered == 0 || rep.LastAnswered >= rep.Attempts || rep.Silent == 0 {
		t.Fatalf("the attacker was never cut off: %+v", rep)
	}
	blocked := false
	for _, b := range sbcStatus(t, ctx).Blocked {
		if b.Source.String() == attackerIP {
			blocked = true
		}
	}
	if !blocked {
		t.Errorf("the SBC's status does not list %s as blocked", attackerIP)
	}
	// The legitimate phone, behind its own NAT, is untouched.
	if err := reRegister(t, ctx, "alice"); err != nil {
		t.Fatalf("alice cannot register while the attacker is blocked: %v", err)
	}
	a := placeCall(t, ctx, "alice", "bob", uaclient.StateConfirmed)
	if a.State != uaclient.StateConfirmed {
		t.Fatalf("alice's call during the attack: %d %s", a.Code, a.Reason)
	}
	hangup(t, ctx, "alice", a.ID)
}

func carrierStatus(t *testing.T, ctx context.Context) carrier.Status {
	t.Helper()
	return nodeStatus[carrier.Status](t, ctx, "carrier", "/carrier")
}

// carrierCall has the carrier place a PSTN call to number and returns the
// carrier's side of it.
func carrierCall(t *testing.T, ctx context.Context, number, from string) uaclient.CallStatus {
	t.Helper()
	out, err := lab.Exec(ctx, "carrier", "/carrier", "call", "-json", "-from", from, number)
	if err != nil {
		t.Fatalf("carrier call %s: %v %s", number, err, out)
	}
	var c uaclient.CallStatus
	if err := json.Unmarshal([]byte(out), &c); err != nil {
		t.Fatalf("carrier call output: %v\n%s", err, out)
	}
	t.Cleanup(func() { lab.Exec(context.Background(), "carrier", "/carrier", "hangup", c.ID) })
	return c
}

// carrierCallState waits for the carrier's call to be confirmed (or end).
func carrierCallState(t *testing.T, ctx context.Context, id string) uaclient.CallStatus {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for {
		for _, c := range carrierStatus(t, ctx).Calls {
			if c.ID == id && (c.State == uaclient.StateConfirmed || c.State == uaclient.StateTerminated) {
				return c
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("carrier call %s never confirmed", id)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// The trunk is up both ways: the SBC's OPTIONS pings reach the carrier and
// the carrier's reach the SBC.
func TestTrunkOptionsKeepalivesBothWays(t *testing.T) {
	ctx := testCtx(t, 2*time.Minute)
	deadline := time.Now().Add(60 * time.Second)
	for {
		sb := sbcStatus(t, ctx)
		ca := carrierStatus(t, ctx)
		sbcUp := sb.TrunkHealth != nil && sb.TrunkHealth.Up
		if sbcUp && ca.Peer.State == carrier.PeerUp {
			// The carrier's side of the trunk runs over TLS (5061).
			if ca.Peer.Transport != "tls" || !strings.HasSuffix(ca.Peer.Addr, ":5061") {
				t.Errorf("carrier's trunk peer %s/%s, want the SBC's TLS port", ca.Peer.Addr, ca.Peer.Transport)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("trunk not up both ways: SBC sees %+v, carrier sees %+v", sb.TrunkHealth, ca.Peer)
		}
		// The carrier pings every 30 s; ask for one now rather than wait.
		lab.Exec(ctx, "carrier", "/carrier", "ping")
		time.Sleep(time.Second)
	}
}

// A PSTN caller dials alice's DID: the carrier sends the call over the
// trunk to the SBC, the PBX maps the number to alice, alice's phone rings,
// answers, and caller and alice hear each other.
func TestCarrierCallToADIDRingsAPhone(t *testing.T) {
	ctx := testCtx(t, 3*time.Minute)
	c := carrierCall(t, ctx, "+15550100", "+15550199")
	c = carrierCallState(t, ctx, c.ID)
	if c.State != uaclient.StateConfirmed {
		t.Fatalf("carrier's call to alice's DID: %d %s (%s)", c.Code, c.Reason, c.EndReason)
	}
	carrierHz, aliceHz := carrierStatus(t, ctx).ToneHz, phoneStatus(t, ctx, "alice").ToneHz
	deadline := time.Now().Add(20 * time.Second)
	for {
		var cn uint64
		var chz float64
		for _, cc := range carrierStatus(t, ctx).Calls {
			if cc.ID == c.ID {
				cn, chz = received(cc)
			}
		}
		ac, _ := newestCall(t, ctx, "alice")
		an, ahz := received(ac)
		if cn > 50 && an > 50 && near(chz, aliceHz) && near(ahz, carrierHz) {
			if !strings.Contains(ac.Peer, "+15550199") {
				t.Errorf("alice sees the call from %q, want the PSTN caller +15550199", ac.Peer)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no two-way audio PSTN↔alice: carrier got %d (%.0f Hz, want %.0f), alice got %d (%.0f Hz, want %.0f)", cn, chz, aliceHz, an, ahz, carrierHz)
		}
		time.Sleep(500 * time.Millisecond)
	}
	lab.Exec(ctx, "carrier", "/carrier", "hangup", c.ID)
	waitCallGone(t, ctx, "alice")
}

// alice dials a PSTN number: the proxy sends numbers to the PBX, the PBX
// sends +E.164 to the trunk (the SBC's core side), the SBC to the carrier.
func TestPhoneCallsOutThroughTheTrunk(t *testing.T) {
	ctx := testCtx(t, 3*time.Minute)
	a := placeCall(t, ctx, "alice", "+15551234567", uaclient.StateConfirmed)
	if a.State != uaclient.StateConfirmed {
		t.Fatalf("alice's call to the PSTN: %d %s (%s)", a.Code, a.Reason, a.EndReason)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		calls := carrierStatus(t, ctx).Calls
		if len(calls) > 0 {
			cc := calls[len(calls)-1]
			cn, _ := received(cc)
			an, _ := received(mustCallOf(t, ctx, "alice", a.CallID))
			if cc.State == uaclient.StateConfirmed && cn > 50 && an > 50 {
				if !strings.Contains(cc.Peer, "alice") && !strings.Contains(cc.Peer, "+") {
					t.Logf("carrier sees the caller as %q", cc.Peer)
				}
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the carrier never had the call up with audio both ways: %+v", calls)
		}
		time.Sleep(500 * time.Millisecond)
	}
	hangup(t, ctx, "alice", a.ID)
}

func mustCallOf(t *testing.T, ctx context.Context, phone, callID string) uaclient.CallStatus {
	t.Helper()
	c, _ := callOf(t, ctx, phone, callID)
	return c
}

// runScanner runs the lab's scanner from an internet address and returns
// its report.
func runScanner(t *testing.T, ctx context.Context, from string, args ...string) scanner.Report {
	t.Helper()
	name := "attacker-" + strings.ReplaceAll(from, ".", "-")
	out, err := lab.RunExtra(ctx, false, name, "internet", from, nil, append(append([]string{"/scanner"}, args...), "-json")...)
	if err != nil {
		t.Fatalf("scanner: %v\n%s", err, out)
	}
	var rep scanner.Report
	i := strings.Index(out, "{")
	if i < 0 {
		t.Fatalf("scanner printed no report:\n%s", out)
	}
	if err := json.Unmarshal([]byte(out[i:]), &rep); err != nil {
		t.Fatalf("scanner report: %v\n%s", err, out)
	}
	return rep
}

// A SIPVicious sweep announces itself: the SBC drops it from the first
// packet, while the same sweep gets every answer from the bare proxy.
func TestSBCDropsAKnownScannerTheProxyAnswers(t *testing.T) {
	ctx := testCtx(t, 2*time.Minute)
	const from = "203.0.113.67"
	t.Cleanup(func() { lab.Exec(context.Background(), "sbc", "/sbc", "unblock", from) })
	atProxy := runScanner(t, ctx, from, "options", "-target", "203.0.113.10:5060", "-count", "5", "-rate", "10")
	if atProxy.Silent != 0 || atProxy.LastAnswered != 5 {
		t.Errorf("the proxy should answer every OPTIONS of the sweep: %+v", atProxy)
	}
	atSBC := runScanner(t, ctx, from, "options", "-target", sbcSIP, "-count", "5", "-rate", "10", "-timeout", "300ms")
	if atSBC.LastAnswered != 0 || atSBC.Silent != 5 {
		t.Errorf("the SBC should never answer a friendly-scanner: %+v", atSBC)
	}
}

// Normalisation: router-a's broken ALG writes a port nobody mapped into
// alice's Via and Contact and strips her rport. The SBC never trusts the
// written addresses, so calls to and from alice still work — where a proxy
// without its fixes would send them to the wrong port.
func TestSBCRepairsWhatABrokenALGWrote(t *testing.T) {
	ctx := testCtx(t, 4*time.Minute)
	for _, p := range []string{"alice", "bob"} {
		behindSBCWithEveryFixOff(t, ctx, p)
	}
	setRouter(t, ctx, "router-a", "alg", "broken:wrong-port+strip-rport")
	t.Cleanup(func() {
		if out, err := lab.Exec(context.Background(), "router-a", "/natrouter", "set", "alg", "off"); err != nil {
			t.Errorf("router-a alg off: %v %s", err, out)
		}
	})
	// The ALG switch flushed router-a's mappings: register through it anew.
	if err := reRegister(t, ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	r, ok := sbcRegistration(sbcStatus(t, ctx), "alice")
	if !ok {
		t.Fatal("the SBC has no registration for alice")
	}
	if !strings.HasPrefix(r.Latched, "203.0.113.2:") || strings.Contains(r.Contact, r.Latched) {
		t.Fatalf("alice: Contact %q (as the ALG wrote it) vs latched %s: want the ALG's wrong port and the real source", r.Contact, r.Latched)
	}
	b := placeCall(t, ctx, "bob", "alice", uaclient.StateConfirmed)
	if b.State != uaclient.StateConfirmed {
		t.Fatalf("bob → alice through the SBC with router-a's ALG broken: %d %s (%s)", b.Code, b.Reason, b.EndReason)
	}
	if _, _, ok := twoWayAudio(t, ctx, "bob", "alice", b.CallID, 20*time.Second); !ok {
		t.Fatal("no two-way audio with the broken ALG behind the SBC")
	}
	hangup(t, ctx, "bob", b.ID)
	waitCallGone(t, ctx, "alice")
}
