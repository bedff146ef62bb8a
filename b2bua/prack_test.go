package b2bua

import (
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/sdpneg"
	"github.com/siplab/siplab/uaclient"
)

// The callee sends its 180 reliably (Require: 100rel, RSeq): the PBX
// acknowledges it with PRACK (RAck: 1 1 INVITE) in the early dialog, the
// callee answers, and the call completes with audio to the caller.
func TestPRACKFlowCompletes(t *testing.T) {
	l := newLab(t, labOpts{}, "alice", "carol")
	alice := l.phone("alice")
	carolAddr := l.phone("carol").Addr()
	l.phone("carol").Close()
	callee := newRawUA(t, carolAddr, "carol")
	callee.startMedia(callerTone)

	call, err := alice.Call(ctxT(t, 5*time.Second), l.dial("102"))
	if err != nil {
		t.Fatal(err)
	}
	inv, src := callee.request(sip.INVITE, 5*time.Second)
	if s := inv.GetHeader("Supported"); s == nil || !strings.Contains(s.Value(), "100rel") {
		t.Fatalf("PBX INVITE does not offer 100rel:\n%s", inv)
	}
	contact := "Contact: <sip:carol@" + carolAddr.String() + ">"
	callee.respond(inv, src, 180, "Ringing", "rtag", contact, "Require: 100rel", "RSeq: 1")
	pr, psrc := callee.request(sip.PRACK, 5*time.Second)
	if ra := pr.GetHeader("RAck"); ra == nil || ra.Value() != "1 1 INVITE" {
		t.Fatalf("PRACK RAck %v:\n%s", ra, pr)
	}
	if tag, _ := pr.To().Params.Get("tag"); tag != "rtag" || callID(pr) != callID(inv) {
		t.Fatalf("PRACK outside the early dialog:\n%s", pr)
	}
	callee.respond(pr, psrc, 200, "OK", "")
	if _, err := call.Wait(ctxT(t, 5*time.Second), uaclient.StateRinging); err != nil {
		t.Fatal(err)
	}

	offer, err := sdpneg.Parse(inv.Body())
	if err != nil {
		t.Fatal(err)
	}
	if err := callee.sess.SetRemote(offer.AddrPort()); err != nil {
		t.Fatal(err)
	}
	callee.respondBody(inv, src, 200, "OK", "rtag", []byte(callee.sdp(sdpneg.SendRecv)), contact)
	if _, ack := callee.request(sip.ACK, 5*time.Second); !ack.IsValid() {
		t.Fatal("no ACK source")
	}
	if _, err := call.Wait(ctxT(t, 5*time.Second), uaclient.StateConfirmed); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "alice to hear the callee", func() bool {
		s := call.Status()
		return s.Media != nil && s.Media.Received.AudioPackets >= 25 && near(s.ToneHz, callerTone, 10)
	})
	pc, _ := l.callOf(call.CallID())
	if !strings.Contains(strings.Join(pc.Events, "\n"), "PRACK 1 1 INVITE on leg b: 200 OK") {
		t.Fatalf("events: %v", pc.Events)
	}
}
