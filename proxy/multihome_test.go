package proxy

import (
	"context"
	"net/netip"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/sip/sipnet"
)

// Two legs: phones reach the proxy on a "public" address, the callee is
// reached from the leg the kernel routes to it. The proxy record-routes
// both legs (RFC 5658) so in-dialog requests cross it the same way.
func TestTwoLegsDoubleRecordRoute(t *testing.T) {
	loc := newMemLocation("alice", "bob")
	var eps []*sipnet.Endpoint
	for _, ip := range []string{"127.0.0.1", "127.0.0.20"} { // core (kernel's choice for 127/8), public
		ep, err := sipnet.Listen(sipnet.Config{Listen: ip + ":0", Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		eps = append(eps, ep)
	}
	p, err := New(Config{Location: loc, Domain: testDomain, Logger: quietLogger()}, eps...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); p.Close() })
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	core, public := eps[0].Addr(), eps[1].Addr()

	alice, bob := newPhone(t, "127.0.0.2"), newPhone(t, "127.0.0.3")
	loc.bind("bob", "sip:bob@"+bob.addr.String(), bob.addr)
	inv := alice.newMsg("INVITE", "sip:bob@"+testDomain, "alice@"+testDomain, "bob@"+testDomain)
	alice.send(public, inv)
	req, from := bob.request(sip.INVITE)
	if from != core {
		t.Fatalf("INVITE left from %s, want the core leg %s", from, core)
	}
	rr := req.GetHeaders("Record-Route")
	if len(rr) != 2 {
		t.Fatalf("%d Record-Route entries, want 2", len(rr))
	}
	for i, want := range []netip.AddrPort{core, public} {
		u := rr[i].(*sip.RecordRouteHeader).Address
		if u.Host != want.Addr().String() || u.Port != int(want.Port()) {
			t.Errorf("Record-Route %d is %s, want %s", i, u.String(), want)
		}
	}
	bob.answer(req, from, 200, "OK", "bobtag")
	ok := alice.response(200, sip.INVITE)

	bye := inDialog(inv, ok, "BYE", 2)
	if dest := routeDest(t, bye); dest != public {
		t.Fatalf("caller's route set starts at %s, want the public leg %s", dest, public)
	}
	alice.send(public, bye)
	byeReq, byeFrom := bob.request(sip.BYE)
	if byeReq.Route() != nil {
		t.Errorf("both of our Route entries should be popped, left %s", byeReq.Route().Value())
	}
	bob.answer(byeReq, byeFrom, 200, "OK", "bobtag")
	mustCode(t, alice.final(sip.BYE), 200)
}
