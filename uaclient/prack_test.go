package uaclient

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
	"github.com/siplab/siplab/sip/sipdialog"
)

// TestReliable180 runs 100rel between two phones: who sends the 180
// reliably, the PRACK, and that the dialog's CSeq stays consistent
// afterwards (the BYE after a PRACK is accepted: the sipgo CSeq pitfall).
func TestReliable180(t *testing.T) {
	tests := []struct {
		name         string
		alice, bob   string // 100rel settings
		wantReliable bool
		wantCode     int // final code of the call; 0 = answered
	}{
		{name: "callee prefers, caller supports", alice: Rel100Supported, bob: Rel100Prefer, wantReliable: true},
		{name: "caller requires", alice: Rel100Require, bob: Rel100Supported, wantReliable: true},
		{name: "both only support", alice: Rel100Supported, bob: Rel100Supported},
		{name: "caller off, callee prefers", alice: Rel100Off, bob: Rel100Prefer},
		{name: "caller requires, callee off", alice: Rel100Require, bob: Rel100Off, wantCode: 420},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			alice, bob := pair10(t,
				func(c *Config) { c.Settings = map[string]string{"100rel": tt.alice} },
				func(c *Config) { c.Settings = map[string]string{"100rel": tt.bob} })
			ctx := testCtx(t)
			c, err := alice.Call(ctx, "bob")
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantCode != 0 {
				if st := waitCall(t, alice, c.ID(), StateTerminated); st.Code != tt.wantCode {
					t.Fatalf("call ended %d %s, want %d", st.Code, st.Reason, tt.wantCode)
				}
				return
			}
			waitCall(t, alice, c.ID(), StateRinging)
			if tt.wantReliable {
				eventually(t, "PRACK exchanged", func() bool {
					a, _ := alice.CallStatus(c.ID())
					b, _ := bob.CallStatus("")
					return len(a.Prack) == 2 && len(b.Prack) == 2
				})
				a, _ := alice.CallStatus(c.ID())
				b, _ := bob.CallStatus("")
				var rseq int
				if _, err := fmt.Sscanf(b.Prack[0], "180 RSeq %d sent reliably", &rseq); err != nil {
					t.Fatalf("bob's 100rel %q", b.Prack)
				}
				want := []string{fmt.Sprintf("180 RSeq %d received reliably", rseq), fmt.Sprintf("180 RSeq %d: PRACK sent, 200 OK", rseq)}
				if strings.Join(a.Prack, "|") != strings.Join(want, "|") || b.Prack[1] != fmt.Sprintf("PRACK received for RSeq %d", rseq) {
					t.Fatalf("alice %q, bob %q", a.Prack, b.Prack)
				}
			} else {
				b, _ := bob.CallStatus("")
				if len(b.Prack) != 0 {
					t.Fatalf("bob sent a reliable 180: %q", b.Prack)
				}
			}
			if err := bob.Answer(""); err != nil {
				t.Fatal(err)
			}
			waitCall(t, alice, c.ID(), StateConfirmed)
			waitCall(t, bob, "", StateConfirmed)
			if err := alice.Hangup(ctx, c.ID()); err != nil {
				t.Fatal(err)
			}
			if st := waitCall(t, alice, c.ID(), StateTerminated); st.EndReason != "BYE sent, 200 OK" {
				t.Fatalf("BYE after PRACK: %s", st.EndReason)
			}
		})
	}
}

