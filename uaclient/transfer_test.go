package uaclient

import (
	"context"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/internal/siptest/platform"
	"github.com/siplab/siplab/proxy"
)

// lab10 is the lab's call path on 127.0.10.x: the real registrar (.5) and
// proxy (.6, Record-Route, 407 on INVITE) and three registered phones,
// alice (.1), bob (.2) and carol (.3), each answering after 1 ms.
func lab10(t *testing.T) (alice, bob, carol *Phone) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	core := platform.StartCore(t, ctx, "siplab.test", "alice a-pw\nbob b-pw\ncarol c-pw\n", "127.0.10.5", "127.0.10.6",
		proxy.Config{}, testLogger(t))
	mk := func(name, ip, pw string, hz float64) *Phone {
		p := startPhone(t, Config{Name: name, Password: pw, Domain: "siplab.test", Proxy: core.Proxy.String(),
			Listen: ip + ":0", ToneHz: hz, Settings: map[string]string{"auto_answer": "1ms"}})
		if err := p.Register(testCtx(t)); err != nil {
			t.Fatalf("%s: register: %v", name, err)
		}
		return p
	}
	return mk("alice", "127.0.10.1", "a-pw", 700), mk("bob", "127.0.10.2", "b-pw", 1100), mk("carol", "127.0.10.3", "c-pw", 1500)
}

// hears waits until p's call ref has taken in n audio packets of the tone
// of from.
func hears(t *testing.T, p *Phone, ref string, from *Phone) {
	t.Helper()
	eventually(t, p.Name()+" hears "+from.Name(), func() bool {
		st, err := p.CallStatus(ref)
		return err == nil && st.Media != nil && st.Media.Received.AudioPackets >= 25 && math.Abs(st.ToneHz-from.ToneHz()) < 30
	})
}

func waitTransfer(t *testing.T, p *Phone, ref, state string) *TransferStatus {
	t.Helper()
	var tr *TransferStatus
	err := p.wait(testCtx(t), func() bool {
		for _, c := range p.calls {
			if c.id == ref && c.transfer != nil && c.transfer.State == state {
				x := *c.transfer
				tr = &x
				return true
			}
		}
		return false
	})
	if err != nil {
		st, _ := p.CallStatus(ref)
		t.Fatalf("%s call %s: transfer never %s: %v (%+v)", p.Name(), ref, state, err, st.Transfer)
	}
	return tr
}

// TestBlindTransfer: alice calls bob; bob puts her on hold and transfers
// her to carol (REFER). Alice calls carol, reports 100 Trying ... 200 OK
// in NOTIFYs, and hangs up on bob; carol hears alice.
func TestBlindTransfer(t *testing.T) {
	alice, bob, carol := lab10(t)
	ctx := testCtx(t)
	aRef, bRef := connect(t, alice, bob)
	hears(t, alice, aRef, bob)
	if err := bob.Hold(ctx, bRef); err != nil {
		t.Fatal(err)
	}
	if err := bob.Transfer(ctx, bRef, "carol", ""); err != nil {
		t.Fatal(err)
	}
	bt := waitTransfer(t, bob, bRef, TransferSucceeded)
	if bt.Role != RoleTransferor || bt.ReferCode != 202 || bt.Target != "sip:carol@siplab.test" {
		t.Fatalf("bob's transfer %+v", bt)
	}
	if len(bt.Progress) < 2 || bt.Progress[0] != "SIP/2.0 100 Trying" || bt.Progress[len(bt.Progress)-1] != "SIP/2.0 200 OK" {
		t.Fatalf("NOTIFY progress %q, want 100 Trying ... 200 OK", bt.Progress)
	}
	// The transferee ends the old call.
	if b := waitCall(t, bob, bRef, StateTerminated); b.EndedBy != "remote" || b.EndReason != "BYE received" {
		t.Fatalf("bob's call ended by %s: %s", b.EndedBy, b.EndReason)
	}
	old := waitCall(t, alice, aRef, StateTerminated)
	if old.Transfer == nil || old.Transfer.Role != RoleTransferee || old.Transfer.State != TransferSucceeded || old.EndedBy != "local" {
		t.Fatalf("alice's old call %+v transfer %+v", old, old.Transfer)
	}
	newRef := old.Transfer.NewCall
	nc := waitCall(t, alice, newRef, StateConfirmed)
	if !strings.HasPrefix(nc.Peer, "sip:carol@") {
		t.Fatalf("alice's new call goes to %s", nc.Peer)
	}
	cRef := waitCall(t, carol, "", StateConfirmed).ID
	hears(t, carol, cRef, alice)
	hears(t, alice, newRef, carol)
	if !slices.Equal(old.Transfer.Progress, bt.Progress) {
		t.Errorf("alice sent %q, bob got %q", old.Transfer.Progress, bt.Progress)
	}
}

