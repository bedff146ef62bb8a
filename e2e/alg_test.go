package e2e

// SIP ALG end to end: alice (site A) calls bob (site B) through the proxy
// with the routers' ALG off, kernel, and broken with each fault, and the
// tests check both the bytes on the wire (host-side captures of the LAN and
// WAN bridges) and the symptom each mode's page in docs/alg/ promises.

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/siplab/siplab/natrouter"
	"github.com/siplab/siplab/natrouter/sipalg"
	"github.com/siplab/siplab/uaclient"
)

const (
	aliceLAN = "192.168.1.50"
	wanA     = "203.0.113.2"
	wanB     = "203.0.113.3"
	proxyPub = "203.0.113.10:5060"
	// The phones' test tones (derived from their names by uaclient).
	aliceTone = 750
	bobTone   = 1400
)

func algPhone(t *testing.T, ctx context.Context, phone string, args ...string) string {
	t.Helper()
	out, err := phoneCmd(t, ctx, phone, args...)
	if err != nil {
		t.Fatalf("%s: uaclient %s: %v", phone, strings.Join(args, " "), err)
	}
	return out
}

// lastCall is the phone's newest call, or nil.
func algLastCall(t *testing.T, ctx context.Context, phone string) *uaclient.CallStatus {
	t.Helper()
	st := phoneStatus(t, ctx, phone)
	if len(st.Calls) == 0 {
		return nil
	}
	return &st.Calls[len(st.Calls)-1]
}

// algSet sets both routers' ALG. The phones unregister first (removing the
// binding the old ALG wrote: a binding left over with another Contact would
// be forked to and hide the new one) and register again after: the switch
// flushes the routers' mappings, and the binding must carry what the new ALG
// writes.
func algSet(t *testing.T, ctx context.Context, a, b string) {
	t.Helper()
	for _, p := range []string{"alice", "bob"} {
		algPhone(t, ctx, p, "unregister", "-timeout", "15s")
	}
	setRouter(t, ctx, "router-a", "alg", a)
	setRouter(t, ctx, "router-b", "alg", b)
	for _, tc := range []struct{ router, spec string }{{"router-a", a}, {"router-b", b}} {
		want, err := natrouter.ParseALG(tc.spec)
		if err != nil {
			t.Fatal(err)
		}
		st := routerStatus(t, ctx, tc.router)
		if st.ALG != want.Spec() || st.ALGDetail == nil || st.ALGDetail.Mode != want.Name {
			t.Fatalf("%s status alg %q %+v, want %s", tc.router, st.ALG, st.ALGDetail, want.Spec())
		}
	}
	algReregister(t, ctx)
}

func algReregister(t *testing.T, ctx context.Context) {
	t.Helper()
	for _, p := range []string{"alice", "bob"} {
		algPhone(t, ctx, p, "register", "-timeout", "15s")
		algPhone(t, ctx, p, "wait", "registered", "-timeout", "15s")
	}
}

// algRestore makes the phones write their private SDP address, as phones
// do out of the box (the lab's compose file configures the public one so
// calls work without an SBC): that is what an ALG rewrites. It puts the lab
// back to normal after the test.
func algRestore(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	for _, p := range []string{"alice", "bob"} {
		setPhone(t, ctx, p, "sdp_addr", "local")
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		algHangupAll(ctx)
		// Leave one binding per phone, written without ALG.
		for _, p := range []string{"alice", "bob"} {
			_, _ = lab.Exec(ctx, p, "/uaclient", "unregister", "-timeout", "15s")
		}
		for _, r := range []string{"router-a", "router-b"} {
			_, _ = lab.Exec(ctx, r, "/natrouter", "set", "alg", "off")
		}
		for _, p := range []string{"alice", "bob"} {
			_, _ = lab.Exec(ctx, p, "/uaclient", "register", "-timeout", "15s")
		}
	})
}

// hangupAll ends whatever call either phone still has.
func algHangupAll(ctx context.Context) {
	for _, p := range []string{"alice", "bob"} {
		for range 3 {
			if _, err := lab.Exec(ctx, p, "/uaclient", "hangup", "-timeout", "5s"); err != nil {
				break
			}
		}
	}
}