// TestPrackOnTheWire: the phone as UAC against a raw server sending two
// reliable provisionals: each PRACK is a new in-dialog request with the
// next CSeq and RAck naming the response; the 180's retransmission and an
// out-of-order 183 are not PRACKed; ACK keeps the INVITE's CSeq and BYE continues after the
// PRACKs.
func TestPrackOnTheWire(t *testing.T) {
	proxy, phone := aliceBehindRawProxy(t, "127.0.10.4", "127.0.10.1:0")
	c, err := phone.Call(testCtx(t), "bob")
	if err != nil {
		t.Fatal(err)
	}
	inv, src := proxy.next(sip.INVITE)
	if !sipdialog.HasOptionTag(inv, "Supported", "100rel") {
		t.Fatalf("INVITE does not say Supported: 100rel:\n%s", inv)
	}
	contact := sip.NewHeader("Contact", "<sip:bob@"+proxy.addr()+">")
	prov := func(code int, reason string, rseq int) *sip.Response {
		r := sip.NewResponseFromRequest(inv, code, reason, nil)
		r.To().Params.Add("tag", "uas")
		r.AppendHeader(contact)
		r.AppendHeader(sip.NewHeader("Require", "100rel"))
		r.AppendHeader(sip.NewHeader("RSeq", fmt.Sprint(rseq)))
		return r
	}
	r180 := prov(180, "Ringing", 5)
	proxy.send(r180, src)
	pr1, psrc := proxy.next(sip.PRACK)
	if pr1.GetHeader("RAck").Value() != fmt.Sprintf("5 %d INVITE", inv.CSeq().SeqNo) || pr1.CSeq().SeqNo != inv.CSeq().SeqNo+1 {
		t.Fatalf("first PRACK:\n%s", pr1)
	}
	if tag, _ := pr1.To().Params.Get("tag"); tag != "uas" || pr1.Recipient.String() != "sip:bob@"+proxy.addr() {
		t.Fatalf("PRACK not in the early dialog:\n%s", pr1)
	}
	proxy.reply(pr1, psrc, 200, "OK")
	proxy.send(r180, src) // retransmission: no new PRACK
	proxy.send(prov(183, "Session Progress", 6), src)
	pr2, psrc := proxy.next(sip.PRACK)
	if pr2.GetHeader("RAck").Value() != fmt.Sprintf("6 %d INVITE", inv.CSeq().SeqNo) || pr2.CSeq().SeqNo != inv.CSeq().SeqNo+2 {
		t.Fatalf("second PRACK (after a retransmitted 180):\n%s", pr2)
	}
	proxy.reply(pr2, psrc, 200, "OK")
	proxy.send(prov(183, "Session Progress", 8), src) // a gap (7 missing): ignored
	ok := sip.NewResponseFromRequest(inv, 200, "OK", answerSDP(t, inv.Body(), rtpSocket(t, "127.0.10.4")))
	ok.To().Params.Add("tag", "uas")
	ok.AppendHeader(contact)
	ok.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	proxy.send(ok, src)
	ack, _ := proxy.next(sip.ACK)
	if ack.CSeq().SeqNo != inv.CSeq().SeqNo {
		t.Fatalf("ACK CSeq %d, INVITE %d", ack.CSeq().SeqNo, inv.CSeq().SeqNo)
	}
	waitCall(t, phone, c.ID(), StateConfirmed)
	go phone.Hangup(testCtx(t), c.ID())
	bye, bsrc := proxy.next(sip.BYE)
	if bye.CSeq().SeqNo != inv.CSeq().SeqNo+3 {
		t.Fatalf("BYE CSeq %d, want %d (after two PRACKs)", bye.CSeq().SeqNo, inv.CSeq().SeqNo+3)
	}
	proxy.reply(bye, bsrc, 200, "OK")
	waitCall(t, phone, c.ID(), StateTerminated)
	// Each PRACK's outcome is logged when its transaction ends.
	eventually(t, "both PRACKs logged", func() bool { st, _ := phone.CallStatus(c.ID()); return len(st.Prack) >= 4 })
	if st, _ := phone.CallStatus(c.ID()); len(st.Prack) != 4 {
		t.Fatalf("100rel log %q", st.Prack)
	}
}

