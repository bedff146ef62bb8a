package proxy

import (
	"context"
	"net/netip"
	"testing"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"

	"github.com/siplab/siplab/registrar"
)

// startRegistrar runs the real registrar on loopback, trusting the
// proxy's Path received parameter.
func startRegistrar(t testing.TB) (*registrar.Registrar, netip.AddrPort) {
	t.Helper()
	return startRegistrarAt(t, nil)
}

// register runs a REGISTER with digest through the proxy, from ph's
// socket with the Contact a NATed phone would write.
func register(t testing.TB, ph *phone, px netip.AddrPort, user, pass, contact string) *sip.Response {
	t.Helper()
	return registerVia(t, ph, px, user, pass, contact, "")
}

// registerVia is register with the Via sent-by written as given (a NATed
// phone writes its private address); empty means ph's own address.
func registerVia(t testing.TB, ph *phone, px netip.AddrPort, user, pass, contact, sentBy string) *sip.Response {
	t.Helper()
	m := ph.newMsg("REGISTER", "sip:"+testDomain, user+"@"+testDomain, user+"@"+testDomain)
	m.contact = contact
	if sentBy != "" {
		m.sentBy = sentBy
	}
	m.extra = []string{"Expires: 300"}
	ph.send(px, m)
	chal := ph.final(sip.REGISTER)
	mustCode(t, chal, 401)
	ok := withDigest(t, ph, px, m, chal, user, pass)
	mustCode(t, ok, 200)
	return ok
}

// withDigest answers chal, a 401 to the REGISTER m that ph sent, by
// sending m again with user's credentials; it returns the final response.
func withDigest(t testing.TB, ph *phone, px netip.AddrPort, m msg, chal *sip.Response, user, pass string) *sip.Response {
	t.Helper()
	c, err := digest.ParseChallenge(chal.GetHeader("WWW-Authenticate").Value())
	if err != nil {
		t.Fatal(err)
	}
	cred, err := digest.Digest(c, digest.Options{Method: "REGISTER", URI: "sip:" + testDomain, Username: user, Password: pass, Count: 1})
	if err != nil {
		t.Fatal(err)
	}
	m.cseq++
	m.branch = sip.GenerateBranchN(12)
	m.extra = append(m.extra, "Authorization: "+cred.String())
	ph.send(px, m)
	return ph.final(sip.REGISTER)
}

// The whole NAT lesson against the real registrar: bob registers through
// the proxy writing a Contact that is not where he sends from; the
// registrar believes the proxy's Path received; the proxy then reaches
// bob at the address seen on the wire, or at the written one when
// contact_fixup is off.
func TestRealRegistrarContactFixup(t *testing.T) {
	reg, regAddr := startRegistrar(t)
	p, px := startProxy(t, Config{Location: reg, Registrar: regAddr.String()})
	written, seen := newPhone(t, "127.0.0.4"), newPhone(t, "127.0.0.3")
	contact := "sip:bob@" + written.addr.String()
	register(t, seen, px, "bob", "bobpw", contact)

	bs, err := reg.Lookup(context.Background(), "sip:bob@"+testDomain)
	if err != nil || len(bs) != 1 {
		t.Fatalf("bindings %v, err %v", bs, err)
	}
	if bs[0].Source != seen.addr {
		t.Fatalf("registrar stored source %s, want the phone's %s (from the proxy's Path)", bs[0].Source, seen.addr)
	}

	for _, fix := range []string{"on", "off"} {
		t.Run("contact_fixup="+fix, func(t *testing.T) {
			if _, err := p.Set(SettingContactFixup, fix); err != nil {
				t.Fatal(err)
			}
			alice := newPhone(t, "127.0.0.2")
			alice.send(px, alice.newMsg("INVITE", "sip:bob@"+testDomain, "carol@pstn.test", "bob@"+testDomain))
			got := seen.on(t)
			if fix == "off" {
				got = written.on(t)
			}
			req, from := got.request(sip.INVITE)
			if req.Recipient.String() != contact {
				t.Errorf("Request-URI %s, want %s", req.Recipient.String(), contact)
			}
			if req.Route() != nil {
				t.Errorf("our own Path entry was pushed as Route: %s", req.Route().Value())
			}
			got.answer(req, from, 486, "Busy Here", "b")
			mustCode(t, alice.final(sip.INVITE), 486)
		})
	}
}

// A phone on TCP is reached over the connection it registered on: the
// Path says rtransport=tcp, the registrar stores it, and the proxy reuses
// the connection instead of dialling the private Contact.
func TestRealRegistrarTCPPhone(t *testing.T) {
	reg, regAddr := startRegistrar(t)
	_, px := startProxy(t, Config{Location: reg, Registrar: regAddr.String()})
	bob := newTCPPhone(t, "127.0.0.3", px)
	contact := "sip:bob@192.0.2.50:5060;transport=tcp" // private, unreachable
	register(t, bob, px, "bob", "bobpw", contact)
	bs, err := reg.Lookup(context.Background(), "sip:bob@"+testDomain)
	if err != nil || len(bs) != 1 || bs[0].Transport != "tcp" || bs[0].Source != bob.addr {
		t.Fatalf("bindings %+v, err %v; want source %s over tcp", bs, err, bob.addr)
	}
	alice := newPhone(t, "127.0.0.2")
	for call := 0; call < 2; call++ { // the connection outlives a call
		alice.send(px, alice.newMsg("INVITE", "sip:bob@"+testDomain, "carol@pstn.test", "bob@"+testDomain))
		req, from := bob.request(sip.INVITE)
		if v := req.Via(); v.Transport != "TCP" {
			t.Errorf("INVITE Via transport %s, want TCP", v.Transport)
		}
		bob.answer(req, from, 486, "Busy Here", "b")
		mustCode(t, alice.final(sip.INVITE), 486)
	}
}