// captures starts host-side captures of site A's LAN and of the internet.
func algCaptures(t *testing.T) (lanA, inet *Wire) {
	t.Helper()
	var err error
	if lanA, err = StartWire("siplab-site-a"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lanA.Close)
	if inet, err = StartWire("siplab-internet"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(inet.Close)
	return lanA, inet
}

// call has alice call bob and waits for the call to be confirmed.
func algCall(t *testing.T, ctx context.Context) uaclient.CallStatus {
	t.Helper()
	var st uaclient.CallStatus
	out := algPhone(t, ctx, "alice", "call", "bob", "-json")
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("call: %v\n%s", err, out)
	}
	out, err := phoneCmd(t, ctx, "alice", "wait", "call-state", "confirmed", st.ID, "-timeout", "15s", "-json")
	if err != nil {
		t.Fatalf("alice's call to bob did not connect: %v\n%s", err, out)
	}
	return st
}

// algCallInvites places alice's call to bob (algCall) and returns its
// INVITE on site A's LAN and on the internet (algInvites).
func algCallInvites(t *testing.T, ctx context.Context, lanA, inet *Wire) (lan, wan WirePacket) {
	t.Helper()
	return algInvites(t, lanA, inet, algCall(t, ctx).CallID)
}

// invites returns the INVITE of the call seen on the LAN (from alice) and
// on the internet (from router-a), matched by CSeq/branch and position.
func algInvites(t *testing.T, lanA, inet *Wire, callID string) (lan, wan WirePacket) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		l := lanA.SIP("INVITE ", callID)
		// On the WAN the Call-ID may be rewritten: match by branch.
		if len(l) > 0 {
			via := l[len(l)-1].Header("Via", "v")
			branch := via[strings.Index(via, "branch="):]
			if i := strings.IndexAny(branch, ";, "); i >= 0 {
				branch = branch[:i]
			}
			w := inet.SIP("INVITE ", branch)
			var fromA []WirePacket
			for _, p := range w {
				if p.Src.Addr().String() == wanA {
					fromA = append(fromA, p)
				}
			}
			if len(fromA) > 0 {
				return l[len(l)-1], fromA[len(fromA)-1]
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("INVITE %s not captured on both sides (LAN %d)", callID, len(l))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// hears waits until phone's newest call hears the tone (or gives up).
func algHears(t *testing.T, ctx context.Context, phone string, hz float64, within time.Duration) (uaclient.CallStatus, bool) {
	t.Helper()
	var c *uaclient.CallStatus
	for end := time.Now().Add(within); ; {
		c = algLastCall(t, ctx, phone)
		if c != nil && c.ToneHz == hz {
			return *c, true
		}
		if time.Now().After(end) {
			if c == nil {
				return uaclient.CallStatus{}, false
			}
			return *c, false
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func algRx(c uaclient.CallStatus) uint64 {
	if c.Media == nil {
		return 0
	}
	return c.Media.Received.Packets
}

func algCLOK(p WirePacket) bool {
	return p.Header("Content-Length", "l") == strconv.Itoa(len(p.Body()))
}

func algExpect(t *testing.T, what, got, want string) {
	t.Helper()
	if !strings.Contains(got, want) {
		t.Errorf("%s: %q does not contain %q", what, got, want)
	}
}

func algExpectNot(t *testing.T, what, got, bad string) {
	t.Helper()
	if strings.Contains(got, bad) {
		t.Errorf("%s: %q contains %q", what, got, bad)
	}
}

// algInviteWith sets the ALG of router-a and router-b and has alice call
// bob: her INVITE as sent on site A's LAN and as it crossed the internet.
func algInviteWith(t *testing.T, ctx context.Context, a, b string) (lan, wan WirePacket) {
	t.Helper()
	algSet(t, ctx, a, b)
	lanA, inet := algCaptures(t)
	return algCallInvites(t, ctx, lanA, inet)
}

func TestALGOffLeavesSIPUntouched(t *testing.T) {
	algRestore(t)
	ctx := testCtx(t, 2*time.Minute)
	lan, wan := algInviteWith(t, ctx, "off", "off")
	if string(lan.Payload) != string(wan.Payload) {
		t.Errorf("ALG off changed the INVITE:\nLAN:\n%s\nWAN:\n%s", lan.Payload, wan.Payload)
	}
	algExpect(t, "WAN Via", wan.Header("Via", "v"), aliceLAN)
	algExpect(t, "WAN c=", wan.SDPLine("c="), aliceLAN)
	if wan.Src.Addr().String() != wanA {
		t.Errorf("INVITE left site A from %s, not NATed to %s", wan.Src, wanA)
	}
	algPhone(t, ctx, "alice", "hangup", "-timeout", "10s")
}

// checkCorrectRewrite is what a working ALG (the kernel's, or ours without
// faults) does to alice's INVITE.
func algCheckRewrite(t *testing.T, lan, wan WirePacket) {
	t.Helper()
	algExpect(t, "Via", wan.Header("Via", "v"), "SIP/2.0/UDP "+wanA+":")
	algExpect(t, "Contact", wan.Header("Contact", "m"), "@"+wanA)
	algExpect(t, "o=", wan.SDPLine("o="), "IN IP4 "+wanA)
	algExpect(t, "c=", wan.SDPLine("c="), "IN IP4 "+wanA)
	if got, want := wan.Header("Call-ID", "i"), lan.Header("Call-ID", "i"); got != want {
		t.Errorf("Call-ID rewritten: %q -> %q", want, got)
	}
	if got, want := wan.SDPLine("m="), lan.SDPLine("m="); got != want {
		t.Errorf("m= changed: %q -> %q", want, got)
	}
	if !algCLOK(wan) {
		t.Errorf("Content-Length %s for a %d-byte body", wan.Header("Content-Length", "l"), len(wan.Body()))
	}
}

// checkTwoWayAudio: each phone hears the other's tone.
func algCheckAudio(t *testing.T, ctx context.Context) {
	t.Helper()
	if c, ok := algHears(t, ctx, "alice", bobTone, 6*time.Second); !ok {
		t.Errorf("alice does not hear bob (tone %v, rx %d)", c.ToneHz, algRx(c))
	}
	if c, ok := algHears(t, ctx, "bob", aliceTone, 6*time.Second); !ok {
		t.Errorf("bob does not hear alice (tone %v, rx %d)", c.ToneHz, algRx(c))
	}
}

func TestALGKernelRewritesLikeLinux(t *testing.T) {
	algRestore(t)
	ctx := testCtx(t, 2*time.Minute)
	algSet(t, ctx, "kernel", "kernel")
	st := routerStatus(t, ctx, "router-a")
	if k := st.ALGDetail.Kernel; k == nil || k.NATSIP == "missing" {
		t.Fatalf("kernel support in status: %+v", k)
	}
	lanA, inet := algCaptures(t)
	lan, wan := algCallInvites(t, ctx, lanA, inet)
	t.Logf("kernel ALG, INVITE on the WAN:\n%s", wan.Payload)
	algCheckRewrite(t, lan, wan)
	algExpect(t, "From untouched", wan.Header("From", "f"), lan.Header("From", "f"))
	algCheckAudio(t, ctx)
	algPhone(t, ctx, "alice", "hangup", "-timeout", "10s")
}

func TestALGBrokenWithoutFaultsRewritesCorrectly(t *testing.T) {
	algRestore(t)
	ctx := testCtx(t, 2*time.Minute)
	lan, wan := algInviteWith(t, ctx, "broken:none", "broken:none")
	algCheckRewrite(t, lan, wan)
	algCheckAudio(t, ctx)
	if q := routerStatus(t, ctx, "router-a").ALGDetail.Queue; q == nil || q.Modified == 0 {
		t.Errorf("router-a queue stats %+v", q)
	}
	algPhone(t, ctx, "alice", "hangup", "-timeout", "10s")
}

// TestALGBrokenFaults: router-a gets each fault, router-b a working ALG (so
// bob's side is never the problem).
func TestALGBrokenFaults(t *testing.T) {
	algRestore(t)
	tested := map[string]bool{}
	run := func(fault string, f func(t *testing.T, ctx context.Context, lanA, inet *Wire)) {
		tested[fault] = true
		t.Run(fault, func(t *testing.T) {
			ctx := testCtx(t, 3*time.Minute)
			algSet(t, ctx, "broken:"+fault, "broken:none")
			lanA, inet := algCaptures(t)
			t.Cleanup(func() { algHangupAll(context.Background()) })
			f(t, ctx, lanA, inet)
		})
	}

	run("contact-not-via", func(t *testing.T, ctx context.Context, lanA, inet *Wire) {
		_, wan := algCallInvites(t, ctx, lanA, inet)
		algExpect(t, "Via", wan.Header("Via", "v"), aliceLAN)
		algExpect(t, "Contact", wan.Header("Contact", "m"), "@"+wanA)
		algPhone(t, ctx, "alice", "hangup", "-timeout", "10s")
		// The symptom: a server that answers to the Via as written (rport
		// ignored, and alice not asking for it) reaches a phone behind a
		// correct ALG, not behind this one.
		setProxy(t, ctx, "rport", "ignore")
		setPhone(t, ctx, "alice", "rport", "off")
		t.Cleanup(func() { setPhone(t, context.Background(), "alice", "rport", "on") })
		if out, err := phoneCmd(t, ctx, "alice", "options", "-timeout", "5s"); err == nil {
			t.Errorf("OPTIONS answered through a private Via with rport ignored:\n%s", out)
		}
		setRouter(t, ctx, "router-a", "alg", "broken:none")
		if out, err := phoneCmd(t, ctx, "alice", "options", "-timeout", "8s"); err != nil {
			t.Errorf("control: with a correct ALG the answer to the Via should arrive: %v\n%s", err, out)
		}
	})

	run("sdp-c-only", func(t *testing.T, ctx context.Context, lanA, inet *Wire) {
		lan, wan := algCallInvites(t, ctx, lanA, inet)
		algExpect(t, "c=", wan.SDPLine("c="), "IN IP4 "+wanA)
		algExpect(t, "o=", wan.SDPLine("o="), "IN IP4 "+aliceLAN)
		if wan.SDPLine("m=") != lan.SDPLine("m=") {
			t.Errorf("m= changed: %q", wan.SDPLine("m="))
		}
		// The router keeps the RTP port here, so audio still flows.
		algCheckAudio(t, ctx)
	})

	run("rewrite-call-id", func(t *testing.T, ctx context.Context, lanA, inet *Wire) {
		lan, wan := algCallInvites(t, ctx, lanA, inet)
		algExpect(t, "LAN Call-ID", lan.Header("Call-ID", "i"), "@"+aliceLAN)
		algExpect(t, "WAN Call-ID", wan.Header("Call-ID", "i"), "@"+wanA)
		// bob hangs up: his BYE carries the Call-ID alice never used.
		out, _ := phoneCmd(t, ctx, "bob", "hangup", "-timeout", "10s", "-json")
		t.Logf("bob hangup: %s", out)
		time.Sleep(time.Second)
		if bye := inet.SIP("SIP/2.0 481", "BYE"); len(bye) == 0 {
			t.Errorf("no 481 to bob's BYE seen on the internet")
		}
		if a := algLastCall(t, ctx, "alice"); a == nil || a.State != uaclient.StateConfirmed {
			t.Errorf("alice's side should stay up after bob's BYE failed: %+v", a)
		}
		if b := algLastCall(t, ctx, "bob"); b == nil || !strings.Contains(b.EndReason+b.Reason, "481") {
			t.Logf("bob's call: %+v", b)
		}
	})

	run("stale-content-length", func(t *testing.T, ctx context.Context, lanA, inet *Wire) {
		// Registration still works: setALGs re-registered through it.
		before := algLastCall(t, ctx, "bob")
		out, err := phoneCmd(t, ctx, "alice", "call", "bob", "-json")
		if err != nil {
			t.Fatalf("call: %v\n%s", err, out)
		}
		var st uaclient.CallStatus
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatal(err)
		}
		if out, err := phoneCmd(t, ctx, "alice", "wait", "call-state", "ringing", st.ID, "-timeout", "6s"); err == nil {
			t.Errorf("the call rang despite a stale Content-Length:\n%s", out)
		}
		_, wan := algInvites(t, lanA, inet, st.CallID)
		cl, _ := strconv.Atoi(wan.Header("Content-Length", "l"))
		if cl <= len(wan.Body()) {
			t.Errorf("Content-Length %d for a %d-byte body: not stale", cl, len(wan.Body()))
		}
		if after := algLastCall(t, ctx, "bob"); after != nil && (before == nil || after.ID != before.ID) {
			t.Errorf("bob received the call: %+v", after)
		}
		if n := len(inet.SIP("SIP/2.0 100", st.CallID)); n != 0 {
			t.Errorf("proxy answered the INVITE with 100 Trying (%d)", n)
		}
		// The proxy refuses the short body at once (RFC 3261 §18.3: 400
		// to a request whose Content-Length exceeds what arrived).
		out, _ = phoneCmd(t, ctx, "alice", "wait", "call-state", "terminated", st.ID, "-timeout", "45s", "-json")
		var w struct{ Call uaclient.CallStatus }
		i := strings.Index(out, "{")
		if i < 0 || json.Unmarshal([]byte(out[i:]), &w) != nil || w.Call.State != uaclient.StateTerminated {
			t.Fatalf("alice's call did not end:\n%s", out)
		}
		end := w.Call
		t.Logf("alice's call ended: %d %s (%s)", end.Code, end.Reason, end.EndReason)
		if end.Code != 400 || !strings.Contains(end.Reason, "Content-Length") {
			t.Errorf("the call ended with %d %s, want 400 Content-Length Larger Than Message", end.Code, end.Reason)
		}
	})

	run("wrong-port", func(t *testing.T, ctx context.Context, lanA, inet *Wire) {
		wrong := strconv.Itoa(int(sipalg.WrongPort(5060)))
		algPhone(t, ctx, "alice", "register", "-timeout", "15s")
		time.Sleep(300 * time.Millisecond)
		regs := inet.SIP("REGISTER ", "alice@")
		if len(regs) == 0 {
			t.Fatal("no REGISTER from alice captured")
		}
		r := regs[len(regs)-1]
		algExpect(t, "REGISTER Contact", r.Header("Contact", "m"), wanA+":"+wrong)
		if r.Src.Port() != 5060 {
			t.Logf("mapped port %d", r.Src.Port())
		}
		// With the proxy trusting the written Contact, bob cannot reach alice.
		setProxy(t, ctx, "contact_fixup", "off")
		dropped := routerStatus(t, ctx, "router-a").UnsolicitedDropped
		incoming := func() int {
			n := 0
			for _, c := range phoneStatus(t, ctx, "alice").Calls {
				if c.Direction == "incoming" {
					n++
				}
			}
			return n
		}
		before := incoming()
		var bc uaclient.CallStatus
		if err := json.Unmarshal([]byte(algPhone(t, ctx, "bob", "call", "alice", "-json")), &bc); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Second)
		if after := incoming(); after != before {
			t.Errorf("alice got an incoming call although her Contact port is wrong (%d -> %d)", before, after)
		}
		if now := routerStatus(t, ctx, "router-a").UnsolicitedDropped; now <= dropped {
			t.Errorf("router-a dropped no unsolicited INVITE (%d -> %d)", dropped, now)
		}
		if out, err := phoneCmd(t, ctx, "bob", "hangup", bc.ID, "-timeout", "10s"); err != nil {
			t.Logf("bob cancel: %v %s", err, out)
		}
		// Control: the same proxy setting with a correct ALG rings.
		algPhone(t, ctx, "alice", "unregister", "-timeout", "15s")
		setRouter(t, ctx, "router-a", "alg", "broken:none")
		algPhone(t, ctx, "alice", "register", "-timeout", "15s")
		algPhone(t, ctx, "bob", "call", "alice", "-json")
		if out, err := phoneCmd(t, ctx, "bob", "wait", "call-state", "confirmed", "-timeout", "10s"); err != nil {
			t.Errorf("control: bob could not call alice behind a correct ALG: %v\n%s", err, out)
		}
	})

	run("strip-rport", func(t *testing.T, ctx context.Context, lanA, inet *Wire) {
		var res uaclient.OptionsResult
		out := algPhone(t, ctx, "alice", "options", "-json", "-timeout", "8s")
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(res.Received, ":") {
			t.Errorf("the phone still learns its mapped port (%q) although rport was stripped", res.Received)
		}
		opts := inet.SIP("OPTIONS ", "alice@")
		if len(opts) == 0 {
			t.Fatal("OPTIONS not captured on the internet")
		}
		algExpectNot(t, "WAN Via", opts[len(opts)-1].Header("Via", "v"), "rport")
		lanOpts := lanA.SIP("OPTIONS ", "alice@")
		if len(lanOpts) == 0 || !strings.Contains(lanOpts[len(lanOpts)-1].Header("Via", "v"), "rport") {
			t.Errorf("the phone did not send ;rport on the LAN: %v", lanOpts)
		}
		// Control: without the fault the phone learns received:rport.
		setRouter(t, ctx, "router-a", "alg", "broken:none")
		out = algPhone(t, ctx, "alice", "options", "-json", "-timeout", "8s")
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(res.Received, ":") {
			t.Errorf("control: received/rport %q without the fault", res.Received)
		}
	})

	run("drop-large", func(t *testing.T, ctx context.Context, lanA, inet *Wire) {
		probe := func(name string, size int) natrouter.SIPProbeResult {
			t.Helper()
			out, _ := lab.RunExtra(ctx, false, name, "site-a", "192.168.1.61", []string{"--cap-add", "NET_ADMIN"},
				"/natrouter", "probe", "sip", "-to", proxyPub, "-from", "192.168.1.61:5062", "-gateway", "192.168.1.1",
				"-size", strconv.Itoa(size), "-wait", "4s", "-json")
			var res natrouter.SIPProbeResult
			// stdout carries the JSON even when the exit code says "no answer".
			i := strings.Index(out, "{")
			if i < 0 || json.NewDecoder(strings.NewReader(out[i:])).Decode(&res) != nil {
				t.Fatalf("probe output:\n%s", out)
			}
			t.Logf("probe %d bytes: %q after %d transmission(s)", res.Size, res.Status, res.Tries)
			return res
		}
		if r := probe("alg-small", 600); r.StatusCode() != 200 {
			t.Errorf("a 600-byte OPTIONS got %q", r.Status)
		}
		if r := probe("alg-large", 3000); r.Status != "" {
			t.Errorf("a 3000-byte OPTIONS crossed a drop-large router: %q", r.Status)
		}
		// On the LAN the message is fragmented; the host's br_netfilter
		// may reassemble it before the bridge capture sees it.
		if f := lanA.Packets(func(p WirePacket) bool {
			return p.Src.Addr().String() == "192.168.1.61" && (p.Fragment || len(p.Payload) > 1472)
		}); len(f) == 0 {
			t.Error("the large OPTIONS was not seen on the LAN")
		}
		if n := len(inet.Packets(func(p WirePacket) bool {
			return p.Src.Addr().String() == wanA && (p.Fragment || len(p.Payload) > 1472)
		})); n != 0 {
			t.Errorf("%d pieces of the large OPTIONS left the site through drop-large", n)
		}
		// Control: a correct ALG passes the same message.
		setRouter(t, ctx, "router-a", "alg", "broken:none")
		if r := probe("alg-large2", 3000); r.StatusCode() != 200 {
			t.Errorf("control: the 3000-byte OPTIONS got %q through a correct ALG", r.Status)
		}
	})

	run("first-only", func(t *testing.T, ctx context.Context, lanA, inet *Wire) {
		_, wan := algCallInvites(t, ctx, lanA, inet)
		algExpect(t, "Via", wan.Header("Via", "v"), wanA)
		algExpect(t, "Contact", wan.Header("Contact", "m"), aliceLAN)
		algExpect(t, "c=", wan.SDPLine("c="), aliceLAN)
		// bob's audio goes to 192.168.1.50: alice hears nothing.
		time.Sleep(4 * time.Second)
		if a := algLastCall(t, ctx, "alice"); a == nil || algRx(*a) != 0 {
			t.Errorf("alice received audio through a private SDP: %+v", a)
		}
		// bob's router only lets RTP in from where bob sent (192.168.1.50):
		// alice's audio is filtered too.
		if b := algLastCall(t, ctx, "bob"); b == nil || algRx(*b) != 0 {
			t.Errorf("bob received alice's audio through a port-restricted NAT: %+v", b)
		}
	})

	for _, f := range sipalg.FaultNames() {
		if !tested[f] {
			t.Errorf("fault %s has no e2e test", f)
		}
	}
}
