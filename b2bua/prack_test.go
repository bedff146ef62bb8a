package b2bua

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/internal/siptest"
	"github.com/siplab/siplab/sip/sdpneg"
	"github.com/siplab/siplab/sip/sipdialog"
	"github.com/siplab/siplab/uaclient"
)

// The callee sends its 180 reliably (Require: 100rel, RSeq): the PBX
// acknowledges it with PRACK (RAck: 1 1 INVITE) in the early dialog, the
// callee answers, and the call completes with audio to the caller.
func TestPRACKFlowCompletes(t *testing.T) {
	l := newLab(t, labOpts{}, "alice", "carol")
	alice := l.phone("alice")
	callee := l.rawPhone(t, "carol")
	callee.startMedia(callerTone)

	call, err := alice.Call(siptest.Ctx(t, 5*time.Second), l.dial("102"))
	if err != nil {
		t.Fatal(err)
	}
	inv, src := callee.request(sip.INVITE, 5*time.Second)
	if s := inv.GetHeader("Supported"); s == nil || !strings.Contains(s.Value(), "100rel") {
		t.Fatalf("PBX INVITE does not offer 100rel:\n%s", inv)
	}
	callee.respond(inv, src, 180, "Ringing", "rtag", callee.contact(), "Require: 100rel", "RSeq: 1")
	pr, psrc := callee.request(sip.PRACK, 5*time.Second)
	if ra := pr.GetHeader("RAck"); ra == nil || ra.Value() != "1 1 INVITE" {
		t.Fatalf("PRACK RAck %v:\n%s", ra, pr)
	}
	if tag, _ := pr.To().Params.Get("tag"); tag != "rtag" || sipdialog.CallID(pr) != sipdialog.CallID(inv) {
		t.Fatalf("PRACK outside the early dialog:\n%s", pr)
	}
	callee.respond(pr, psrc, 200, "OK", "")
	if _, err := call.Wait(siptest.Ctx(t, 5*time.Second), uaclient.StateRinging); err != nil {
		t.Fatal(err)
	}
	callee.answer(inv, src, "rtag")
	if _, err := call.Wait(siptest.Ctx(t, 5*time.Second), uaclient.StateConfirmed); err != nil {
		t.Fatal(err)
	}
	siptest.WaitFor(t, 5*time.Second, "alice to hear the callee", func() bool {
		s := call.Status()
		return s.Media != nil && s.Media.Received.AudioPackets >= 25 && near(s.ToneHz, callerTone, 10)
	})
	pc, _ := l.callOf(call.CallID())
	if !strings.Contains(strings.Join(pc.Events, "\n"), "PRACK 1 1 INVITE on leg b: 200 OK") {
		t.Fatalf("events: %v", pc.Events)
	}
}

// A caller that requires 100rel gets every 18x reliably (RFC 3262 §3
// MUST): alice's phone, set to require it, sees the PBX's 180 with RSeq
// and PRACKs it, although bob sent his 180 unreliably.
func TestCallerRequiring100relGetsReliable180(t *testing.T) {
	l := newLab(t, labOpts{}, "alice", "bob")
	alice, bob := l.phone("alice"), l.phone("bob")
	if err := alice.Set("100rel", "require"); err != nil {
		t.Fatal(err)
	}
	if err := bob.Set("auto_answer", "1s"); err != nil {
		t.Fatal(err)
	}
	call, err := alice.Call(siptest.Ctx(t, 5*time.Second), "101")
	if err != nil {
		t.Fatal(err)
	}
	st, err := call.Wait(siptest.Ctx(t, 10*time.Second), uaclient.StateConfirmed)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(st.Prack, "\n")
	if !strings.Contains(got, "180 RSeq 1 received reliably") || !strings.Contains(got, "PRACK sent, 200 OK") {
		t.Fatalf("alice's reliable provisionals:\n%s", got)
	}
	pc, _ := l.callOf(call.CallID())
	// CSeq 2: alice's INVITE was challenged (407) once by the proxy.
	if !strings.Contains(strings.Join(pc.Events, "\n"), "PRACK 1 2 INVITE from leg a: 200 OK") {
		t.Errorf("PBX events: %v", pc.Events)
	}
	if bs := mustFindCall(t, bob).Status(); len(bs.Prack) != 0 {
		t.Errorf("bob's leg used 100rel although bob only supports it: %v", bs.Prack)
	}
}