// TestTransferFails: the target rejects the new call; the transferor
// learns it from the final NOTIFY and the original call stays up.
func TestTransferFails(t *testing.T) {
	alice, bob, carol := lab10(t)
	ctx := testCtx(t)
	if err := carol.Set("auto_answer", "0"); err != nil {
		t.Fatal(err)
	}
	_, bRef := connect(t, alice, bob)
	if err := bob.Transfer(ctx, bRef, "carol", ""); err != nil {
		t.Fatal(err)
	}
	waitCall(t, carol, "", StateRinging)
	if err := carol.Reject("", 486); err != nil {
		t.Fatal(err)
	}
	bt := waitTransfer(t, bob, bRef, TransferFailed)
	if last := bt.Progress[len(bt.Progress)-1]; last != "SIP/2.0 486 Busy Here" {
		t.Fatalf("final NOTIFY %q", last)
	}
	if st, _ := bob.CallStatus(bRef); st.State != StateConfirmed {
		t.Fatalf("original call %s after a failed transfer", st.State)
	}
	// A transfer needs a target.
	if err := bob.Transfer(ctx, bRef, "", ""); err == nil {
		t.Fatal("transfer without a target accepted")
	}
}

// TestAttendedTransfer: alice calls bob; bob holds her and consults carol;
// bob transfers alice with Replaces for his call to carol. Alice's INVITE
// with Replaces takes over carol's call with bob: carol hears alice, and
// both of bob's calls end.
func TestAttendedTransfer(t *testing.T) {
	alice, bob, carol := lab10(t)
	ctx := testCtx(t)
	aRef, bA := connect(t, alice, bob)
	if err := bob.Hold(ctx, bA); err != nil {
		t.Fatal(err)
	}
	consult, err := bob.Call(ctx, "carol")
	if err != nil {
		t.Fatal(err)
	}
	bC := consult.ID()
	waitCall(t, bob, bC, StateConfirmed)
	cOld := waitCall(t, carol, "", StateConfirmed).ID
	hears(t, carol, cOld, bob)

	// Through the control API, naming only the consultation call: the
	// call transferred is the newest other confirmed one (alice's).
	st, err := serveControl(t, bob).Transfer(ctx, "", "", bC)
	if err != nil {
		t.Fatal(err)
	}
	if st.ID != bA || st.Transfer == nil || st.Transfer.State != TransferSucceeded {
		t.Fatalf("control transfer answered %+v (transfer %+v)", st, st.Transfer)
	}
	bt := waitTransfer(t, bob, bA, TransferSucceeded)
	if bt.Replaces == "" || !strings.HasPrefix(bt.Replaces, consult.CallID()+";") {
		t.Fatalf("Replaces %q does not name the consultation call %s", bt.Replaces, consult.CallID())
	}
	waitCall(t, bob, bA, StateTerminated)
	waitCall(t, bob, bC, StateTerminated)
	rep := waitTransfer(t, carol, cOld, TransferSucceeded)
	if rep.Role != RoleReplaced {
		t.Fatalf("carol's old call transfer %+v", rep)
	}
	if st := waitCall(t, carol, cOld, StateTerminated); st.EndedBy != "local" {
		t.Fatalf("carol's old call ended by %s (%s)", st.EndedBy, st.EndReason)
	}
	cNew := rep.NewCall
	if st := waitCall(t, carol, cNew, StateConfirmed); !strings.HasPrefix(st.Peer, "sip:alice@") {
		t.Fatalf("carol's new call is from %s", st.Peer)
	}
	hears(t, carol, cNew, alice)
	old := waitCall(t, alice, aRef, StateTerminated)
	hears(t, alice, old.Transfer.NewCall, carol)
}

