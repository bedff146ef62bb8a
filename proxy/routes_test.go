package proxy

import (
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/sip/location"
)

// A strict router before us put our Record-Route URI in the Request-URI
// and the real target in the last Route (RFC 3261 §16.4).
func TestStrictRoutingPreviousHop(t *testing.T) {
	_, px := startProxy(t, Config{Location: newMemLocation()})
	alice, bob := newPhone(t, "127.0.0.2"), newPhone(t, "127.0.0.3")
	target := "sip:bob@" + bob.addr.String()
	m := alice.newMsg("BYE", "sip:"+px.String(), "alice@"+testDomain, "bob@"+testDomain)
	m.toTag, m.contact = "dialog", ""
	m.routes = []string{"<" + target + ">"}
	alice.send(px, m)
	req, from := bob.request(sip.BYE)
	if req.Recipient.String() != target || req.Route() != nil {
		t.Errorf("Request-URI %s, Route %v; want %s and no Route", req.Recipient.String(), req.Route(), target)
	}
	bob.answer(req, from, 200, "OK", "dialog")
	mustCode(t, alice.final(sip.BYE), 200)
}

// Loose routing: after popping our own entry the next Route decides, and
// the Request-URI is left alone.
func TestLooseRouteToNextHop(t *testing.T) {
	_, px := startProxy(t, Config{Location: newMemLocation()})
	alice, next := newPhone(t, "127.0.0.2"), newPhone(t, "127.0.0.6")
	m := alice.newMsg("BYE", "sip:bob@192.0.2.99:5060", "alice@"+testDomain, "bob@"+testDomain)
	m.toTag, m.contact = "dialog", ""
	m.routes = []string{"<sip:" + px.String() + ";lr>", "<sip:" + next.addr.String() + ";lr>"}
	alice.send(px, m)
	req, from := next.request(sip.BYE)
	if req.Recipient.String() != "sip:bob@192.0.2.99:5060" {
		t.Errorf("Request-URI rewritten to %s", req.Recipient.String())
	}
	if rs := req.GetHeaders("Route"); len(rs) != 1 {
		t.Errorf("%d Route entries left, want 1 (the next hop's)", len(rs))
	}
	next.answer(req, from, 200, "OK", "dialog")
	mustCode(t, alice.final(sip.BYE), 200)
}

func TestRelayToggle(t *testing.T) {
	for _, relay := range []bool{false, true} {
		t.Run(map[bool]string{false: "off", true: "on"}[relay], func(t *testing.T) {
			_, px := startProxy(t, Config{Location: newMemLocation(), Relay: relay})
			alice, dave := newPhone(t, "127.0.0.2"), newPhone(t, "127.0.0.7")
			alice.send(px, alice.newMsg("MESSAGE", "sip:dave@"+dave.addr.String(), "alice@"+testDomain, "dave@elsewhere.test"))
			if !relay {
				mustCode(t, alice.final(sip.MESSAGE), 403)
				return
			}
			req, from := dave.request(sip.MESSAGE)
			dave.answer(req, from, 202, "Accepted", "d")
			mustCode(t, alice.final(sip.MESSAGE), 202)
		})
	}
}

// A binding registered through another proxy (an SBC) before us carries
// its Path: we drop our own entry and route through the rest.
func TestBindingPathRoutesThroughEarlierProxy(t *testing.T) {
	loc := newMemLocation("alice", "bob")
	_, px := startProxy(t, Config{Location: loc})
	alice, sbc := newPhone(t, "127.0.0.2"), newPhone(t, "127.0.0.8")
	contact := "sip:bob@192.168.2.50:5060"
	loc.mu.Lock()
	loc.users["bob"] = []location.Binding{{
		ContactURI: contact, Transport: "udp",
		Source: sbc.addr, // what we saw: the SBC
		Path:   []string{"sip:" + px.String() + ";lr;received=" + sbc.addr.String(), "<sip:" + sbc.addr.String() + ";lr>"},
	}}
	loc.mu.Unlock()
	alice.send(px, alice.newMsg("INVITE", "sip:bob@"+testDomain, "alice@"+testDomain, "bob@"+testDomain))
	req, from := sbc.request(sip.INVITE)
	if req.Recipient.String() != contact {
		t.Errorf("Request-URI %s, want %s", req.Recipient.String(), contact)
	}
	rs := req.GetHeaders("Route")
	if len(rs) != 1 || rs[0].(*sip.RouteHeader).Address.Port != int(sbc.addr.Port()) {
		t.Errorf("Route %v, want just the SBC", rs)
	}
	sbc.answer(req, from, 486, "Busy Here", "b")
	mustCode(t, alice.final(sip.INVITE), 486)
}
