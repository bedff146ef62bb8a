package proxy

import (
	"testing"

	"github.com/emiago/sipgo/sip"
)

// BenchmarkCallCycle: one INVITE/200/ACK/BYE/200 call through the proxy
// on loopback, phones on raw sockets.
func BenchmarkCallCycle(b *testing.B) {
	loc := newMemLocation("alice", "bob")
	_, px := startProxy(b, Config{Location: loc})
	alice, bob := newPhone(b, "127.0.0.2"), newPhone(b, "127.0.0.3")
	loc.bind("bob", "sip:bob@"+bob.addr.String(), bob.addr)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		inv := alice.newMsg("INVITE", "sip:bob@"+testDomain, "alice@"+testDomain, "bob@"+testDomain)
		alice.send(px, inv)
		req, from := bob.request(sip.INVITE)
		bob.answer(req, from, 200, "OK", "bobtag")
		ok := alice.response(200, sip.INVITE)
		ack := ackFor(inv, ok)
		alice.send(px, ack)
		bob.request(sip.ACK)
		bye := inDialog(inv, ok, "BYE", 2)
		alice.send(px, bye)
		byeReq, byeFrom := bob.request(sip.BYE)
		bob.answer(byeReq, byeFrom, 200, "OK", "bobtag")
		alice.response(200, sip.BYE)
	}
}
