package proxy

import (
	"net/netip"
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
		answeredCall(alice, bob, px, inv)
	}
}

// answeredCall sends inv through the proxy, has bob answer 200, ACKs it
// and hangs up: INVITE, 200, ACK, BYE, 200.
func answeredCall(alice, bob *phone, px netip.AddrPort, inv msg) {
	alice.send(px, inv)
	req, from := bob.request(sip.INVITE)
	bob.answer(req, from, 200, "OK", "bobtag")
	ok := alice.response(200, sip.INVITE)
	alice.send(px, ackFor(inv, ok))
	bob.request(sip.ACK)
	alice.send(px, inDialog(inv, ok, "BYE", inv.cseq+1))
	byeReq, byeFrom := bob.request(sip.BYE)
	bob.answer(byeReq, byeFrom, 200, "OK", "bobtag")
	alice.response(200, sip.BYE)
}

// BenchmarkCallCycleAuth: the bench's call through the proxy with proxy
// authentication (bench/sipp/uac.xml): INVITE, 407, ACK, INVITE with
// credentials, 100, 200, ACK, BYE, 200 — 9 messages in, 9 out at the
// proxy. Allocations and CPU include the two test phones' own parsing;
// profile with -cpuprofile/-memprofile and ignore newPhone, credentials
// and msg.String to see the proxy alone (bench/README.md).
func BenchmarkCallCycleAuth(b *testing.B) {
	loc := newMemLocation("alice", "bob")
	_, px := startProxy(b, Config{Location: loc, Auth: newAuth(b), AuthInvites: true})
	alice, bob := newPhone(b, "127.0.0.2"), newPhone(b, "127.0.0.3")
	loc.bind("bob", "sip:bob@"+bob.addr.String(), bob.addr)
	ruri := "sip:bob@" + testDomain
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		inv := alice.newMsg("INVITE", ruri, "alice@"+testDomain, "bob@"+testDomain)
		alice.send(px, inv)
		chal := alice.final(sip.INVITE)
		if chal.StatusCode != 407 {
			b.Fatalf("got %d, want 407", chal.StatusCode)
		}
		ack := inv
		ack.method = "ACK"
		ack.toTag, _ = chal.To().Params.Get("tag")
		alice.send(px, ack)
		inv.cseq++
		inv.branch = sip.GenerateBranchN(12)
		inv.extra = []string{credentials(b, chal, "INVITE", ruri, "alice", "alicepw")}
		answeredCall(alice, bob, px, inv)
	}
}
