package b2bua

import (
	"fmt"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/sip/sdpneg"
)

// INFO DTMF in a call and an out-of-dialog MESSAGE cross the PBX: the
// callee receives each with its body, type and the call's correlation, and
// its answer comes back to the sender. An UPDATE offer on the anchored call
// is answered by the PBX itself.
func TestInfoUpdateAndMessage(t *testing.T) {
	l := newLab(t, labOpts{}, "carol")
	callee := l.rawPhone(t, "carol")
	callee.startMedia(700)
	caller := newRawUA(t, "127.0.9.90", "dave")
	caller.startMedia(callerTone)

	caller.dial(l.pbx.LocalAddr(), "102", "info-"+sip.GenerateTagN(8))
	inv, isrc := callee.request(sip.INVITE, 5*time.Second)
	callee.answer(inv, isrc, "ctag")
	ok := caller.response(sip.INVITE, 200, 5*time.Second)
	caller.toTag, _ = ok.To().Params.Get("tag")
	caller.inDialog("ACK", caller.cseq, "")

	caller.cseq++
	body := "Signal=5\r\nDuration=160\r\n"
	caller.send(caller.target, fmt.Sprintf("INFO %s SIP/2.0\r\nVia: %s\r\nMax-Forwards: 70\r\nFrom: <sip:dave@%s>;tag=%s\r\n"+
		"To: <%s>;tag=%s\r\nCall-ID: %s\r\nCSeq: %d INFO\r\nContent-Type: application/dtmf-relay\r\nContent-Length: %d\r\n\r\n%s",
		caller.ruri, caller.via(), domain, caller.fromTag, caller.ruri, caller.toTag, caller.callID, caller.cseq, len(body), body))
	info, src := callee.request(sip.INFO, 5*time.Second)
	if string(info.Body()) != body || info.ContentType().Value() != "application/dtmf-relay" || info.GetHeader(CorrelationHeader) == nil {
		t.Fatalf("INFO at the callee:\n%s", info)
	}
	callee.respond(info, src, 200, "OK", "")
	if res := caller.response(sip.INFO, 200, 5*time.Second); res.StatusCode != 200 {
		t.Fatalf("INFO answered %d", res.StatusCode)
	}

	// UPDATE with an offer on an anchored call is answered by the PBX
	// (RFC 3311): here a hold, answered recvonly at the relay.
	caller.cseq++
	offer := caller.sdp(sdpneg.SendOnly)
	caller.send(caller.target, fmt.Sprintf("UPDATE %s SIP/2.0\r\nVia: %s\r\nMax-Forwards: 70\r\nFrom: <sip:dave@%s>;tag=%s\r\n"+
		"To: <%s>;tag=%s\r\nCall-ID: %s\r\nCSeq: %d UPDATE\r\nContact: <sip:dave@%s>\r\nContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s",
		caller.ruri, caller.via(), domain, caller.fromTag, caller.ruri, caller.toTag, caller.callID, caller.cseq, caller.addr, len(offer), offer))
	upd := caller.response(sip.UPDATE, 200, 5*time.Second)
	ans, err := sdpneg.Parse(upd.Body())
	if upd.StatusCode != 200 || err != nil || ans.Direction != sdpneg.RecvOnly || ans.Addr.String() != pbxIP {
		t.Fatalf("UPDATE answered %d %v:\n%s", upd.StatusCode, err, upd.Body())
	}
	if pc, _ := l.callOf(caller.callID); !legOf(pc, "a").RTP.Holding {
		t.Fatalf("relay after UPDATE hold: %+v", legOf(pc, "a").RTP)
	}

	text := "lunch?"
	caller.send(caller.target, fmt.Sprintf("MESSAGE sip:102@%s SIP/2.0\r\nVia: %s\r\nMax-Forwards: 70\r\nFrom: <sip:dave@%s>;tag=m1\r\n"+
		"To: <sip:102@%s>\r\nCall-ID: msg-%s\r\nCSeq: 1 MESSAGE\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s",
		l.pbx.LocalAddr(), caller.via(), domain, l.pbx.LocalAddr(), sip.GenerateTagN(6), len(text), text))
	msg, src := callee.request(sip.MESSAGE, 5*time.Second)
	if string(msg.Body()) != text || msg.ContentType().Value() != "text/plain" {
		t.Fatalf("MESSAGE at the callee:\n%s", msg)
	}
	callee.respond(msg, src, 202, "Accepted", "mt")
	if res := caller.response(sip.MESSAGE, 200, 5*time.Second); res.StatusCode != 202 {
		t.Fatalf("MESSAGE answered %d", res.StatusCode)
	}
}
