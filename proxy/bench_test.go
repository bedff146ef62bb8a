package proxy

import (
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/sip/location"
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
	authCalls(b, alice, bob, px)
}

// authCalls runs b.N of BenchmarkCallCycleAuth's calls from alice to bob
// (who must be reachable as sip:bob@testDomain) through px.
func authCalls(b *testing.B, alice, bob *phone, px netip.AddrPort) {
	ruri := "sip:bob@" + testDomain
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU(b)
	defer func() { b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op") }()
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

// BenchmarkCallCycleAuthRegistrar is BenchmarkCallCycleAuth against the
// real registrar behind its HTTP location API on loopback, as deployed
// (bob registered through the proxy): "http" asks the registrar once per
// call (location.HTTPClient, -location-watch off), "cache" answers from
// the cache its watch stream feeds (-location-watch on). The registrar's
// side of the HTTP lookups runs in this process too, so it is counted.
func BenchmarkCallCycleAuthRegistrar(b *testing.B) {
	for _, mode := range []string{"http", "cache"} {
		b.Run(mode, func(b *testing.B) {
			reg, regAddr := startRegistrar(b)
			l := startLocationHTTP(b, reg)
			var loc location.Service = &location.HTTPClient{BaseURL: l.srv.URL}
			if mode == "cache" {
				c := startCache(b, l, time.Now)
				defer func() {
					if st := c.Status(); st.Direct > 1 {
						b.Errorf("%d direct lookups, want 1 (the first call after the REGISTER)", st.Direct)
					}
				}()
				loc = c
			}
			_, px := startProxy(b, Config{Location: loc, Registrar: regAddr.String(), Auth: newAuth(b), AuthInvites: true})
			alice, bob := newPhone(b, "127.0.0.2"), newPhone(b, "127.0.0.3")
			register(b, bob, px, "bob", "bobpw", "sip:bob@"+bob.addr.String())
			if c, ok := loc.(*location.Cache); ok {
				waitCaught(b, c, reg)
			}
			authCalls(b, alice, bob, px)
		})
	}
}

// processCPU is the CPU time (user + system) the whole test process has
// used: per call it is what bench/sidebyside.sh measures from /proc, with
// the phones' work added. ns/op is wall time, mostly loopback latency.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
