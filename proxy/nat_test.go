package proxy

import (
	"fmt"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// The phone sends from socket "src" but writes socket "via"'s port in its
// Via, as a phone behind NAT writes its private port. Where the answer
// lands is the lesson.
func TestRPortToggle(t *testing.T) {
	tests := []struct {
		mode      string
		rportSent bool
		wantAtSrc bool
	}{
		{RPortHonour, true, true},   // RFC 3581: the fix
		{RPortIgnore, false, false}, // the lost-responses bug
		{RPortIgnore, true, true},   // the phone's fix: rport asked for is honoured
		{RPortHonour, false, false}, // RFC 3261 §18.2.2: source IP, Via port
		{RPortForce, false, true},   // force_rport for phones that never ask
	}
	loc := newMemLocation("alice")
	p, px := startProxy(t, Config{Location: loc})
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s/rport=%v", tc.mode, tc.rportSent), func(t *testing.T) {
			if _, err := p.Set(SettingRPort, tc.mode); err != nil {
				t.Fatal(err)
			}
			src, via := newPhone(t, "127.0.0.2"), newPhone(t, "127.0.0.2")
			m := src.newMsg("OPTIONS", "sip:nobody@"+testDomain, "alice@"+testDomain, "nobody@"+testDomain)
			m.sentBy, m.rport = via.addr.String(), tc.rportSent
			src.send(px, m)
			got, silent := src, via
			if !tc.wantAtSrc {
				got, silent = via, src
			}
			mustCode(t, got.final(sip.OPTIONS), 404)
			silent.silent(200*time.Millisecond, anyResponse, "the response")
		})
	}
}

// With received on, the caller reads its public address in responses;
// off, it gets its Via back as written (even with rport, which sipgo
// alone would fill in).
func TestReceivedToggle(t *testing.T) {
	loc := newMemLocation("alice")
	p, px := startProxy(t, Config{Location: loc})
	tests := []struct {
		on, rport bool
	}{{true, false}, {true, true}, {false, true}, {false, false}}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("received=%v/rport=%v", tc.on, tc.rport), func(t *testing.T) {
			if _, err := p.Update(func(s *Settings) { s.Received, s.RPort = tc.on, RPortForce }); err != nil {
				t.Fatal(err)
			}
			ph := newPhone(t, "127.0.0.2")
			m := ph.newMsg("OPTIONS", "sip:nobody@"+testDomain, "alice@"+testDomain, "nobody@"+testDomain)
			m.sentBy, m.rport = "192.168.1.50:5060", tc.rport // what a NATed phone writes
			ph.send(px, m)
			via := ph.final(sip.OPTIONS).Via()
			recv, hasRecv := via.Params.Get("received")
			rport, _ := via.Params.Get("rport")
			switch {
			case tc.on && recv != "127.0.0.2":
				t.Errorf("Via %s, want received=127.0.0.2", via.Value())
			case tc.on && tc.rport && rport != fmt.Sprint(ph.addr.Port()):
				t.Errorf("Via %s, want rport=%d", via.Value(), ph.addr.Port())
			case !tc.on && (hasRecv || rport != ""):
				t.Errorf("received off: Via %s was rewritten", via.Value())
			}
		})
	}
}