// What the phone answers to REFER, NOTIFY and Replaces it cannot take.
func TestReferRefusals(t *testing.T) {
	peer := newRawPeer(t, "127.0.10.4")
	phone := startPhone(t, Config{Name: "alice", Listen: "127.0.10.1:0", Settings: map[string]string{"auto_answer": "1ms"}})
	to, from := phone.Addr(), peer.addr()
	peer.send(rawRequest(sip.INVITE, phone, from, "refer-1", "caller", "", 1, rawOffer(t, rtpSocket(t, "127.0.10.4"))), to)
	ok := peer.nextResponse(sip.INVITE, 200)
	tag, _ := ok.To().Params.Get("tag")
	peer.send(rawRequest(sip.ACK, phone, from, "refer-1", "caller", tag, 1, nil), to)
	waitCall(t, phone, "", StateConfirmed)

	with := func(req *sip.Request, hdrs ...string) *sip.Request {
		for i := 0; i+1 < len(hdrs); i += 2 {
			req.AppendHeader(sip.NewHeader(hdrs[i], hdrs[i+1]))
		}
		return req
	}
	seq := uint32(1)
	next := func() uint32 { seq++; return seq }
	tests := []struct {
		name     string
		req      *sip.Request
		wantCode int
	}{
		{"REFER out of dialog", with(rawRequest(sip.REFER, phone, from, "r-1", "t1", "", 1, nil), "Refer-To", "<sip:bob@127.0.10.4>"), 403},
		{"REFER unknown dialog", with(rawRequest(sip.REFER, phone, from, "r-2", "t1", "t2", 1, nil), "Refer-To", "<sip:bob@127.0.10.4>"), 481},
		{"REFER without Refer-To", rawRequest(sip.REFER, phone, from, "refer-1", "caller", tag, next(), nil), 400},
		{"REFER two Refer-To", with(rawRequest(sip.REFER, phone, from, "refer-1", "caller", tag, next(), nil), "Refer-To", "<sip:a@h>", "Refer-To", "<sip:b@h>"), 400},
		{"REFER tel: target", with(rawRequest(sip.REFER, phone, from, "refer-1", "caller", tag, next(), nil), "Refer-To", "<tel:+15551234>"), 416},
		{"REFER bad Replaces", with(rawRequest(sip.REFER, phone, from, "refer-1", "caller", tag, next(), nil), "Refer-To", "<sip:b@h?Replaces=abc>"), 400},
		{"NOTIFY without Event", rawRequest(sip.NOTIFY, phone, from, "refer-1", "caller", tag, next(), nil), 400},
		{"NOTIFY refer without our REFER", with(rawRequest(sip.NOTIFY, phone, from, "refer-1", "caller", tag, next(), nil), "Event", "refer", "Subscription-State", "active"), 481},
		{"NOTIFY unknown subscription", with(rawRequest(sip.NOTIFY, phone, from, "n-1", "t1", "t2", 1, nil), "Event", "dialog", "Subscription-State", "active"), 481},
		{"INVITE Replaces unknown dialog", with(rawRequest(sip.INVITE, phone, from, "rep-1", "t1", "", 1, nil), "Replaces", "nope;to-tag=a;from-tag=b"), 481},
		{"INVITE Replaces without tags", with(rawRequest(sip.INVITE, phone, from, "rep-2", "t1", "", 1, nil), "Replaces", "refer-1"), 400},
		{"INVITE Require unknown", with(rawRequest(sip.INVITE, phone, from, "rep-3", "t1", "", 1, nil), "Require", "foo"), 420},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			peer.send(tt.req, to)
			res := peer.nextResponse(tt.req.Method, 0)
			if res.StatusCode != tt.wantCode {
				t.Fatalf("got %d %s, want %d\n%s", res.StatusCode, res.Reason, tt.wantCode, res)
			}
			if tt.req.Method == sip.INVITE {
				ack := rawRequest(sip.ACK, phone, from, res.CallID().Value(), "t1", "", res.CSeq().SeqNo, nil)
				ack.ReplaceHeader(sip.HeaderClone(res.To()))
				peer.send(ack, to)
			}
		})
	}
	// The call survived all of it.
	if st, _ := phone.CallStatus(""); st.State != StateConfirmed || st.CallID != "refer-1" {
		t.Fatalf("call %s %s", st.CallID, st.State)
	}
}
