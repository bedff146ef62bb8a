package proxy

import (
	"testing"

	"github.com/emiago/sipgo/sip"
)

func TestCallThroughProxy(t *testing.T) {
	loc := newMemLocation("alice", "bob")
	p, px := startProxy(t, Config{Location: loc})
	alice := newPhone(t, "127.0.0.2")
	bob := newPhone(t, "127.0.0.3")
	contact := "sip:bob@" + bob.addr.String()
	loc.bind("bob", contact, bob.addr)

	inv := alice.newMsg("INVITE", "sip:bob@"+testDomain, "alice@"+testDomain, "bob@"+testDomain)
	alice.send(px, inv)
	alice.response(100, sip.INVITE)

	req, from := bob.request(sip.INVITE)
	if from != px {
		t.Fatalf("INVITE came from %s, want the proxy %s", from, px)
	}
	if got := req.Recipient.String(); got != contact {
		t.Errorf("Request-URI %q, want the contact %q", got, contact)
	}
	if mf := req.MaxForwards(); mf == nil || mf.Val() != 69 {
		t.Errorf("Max-Forwards %v, want 69", mf)
	}
	vias := req.GetHeaders("Via")
	if len(vias) != 2 {
		t.Fatalf("%d Via headers, want 2", len(vias))
	}
	top := vias[0].(*sip.ViaHeader)
	if top.SentBy() != px.String() {
		t.Errorf("top Via sent-by %s, want %s", top.SentBy(), px)
	}
	if recv, _ := vias[1].(*sip.ViaHeader).Params.Get("received"); recv != alice.addr.Addr().String() {
		t.Errorf("caller Via received=%q, want %s", recv, alice.addr.Addr())
	}
	rr := req.RecordRoute()
	if rr == nil || rr.Address.Host != px.Addr().String() || rr.Address.Port != int(px.Port()) || !rr.Address.UriParams.Has("lr") {
		t.Fatalf("Record-Route %v, want <sip:%s;lr>", rr, px)
	}

	bob.answer(req, from, 180, "Ringing", "bobtag")
	alice.response(180, sip.INVITE)
	bob.answer(req, from, 200, "OK", "bobtag")
	ok := alice.response(200, sip.INVITE)
	if n := len(ok.GetHeaders("Via")); n != 1 {
		t.Errorf("200 reached the caller with %d Via headers, want 1", n)
	}

	ack := ackFor(inv, ok)
	if dest := routeDest(t, ack); dest != px {
		t.Fatalf("caller's route set leads to %s, want the proxy %s", dest, px)
	}
	alice.send(px, ack)
	gotAck, _ := bob.request(sip.ACK)
	if gotAck.Recipient.String() != contact || gotAck.Route() != nil {
		t.Errorf("ACK at callee: Request-URI %s, Route %v; want the contact and no Route", gotAck.Recipient.String(), gotAck.Route())
	}

	bye := inDialog(inv, ok, "BYE", 2)
	alice.send(routeDest(t, bye), bye)
	byeReq, byeFrom := bob.request(sip.BYE)
	if v := byeReq.Via(); v.SentBy() != px.String() {
		t.Errorf("BYE did not come through the proxy: top Via %s", v.SentBy())
	}
	bob.answer(byeReq, byeFrom, 200, "OK", "bobtag")
	mustCode(t, alice.final(sip.BYE), 200)

	st := p.Stats()
	if st.Requests["INVITE"] != 1 || st.Requests["ACK"] != 1 || st.Requests["BYE"] != 1 {
		t.Errorf("request counters %v", st.Requests)
	}
	if st.Responses["2xx"] < 2 {
		t.Errorf("response counters %v", st.Responses)
	}
}