// Bob registered from behind NAT: his Contact names the private address
// (socket "written"), his REGISTER came from the public one ("seen").
// With contact_fixup on the proxy sends requests for bob where his
// REGISTER came from, off to the Contact as written: an initial INVITE,
// and the ghost-call lesson, the caller's BYE in a call bob answered,
// addressed to his Contact as written (off: into the void).
func TestContactFixupToggle(t *testing.T) {
	loc := newMemLocation("alice", "bob")
	p, px := startProxy(t, Config{Location: loc})
	written, seen := newPhone(t, "127.0.0.4"), newPhone(t, "127.0.0.3")
	contact := "sip:bob@" + written.addr.String()
	loc.bind("bob", contact, seen.addr)
	for _, tc := range []struct {
		method   sip.RequestMethod
		inDialog bool
		code     int
		reason   string
		tag      string // bob's To tag
	}{
		{sip.INVITE, false, 486, "Busy Here", "b"},
		{sip.BYE, true, 200, "OK", "bobtag"},
	} {
		for _, fix := range []string{"on", "off"} {
			t.Run(string(tc.method)+" "+fix, func(t *testing.T) {
				if _, err := p.Set(SettingContactFixup, fix); err != nil {
					t.Fatal(err)
				}
				alice := newPhone(t, "127.0.0.2")
				m := alice.newMsg(string(tc.method), "sip:bob@"+testDomain, "alice@"+testDomain, "bob@"+testDomain)
				if tc.inDialog {
					m.ruri, m.toTag, m.contact = contact, tc.tag, ""
					m.routes = []string{"<sip:" + px.String() + ";lr>"}
				}
				alice.send(px, m)
				got, other := seen.on(t), written.on(t)
				if fix == "off" {
					got, other = written.on(t), seen.on(t)
				}
				req, from := got.request(tc.method)
				if req.Recipient.String() != contact {
					t.Errorf("Request-URI %s, want the Contact as written %s", req.Recipient.String(), contact)
				}
				got.answer(req, from, tc.code, tc.reason, tc.tag)
				mustCode(t, alice.final(tc.method), tc.code)
				other.silent(100*time.Millisecond, isRequest(tc.method), "the "+string(tc.method))
			})
		}
	}
}

func TestRegisterForwardedWithPath(t *testing.T) {
	registrar := newPhone(t, "127.0.0.5")
	loc := newMemLocation("alice")
	_, px := startProxy(t, Config{Location: loc, Registrar: registrar.addr.String()})
	alice := newPhone(t, "127.0.0.2")
	m := alice.newMsg("REGISTER", "sip:"+testDomain, "alice@"+testDomain, "alice@"+testDomain)
	m.extra = []string{"Expires: 300"}
	alice.send(px, m)

	req, from := registrar.request(sip.REGISTER)
	want := fmt.Sprintf("<sip:%s;lr;received=%s;rtransport=udp;nat=no>", px, alice.addr)
	if h := req.GetHeader("Path"); h == nil || h.Value() != want {
		t.Fatalf("Path %v, want %s", h, want)
	}
	if v := req.Via(); v.SentBy() != px.String() {
		t.Errorf("top Via %s, want the proxy", v.SentBy())
	}
	if mf := req.MaxForwards(); mf == nil || mf.Val() != 69 {
		t.Errorf("Max-Forwards %v, want 69", mf)
	}
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	sip.CopyHeaders("Contact", req, res)
	registrar.send(from, res)
	ok := alice.final(sip.REGISTER)
	mustCode(t, ok, 200)
	if n := len(ok.GetHeaders("Via")); n != 1 {
		t.Errorf("200 reached the phone with %d Vias", n)
	}
}

func TestRegisterWithoutRegistrar(t *testing.T) {
	_, px := startProxy(t, Config{Location: newMemLocation()})
	alice := newPhone(t, "127.0.0.2")
	alice.send(px, alice.newMsg("REGISTER", "sip:"+testDomain, "alice@"+testDomain, "alice@"+testDomain))
	mustCode(t, alice.final(sip.REGISTER), 503)
}

// A phone with the proxy as outbound proxy preloads a Route to it; the
// REGISTER still reaches the registrar for the domain.
func TestRegisterThroughOutboundProxyRoute(t *testing.T) {
	registrar := newPhone(t, "127.0.0.5")
	_, px := startProxy(t, Config{Location: newMemLocation(), Registrar: registrar.addr.String()})
	alice := newPhone(t, "127.0.0.2")
	m := alice.newMsg("REGISTER", "sip:"+testDomain, "alice@"+testDomain, "alice@"+testDomain)
	m.routes = []string{"<sip:" + px.String() + ";lr>"}
	alice.send(px, m)
	req, _ := registrar.request(sip.REGISTER)
	if req.Recipient.String() != "sip:"+testDomain || req.Route() != nil {
		t.Errorf("registrar got Request-URI %s, Route %v", req.Recipient.String(), req.Route())
	}
}