// A caller that only supports 100rel: the plain 180 comes unreliably, the
// 183 with early media reliably (the PBX's choice, b2bua/README.md), and
// the PBX holds the 200 until that 183 is PRACKed (RFC 3262 §3).
func TestCallerSupporting100relGetsReliableEarlyMedia(t *testing.T) {
	l := newLab(t, labOpts{}, "carol")
	callee, caller, inv, src := rawCallToCarol(t, l, "127.0.9.90", "Supported: 100rel\r\n")
	r180 := caller.response(sip.INVITE, 180, 5*time.Second)
	if r180.StatusCode != 180 || r180.GetHeader("RSeq") != nil || hasOptionTag(r180, "Require", "100rel") {
		t.Fatalf("180 without SDP to a caller that only supports 100rel must be unreliable:\n%s", r180)
	}
	early := []byte(callee.sdp(sdpneg.SendRecv))
	callee.respondBody(inv, src, 183, "Session Progress", "ctag", early, callee.contact())
	r183 := caller.response(sip.INVITE, 183, 5*time.Second)
	if r183.StatusCode != 183 || !hasOptionTag(r183, "Require", "100rel") || r183.GetHeader("RSeq") == nil || len(r183.Body()) == 0 {
		t.Fatalf("183 with SDP must be reliable:\n%s", r183)
	}
	rseq := r183.GetHeader("RSeq").Value()
	// The callee answers at once; the caller has not PRACKed yet.
	callee.respondBody(inv, src, 200, "OK", "ctag", early, callee.contact())
	for _, m := range caller.quietFor(800 * time.Millisecond) {
		if res, ok := m.(*sip.Response); ok && res.StatusCode >= 200 {
			t.Fatalf("final %d before the PRACK of the reliable 183", res.StatusCode)
		}
	}
	caller.toTag, _ = r183.To().Params.Get("tag")
	caller.inDialog("PRACK", 0, "RAck: "+rseq+" 1 INVITE\r\n")
	if res := caller.response(sip.PRACK, 200, 5*time.Second); res.StatusCode != 200 {
		t.Fatalf("PRACK: %d", res.StatusCode)
	}
	ok := caller.response(sip.INVITE, 200, 5*time.Second)
	if ok.StatusCode != 200 {
		t.Fatalf("INVITE: %d", ok.StatusCode)
	}
	caller.inDialog("ACK", 1, "")
}

// rawCallToCarol puts raw UAs on both ends of a call to carol (102): a
// caller at ip sending inviteHeaders with its INVITE, and carol's leg,
// which has received the INVITE (from src) and answered 180 Ringing.
func rawCallToCarol(t *testing.T, l *lab, ip, inviteHeaders string) (callee, caller *rawUA, inv *sip.Request, src netip.AddrPort) {
	t.Helper()
	callee = l.rawPhone(t, "carol")
	callee.startMedia(callerTone)
	caller = newRawUA(t, ip, "dave")
	caller.startMedia(callerTone + 200)
	caller.inviteHeaders = inviteHeaders
	caller.dial(l.pbx.LocalAddr(), "102", "rel-"+sip.GenerateTagN(8))
	inv, src = callee.request(sip.INVITE, 5*time.Second)
	callee.respond(inv, src, 180, "Ringing", "ctag", callee.contact())
	return callee, caller, inv, src
}

func mustFindCall(t *testing.T, p *uaclient.Phone) *uaclient.Call {
	t.Helper()
	c, err := p.FindCall("")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// RFC 3262 §3: no second reliable provisional before the first is
// PRACKed. The callee sends 180 then 183 at once; a caller requiring
// 100rel gets the 180 (RSeq 1) and only after its PRACK the 183 (RSeq 2).
func TestSecondReliableProvisionalWaitsForPrack(t *testing.T) {
	l := newLab(t, labOpts{}, "carol")
	callee, caller, inv, src := rawCallToCarol(t, l, "127.0.9.91", "Require: 100rel\r\nSupported: 100rel\r\n")
	// The 183 leaves only once the 180 reached the caller: sent back to
	// back over UDP, the PBX may handle them in either order (one goroutine
	// per message), and the test is about the PRACK wait, not that race.
	r180 := caller.response(sip.INVITE, 180, 5*time.Second)
	if r180.StatusCode != 180 || r180.GetHeader("RSeq") == nil || r180.GetHeader("RSeq").Value() != "1" {
		t.Fatalf("first reliable provisional:\n%s", r180)
	}
	callee.respondBody(inv, src, 183, "Session Progress", "ctag", []byte(callee.sdp(sdpneg.SendRecv)), callee.contact())
	for _, m := range caller.quietFor(700 * time.Millisecond) {
		if res, ok := m.(*sip.Response); ok && res.StatusCode == 183 {
			t.Fatalf("183 sent before the 180 (RSeq 1) was PRACKed:\n%s", res)
		}
	}
	caller.toTag, _ = r180.To().Params.Get("tag")
	caller.inDialog("PRACK", 0, "RAck: 1 1 INVITE\r\n")
	var r183 *sip.Response
	for r183 == nil {
		m, _ := caller.read(5 * time.Second)
		res, ok := m.(*sip.Response)
		switch {
		case !ok:
		case res.CSeq().MethodName == sip.PRACK && res.StatusCode != 200:
			t.Fatalf("PRACK answered %d", res.StatusCode)
		case res.StatusCode == 183:
			r183 = res
		}
	}
	if rs := r183.GetHeader("RSeq"); rs == nil || rs.Value() != "2" || !hasOptionTag(r183, "Require", "100rel") || len(r183.Body()) == 0 {
		t.Fatalf("second reliable provisional:\n%s", r183)
	}
}
