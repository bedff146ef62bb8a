package proxy

import (
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/internal/siptest"
)

// waitLinger waits until the proxy keeps want of finished transactions:
// their sipgo transactions are then ended.
func waitLinger(t testing.TB, p *Proxy, want LingerStatus) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		got := p.Stats().Lingering
		if got == want && p.txl.Held() == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("lingering %+v with %d transactions held, want %+v and none", got, p.txl.Held(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestFinishedTransactionsLinger: once a call is answered and hung up, the
// proxy holds none of its transactions, and what RFC 3261/6026 still ask
// of them for 64*T1 is done from what it kept: a retransmitted INVITE is
// absorbed, a late CANCEL gets 200, a retransmitted BYE gets the same 200
// again, a repeated 2xx is relayed to the caller, and a repeated 200 to
// the BYE goes nowhere. Nothing reaches the callee twice.
func TestFinishedTransactionsLinger(t *testing.T) {
	loc := newMemLocation("alice", "bob")
	p, px := startProxy(t, Config{Location: loc})
	alice, bob := newPhone(t, "127.0.0.2"), newPhone(t, "127.0.0.3")
	loc.bind("bob", "sip:bob@"+bob.addr.String(), bob.addr)

	inv := alice.newMsg("INVITE", "sip:bob@"+testDomain, "alice@"+testDomain, "bob@"+testDomain)
	alice.send(px, inv)
	req, from := bob.request(sip.INVITE)
	ok := bob.answer(req, from, 200, "OK", "bobtag")
	okUp := alice.response(200, sip.INVITE)
	waitLinger(t, p, LingerStatus{Server: 1, Client: 1})
	absorbed := p.Stats().Absorbed

	t.Run("INVITE retransmitted", func(t *testing.T) {
		alice.send(px, inv)
		bob.on(t).silent(300*time.Millisecond, isRequest(sip.INVITE), "a retransmitted INVITE")
		if n := p.Stats().Absorbed; n != absorbed+1 {
			t.Errorf("absorbed %d, want %d", n, absorbed+1)
		}
	})
	t.Run("late CANCEL", func(t *testing.T) {
		c := inv
		c.method, c.contact = "CANCEL", ""
		alice.send(px, c)
		mustCode(t, alice.on(t).final(sip.CANCEL), 200)
		bob.on(t).silent(300*time.Millisecond, isRequest(sip.CANCEL), "a CANCEL after the 200")
	})
	t.Run("2xx retransmitted", func(t *testing.T) {
		n := p.Stats().Retransmissions2xx
		bob.send(from, ok)
		again := alice.on(t).response(200, sip.INVITE)
		if again.Via().Params.GetOr("branch", "") != inv.branch || len(again.GetHeaders("Via")) != 1 {
			t.Errorf("relayed 2xx has Via %v, want only the caller's", again.GetHeaders("Via"))
		}
		if got := p.Stats().Retransmissions2xx; got != n+1 {
			t.Errorf("2xx retransmissions %d, want %d", got, n+1)
		}
	})

	alice.send(px, ackFor(inv, okUp))
	bob.request(sip.ACK)
	bye := inDialog(inv, okUp, "BYE", inv.cseq+1)
	alice.send(px, bye)
	byeReq, byeFrom := bob.request(sip.BYE)
	byeOK := bob.answer(byeReq, byeFrom, 200, "OK", "bobtag")
	first := alice.response(200, sip.BYE)
	waitLinger(t, p, LingerStatus{Server: 2, Client: 1})

	t.Run("BYE retransmitted", func(t *testing.T) {
		alice.send(px, bye)
		again := alice.on(t).response(200, sip.BYE)
		if again.String() != first.String() {
			t.Errorf("repeated 200:\n%s\nfirst:\n%s", again, first)
		}
		bob.on(t).silent(300*time.Millisecond, isRequest(sip.BYE), "a retransmitted BYE")
	})
	t.Run("200 to BYE retransmitted", func(t *testing.T) {
		strays := p.Stats().StrayResponses
		bob.send(byeFrom, byeOK)
		alice.on(t).silent(300*time.Millisecond, anyResponse, "a repeated 200 to a finished BYE")
		if n := p.Stats().StrayResponses; n != strays+1 {
			t.Errorf("stray responses %d, want %d", n, strays+1)
		}
	})
}

// TestLingerMapGenerations: an entry is kept at least one lifetime and at
// most two; a full generation is retired early and counted.
func TestLingerMapGenerations(t *testing.T) {
	now := time.Unix(1000, 0)
	clock := func() time.Time { return now }
	m := newLingerMap[int](32*time.Second, 3, clock)
	has := func(k string) bool { _, ok := m.get(k); return ok }
	m.put("a", 1)
	now = now.Add(31 * time.Second)
	if !has("a") {
		t.Fatal("a forgotten at 31 s")
	}
	now = now.Add(2 * time.Second) // the generation retires; a stays in it
	if !has("a") {
		t.Fatal("a forgotten at 33 s")
	}
	m.put("b", 2)
	now = now.Add(33 * time.Second) // a is 66 s old, b 33 s
	if has("a") || !has("b") {
		t.Fatalf("at 66 s: a kept %v (want false), b at 33 s kept %v (want true)", has("a"), has("b"))
	}
	now = now.Add(2 * 32 * time.Second) // idle: everything goes
	if n, _ := m.size(); n != 0 {
		t.Fatalf("%d entries after two idle lifetimes", n)
	}

	for _, k := range []string{"c", "d", "e", "f"} { // the 4th retires the first 3
		m.put(k, 0)
	}
	if n, cut := m.size(); n != 4 || cut != 1 {
		t.Fatalf("size %d cut %d, want 4 and 1", n, cut)
	}
	for _, k := range []string{"g", "h", "i"} { // i retires f..h's generation: c..e go
		m.put(k, 0)
	}
	if _, ok := m.get("c"); ok {
		t.Fatal("c kept past two full generations")
	}
	if v, ok := m.get("f"); !ok || v != 0 {
		t.Fatal("f lost one generation early")
	}
}

// BenchmarkCallMemory reports the live heap an answered call leaves at
// the proxy (heap-B/req, after a GC, once the call is over: INVITE, 200,
// ACK, BYE, 200), for the 64*T1 the transactions must still absorb
// retransmissions. Run with a fixed count, e.g. -benchtime 5000x.
// "daemon" is with sip.Timer_M as proxycli sets it (AcceptedBranchHold).
func BenchmarkCallMemory(b *testing.B) {
	b.Run("sipgo-timers", benchCallMemory)
	b.Run("daemon", func(b *testing.B) {
		defer func(m time.Duration) { sip.Timer_M = m }(sip.Timer_M)
		sip.Timer_M = AcceptedBranchHold
		benchCallMemory(b)
	})
}

func benchCallMemory(b *testing.B) {
	loc := newMemLocation("alice", "bob")
	_, px := startProxy(b, Config{Location: loc})
	alice, bob := newPhone(b, "127.0.0.2"), newPhone(b, "127.0.0.3")
	loc.bind("bob", "sip:bob@"+bob.addr.String(), bob.addr)
	done := 0
	call := func(int) {
		answeredCall(alice, bob, px, alice.newMsg("INVITE", "sip:bob@"+testDomain, "alice@"+testDomain, "bob@"+testDomain))
		done++
	}
	siptest.HeapPerRequest(b, call, func() int { return done }, 100*time.Millisecond)
}
