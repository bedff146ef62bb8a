package proxy

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/internal/torturetest"
)

// relayWait is how long the relay target listens after the refusal: the
// decision is taken before anything is sent, so a forward would already
// be on its way.
const relayWait = 300 * time.Millisecond

// A stranger (no credentials, another domain) preloads a Route to a host
// that is neither the proxy nor a configured next hop: 403 naming it, and
// the target hears nothing. The reproduction: OPTIONS, MESSAGE and
// INVITE from fluffy@example.com to someone@example.net, and the RFC 4475
// message mpart01, which carries such a Route.
func TestPreloadedRouteFromStrangerDenied(t *testing.T) {
	loc := newMemLocation("alice", "bob")
	p, px := startProxy(t, Config{Location: loc, Auth: newAuth(t), AuthInvites: true, AuthOther: true})
	victim := newPhone(t, "127.0.0.75")
	route := "<sip:" + victim.addr.String() + ";lr>"
	wantReason := "Relaying Denied: Route to " + victim.addr.String() + " not allowed"

	tests := []struct {
		name string
		edit func(*msg)
	}{
		{"OPTIONS", func(m *msg) { m.method = "OPTIONS" }},
		{"MESSAGE", func(m *msg) { m.method = "MESSAGE" }},
		{"INVITE", func(m *msg) {}},
		// Our own domain in the Request-URI does not make the Route ours.
		{"INVITE for our user", func(m *msg) { m.ruri, m.to = "sip:bob@"+testDomain, "bob@"+testDomain }},
		// Our own entry first does not launder the next one.
		{"behind our own Route", func(m *msg) { m.routes = []string{"<sip:" + px.String() + ";lr>", route} }},
		// A name is refused without asking DNS for it.
		{"host name", func(m *msg) { m.routes = []string{"<sip:relay.example.net;lr>"} }},
		// An ACK has no response: it is dropped, not forwarded.
		{"ACK", func(m *msg) { m.method = "ACK" }},
		// A To tag anybody can write is no dialog of ours: only a Route
		// naming us (our Record-Route) makes it one.
		{"forged To tag", func(m *msg) { m.method, m.toTag = "BYE", "forged" }},
		{"forged To tag, no Route", func(m *msg) {
			m.method, m.toTag, m.routes = "BYE", "forged", nil
			m.ruri = "sip:someone@" + victim.addr.String()
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			victim := victim.on(t)
			ph := newPhone(t, "127.0.0.2")
			m := ph.newMsg("INVITE", "sip:someone@example.net", "fluffy@example.com", "someone@example.net")
			m.routes = []string{route}
			tc.edit(&m)
			ph.send(px, m)
			if m.method != "ACK" {
				res := ph.final(sip.RequestMethod(m.method))
				mustCode(t, res, 403)
				want := wantReason
				switch tc.name {
				case "host name":
					want = "Relaying Denied: Route to relay.example.net not allowed"
				case "forged To tag", "forged To tag, no Route":
					want = "Relaying Denied: in-dialog request to " + victim.addr.String() + " not routed by us"
				}
				if res.Reason != want {
					t.Errorf("reason %q, want %q", res.Reason, want)
				}
			}
			victim.silent(relayWait, func(sip.Message) bool { return true }, "a relayed request")
		})
	}
	if got := p.Stats().RelayDenied; got < uint64(len(tests)) {
		t.Errorf("relay_denied %d, want ≥ %d", got, len(tests))
	}

	t.Run("mpart01", func(t *testing.T) {
		raw, err := os.ReadFile(torturetest.Dir() + "/valid/mpart01.dat")
		if err != nil {
			t.Fatal(err)
		}
		ph := newPhone(t, "127.0.0.2")
		// The corpus writes fixed addresses: point its Via at our socket
		// and its Route at the listening victim.
		msg := strings.Replace(string(raw), "127.0.0.1:5070", ph.addr.String(), 1)
		msg = strings.Replace(msg, "127.0.0.1:5080", victim.addr.String(), 1)
		ph.send(px, msg)
		res := ph.final(sip.MESSAGE)
		mustCode(t, res, 403)
		if !strings.HasPrefix(res.Reason, "Relaying Denied") {
			t.Errorf("reason %q", res.Reason)
		}
		victim.on(t).silent(relayWait, func(sip.Message) bool { return true }, "a relayed request")
	})
}

// What must keep working: in-dialog requests, our authenticated users,
// Routes to a configured next hop, and -relay.
func TestPreloadedRouteAllowed(t *testing.T) {
	loc := newMemLocation("alice", "bob")
	target := newPhone(t, "127.0.0.76")
	pbx := newPhone(t, "127.0.0.77")
	_, px := startProxy(t, Config{Location: loc, Auth: newAuth(t), AuthInvites: true,
		Routes: []Route{{"pbx.siplab.test", pbx.addr}}})
	_, relayPx := startProxy(t, Config{Location: loc, Relay: true})
	stranger := func(ph *phone) msg {
		m := ph.newMsg("MESSAGE", "sip:someone@example.net", "fluffy@example.com", "someone@example.net")
		m.routes = []string{"<sip:" + target.addr.String() + ";lr>"}
		return m
	}
	t.Run("in-dialog", func(t *testing.T) {
		ph := newPhone(t, "127.0.0.2")
		m := stranger(ph)
		// Our Record-Route first, as every dialog we are on writes it.
		m.method, m.toTag = "BYE", "dialog"
		m.routes = append([]string{"<sip:" + px.String() + ";lr>"}, m.routes...)
		ph.send(px, m)
		req, from := target.on(t).request(sip.BYE)
		target.answer(req, from, 200, "OK", "dialog")
		mustCode(t, ph.final(sip.BYE), 200)
	})
	t.Run("configured next hop", func(t *testing.T) {
		ph := newPhone(t, "127.0.0.2")
		m := stranger(ph)
		m.routes = []string{"<sip:" + pbx.addr.String() + ";lr>"}
		ph.send(px, m)
		req, from := pbx.on(t).request(sip.MESSAGE)
		pbx.answer(req, from, 202, "Accepted", "p")
		mustCode(t, ph.final(sip.MESSAGE), 202)
	})
	t.Run("relay on", func(t *testing.T) {
		ph := newPhone(t, "127.0.0.2")
		ph.send(relayPx, stranger(ph))
		req, from := target.on(t).request(sip.MESSAGE)
		target.answer(req, from, 202, "Accepted", "r")
		mustCode(t, ph.final(sip.MESSAGE), 202)
	})
	t.Run("authenticated own user", func(t *testing.T) {
		ph := newPhone(t, "127.0.0.2")
		ruri := "sip:someone@example.net"
		m := ph.newMsg("INVITE", ruri, "alice@"+testDomain, "someone@example.net")
		m.routes = []string{"<sip:" + target.addr.String() + ";lr>"}
		ph.send(px, m)
		chal := ph.final(sip.INVITE)
		mustCode(t, chal, 407)
		m.cseq++
		m.branch = sip.GenerateBranchN(12)
		m.extra = []string{credentials(t, chal, "INVITE", ruri, "alice", "alicepw")}
		ph.send(px, m)
		req, from := target.on(t).request(sip.INVITE)
		target.answer(req, from, 486, "Busy Here", "a")
		mustCode(t, ph.final(sip.INVITE), 486)
	})
}