// TestReliable180OnTheWire: the phone as UAS with an INVITE requiring
// 100rel: its 180 carries Require and RSeq and is retransmitted until the
// PRACK, a PRACK with a wrong RAck gets 481, the right one 200.
func TestReliable180OnTheWire(t *testing.T) {
	peer := newRawPeer(t, "127.0.10.4")
	phone := startPhone(t, Config{Name: "alice", Listen: "127.0.10.1:0"})
	to, from := phone.Addr(), peer.addr()
	inv := rawRequest(sip.INVITE, phone, from, "rel-1", "caller", "", 1, rawOffer(t, rtpSocket(t, "127.0.10.4")))
	inv.AppendHeader(sip.NewHeader("Require", "100rel"))
	peer.send(inv, to)
	r1 := peer.nextResponse(sip.INVITE, 180)
	r2 := peer.nextResponse(sip.INVITE, 180) // the retransmission
	rseq := r1.GetHeader("RSeq")
	if rseq == nil || !sipdialog.HasOptionTag(r1, "Require", "100rel") || r2.GetHeader("RSeq").Value() != rseq.Value() {
		t.Fatalf("reliable 180s:\n%s\n%s", r1, r2)
	}
	tag, _ := r1.To().Params.Get("tag")
	prack := func(cseq uint32, rack string) *sip.Response {
		t.Helper()
		req := rawRequest(sip.PRACK, phone, from, "rel-1", "caller", tag, cseq, nil)
		req.AppendHeader(sip.NewHeader("RAck", rack))
		peer.send(req, to)
		return peer.nextResponse(sip.PRACK, 0)
	}
	if res := prack(2, "999 1 INVITE"); res.StatusCode != 481 {
		t.Fatalf("PRACK with a wrong RSeq: %d", res.StatusCode)
	}
	if res := prack(3, "x y"); res.StatusCode != 400 {
		t.Fatalf("PRACK with a bad RAck: %d", res.StatusCode)
	}
	if res := prack(4, rseq.Value()+" 1 INVITE"); res.StatusCode != 200 {
		t.Fatalf("PRACK: %d %s", res.StatusCode, res.Reason)
	}
	st, _ := phone.CallStatus("")
	if len(st.Prack) != 2 || !strings.HasPrefix(st.Prack[1], "PRACK received") {
		t.Fatalf("100rel log %q", st.Prack)
	}
	// An UPDATE with an offer while the INVITE's offer is unanswered: 500.
	upd := rawRequest(sip.UPDATE, phone, from, "rel-1", "caller", tag, 5, rawOffer(t, rtpSocket(t, "127.0.10.4")))
	peer.send(upd, to)
	if res := peer.nextResponse(sip.UPDATE, 0); res.StatusCode != 500 || res.GetHeader("Retry-After") == nil {
		t.Fatalf("early UPDATE: %d\n%s", res.StatusCode, res)
	}
	if err := phone.Answer(""); err != nil {
		t.Fatal(err)
	}
	ok := peer.nextResponse(sip.INVITE, 200)
	peer.send(rawRequest(sip.ACK, phone, from, "rel-1", "caller", tag, 1, nil), to)
	waitCall(t, phone, "", StateConfirmed)
	_ = ok

	// UPDATE in the confirmed dialog: a new offer, answered in its 200,
	// and the phone's RTP moves to the new address.
	rtp2 := rtpSocket(t, "127.0.10.4")
	peer.send(rawRequest(sip.UPDATE, phone, from, "rel-1", "caller", tag, 6, rawOffer(t, rtp2)), to)
	res := peer.nextResponse(sip.UPDATE, 0)
	if res.StatusCode != 200 || len(res.Body()) == 0 {
		t.Fatalf("UPDATE: %d\n%s", res.StatusCode, res)
	}
	buf := make([]byte, 1500)
	rtp2.SetReadDeadline(deadline())
	if _, _, err := rtp2.ReadFromUDPAddrPort(buf); err != nil {
		t.Fatalf("no RTP to the UPDATE's address: %v", err)
	}
	// UPDATE without a body: a target refresh, 200.
	peer.send(rawRequest(sip.UPDATE, phone, from, "rel-1", "caller", tag, 7, nil), to)
	if res := peer.nextResponse(sip.UPDATE, 0); res.StatusCode != 200 {
		t.Fatalf("bodiless UPDATE: %d", res.StatusCode)
	}
}

// TestUpdateCommand: the update verb re-offers what our SDP says now;
// the peer's RTP follows an sdp_addr change without a re-INVITE.
func TestUpdateCommand(t *testing.T) {
	alice, bob := pair10(t, nil, nil)
	aRef, bRef := connect(t, alice, bob)
	ctx := testCtx(t)
	trap := rtpSocket(t, "127.0.10.1")
	if err := alice.Set("sdp_addr", trap.LocalAddr().String()); err != nil {
		t.Fatal(err)
	}
	if err := alice.Update(ctx, aRef); err != nil {
		t.Fatal(err)
	}
	if b, _ := bob.CallStatus(bRef); b.RemoteSDP != trap.LocalAddr().String() {
		t.Fatalf("bob's remote SDP %s after UPDATE, want %s", b.RemoteSDP, trap.LocalAddr())
	}
	buf := make([]byte, 1500)
	trap.SetReadDeadline(deadline())
	if _, src, err := trap.ReadFromUDPAddrPort(buf); err != nil || src.String() != mediaOf(t, bob, bRef).SendFrom {
		t.Fatalf("bob's RTP to the updated address: from %v, %v", src, err)
	}
	if err := alice.Update(ctx, "7"); !errors.Is(err, ErrNoSuchCall) {
		t.Fatalf("update of an unknown call: %v", err)
	}
}
