package proxy

import (
	"encoding/json"
	"log/slog"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/internal/ctl"
	"github.com/siplab/siplab/internal/siptest"
)

// call sends an INVITE from ph as alice, answers the 407 with password and
// returns the final response (nil when the INVITE reached bob instead).
func guessCall(t *testing.T, ph, bob *phone, px netip.AddrPort, password string) *sip.Response {
	t.Helper()
	ruri := "sip:bob@" + testDomain
	m := ph.newMsg("INVITE", ruri, "alice@"+testDomain, "bob@"+testDomain)
	ph.send(px, m)
	chal := ph.final(sip.INVITE)
	if chal.StatusCode != 407 {
		return chal
	}
	// The ACK for the stateless 407 is absorbed, never routed to bob.
	ack := m
	ack.method, ack.toTag = "ACK", chal.To().Params.GetOr("tag", "")
	ph.send(px, ack)
	m.cseq++
	m.branch = sip.GenerateBranchN(12)
	m.extra = []string{credentials(t, chal, "INVITE", ruri, "alice", password)}
	ph.send(px, m)
	if password == "alicepw" {
		res := ph.next(func(m sip.Message) bool {
			r, ok := m.(*sip.Response)
			return ok && r.StatusCode >= 200
		}, "final response")
		_ = bob
		return res.msg.(*sip.Response)
	}
	return ph.final(sip.INVITE)
}

func TestProxyGuardBlocksGuessing(t *testing.T) {
	clk := siptest.NewClock(time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC))
	logs := &siptest.LogBuffer{}
	loc := newMemLocation("alice", "bob")
	p, px := startProxy(t, Config{Location: loc, Auth: newAuth(t), AuthInvites: true, Now: clk.Now,
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	bob := newPhone(t, "127.0.0.3")
	loc.bind("bob", "sip:bob@"+bob.addr.String(), bob.addr)
	// bob rejects every call that reaches him.
	reached := atomic.Int32{}
	go func() {
		for r := range bob.in {
			if req, ok := r.msg.(*sip.Request); ok {
				if req.IsAck() {
					if strings.HasPrefix(req.To().Params.GetOr("tag", ""), "sl") {
						t.Errorf("ACK for the proxy's 407 reached bob")
					}
					continue
				}
				reached.Add(1)
				bob.answer(req, r.from, 486, "Busy Here", "b")
			}
		}
	}()

	attacker := newPhone(t, "127.0.0.2")
	for i := 1; i < 10; i++ {
		if res := guessCall(t, attacker, bob, px, "wrong"); res.StatusCode != 407 {
			t.Fatalf("guess %d: %d", i, res.StatusCode)
		}
	}
	// The transaction is terminated right after the response leaves.
	for deadline := time.Now().Add(2 * time.Second); p.txl.Held() != 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("transactions held after 18 challenges: %d, want 0 (stateless)", p.txl.Held())
		}
	}
	res := guessCall(t, attacker, bob, px, "wrong")
	if res.StatusCode != 403 || res.Reason != "Forbidden (source blocked)" || res.GetHeader("Retry-After") == nil {
		t.Fatalf("10th guess: %d %s", res.StatusCode, res.Reason)
	}
	// Blocked: the right password, and any request, get 403 at once.
	if res := guessCall(t, attacker, bob, px, "alicepw"); res.StatusCode != 403 {
		t.Fatalf("right password from the blocked source: %d", res.StatusCode)
	}
	opt := attacker.newMsg("OPTIONS", "sip:"+testDomain, "alice@"+testDomain, testDomain)
	attacker.send(px, opt)
	mustCode(t, attacker.final(sip.OPTIONS), 403)
	// In-dialog requests still pass: a phone of a blocked site that is in
	// a call can hang up.
	bye := attacker.newMsg("BYE", "sip:bob@"+testDomain, "alice@"+testDomain, "bob@"+testDomain)
	bye.toTag = "dlg"
	attacker.send(px, bye)
	mustCode(t, attacker.final(sip.BYE), 486)
	// Another source reaches bob.
	other := newPhone(t, "127.0.0.4")
	if res := guessCall(t, other, bob, px, "alicepw"); res.StatusCode != 486 {
		t.Fatalf("another source: %d", res.StatusCode)
	}
	st := p.Status().Guard
	if len(st.Blocked) != 1 || st.Blocked[0].Source.String() != "127.0.0.2" || st.FailedAuths != 10 {
		t.Fatalf("guard status: %+v", st)
	}
	if n := len(logs.Lines(`msg="auth failed" component=proxy src=127.0.0.2 user=alice reason="wrong response"`)); n != 10 {
		t.Fatalf("%d auth failed lines, want 10", n)
	}
	if n := len(logs.Lines(`level=WARN msg="source blocked" component=proxy src=127.0.0.2 user=alice reason="failed_auth: 10 in 1m0s"`)); n != 1 {
		t.Fatalf("%d block lines, want 1", n)
	}
	// The block ends with the injected clock.
	clk.Advance(5*time.Minute + time.Second)
	if res := guessCall(t, attacker, bob, px, "alicepw"); res.StatusCode != 486 {
		t.Fatalf("after the block: %d", res.StatusCode)
	}
	if reached.Load() != 3 {
		t.Fatalf("bob was reached %d times, want 3 (two calls, one BYE)", reached.Load())
	}
}

// Sources in GuardTrusted (an SBC) are never blocked.
func TestProxyGuardTrusted(t *testing.T) {
	loc := newMemLocation("alice", "bob")
	_, px := startProxy(t, Config{Location: loc, Auth: newAuth(t), AuthInvites: true,
		GuardTrusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.5/32")}})
	bob := newPhone(t, "127.0.0.3")
	loc.bind("bob", "sip:bob@"+bob.addr.String(), bob.addr)
	sbc := newPhone(t, "127.0.0.5")
	for i := range 15 {
		if res := guessCall(t, sbc, bob, px, "wrong"); res.StatusCode != 407 {
			t.Fatalf("guess %d from a trusted source: %d", i, res.StatusCode)
		}
	}
}

func TestProxyTransactionCap(t *testing.T) {
	loc := newMemLocation("alice", "bob")
	p, px := startProxy(t, Config{Location: loc})
	bob := newPhone(t, "127.0.0.3")
	loc.bind("bob", "sip:bob@"+bob.addr.String(), bob.addr)
	if _, err := p.SetGuard("max_transactions", "1"); err != nil {
		t.Fatal(err)
	}
	caller := newPhone(t, "127.0.0.2")
	inv := caller.newMsg("INVITE", "sip:bob@"+testDomain, "carol@other.test", "bob@"+testDomain)
	caller.send(px, inv)
	req, from := bob.request(sip.INVITE) // ringing, unanswered: one transaction held
	second := newPhone(t, "127.0.0.4")
	opt := second.newMsg("OPTIONS", "sip:bob@"+testDomain, "dave@other.test", "bob@"+testDomain)
	second.send(px, opt)
	res := second.final(sip.OPTIONS)
	if res.StatusCode != 503 || res.GetHeader("Retry-After") == nil {
		t.Fatalf("over the cap: %d %s", res.StatusCode, res.Reason)
	}
	// An in-dialog request is never refused for the cap.
	bye := opt
	bye.method, bye.toTag, bye.cseq, bye.branch = "BYE", "dlg", 2, sip.GenerateBranchN(12)
	second.send(px, bye)
	if r, _ := bob.request(sip.BYE); r == nil {
		t.Fatal("in-dialog BYE not forwarded")
	}
	if st := p.Status().Guard; st.Overloaded != 1 || st.Settings.MaxTransactions != 1 {
		t.Fatalf("guard status: %+v", st)
	}
	bob.answer(req, from, 486, "Busy Here", "b")
	mustCode(t, caller.final(sip.INVITE), 486)
	if _, err := p.SetGuard("max_transactions", "-1"); err == nil {
		t.Fatal("negative cap accepted")
	}
	if _, err := p.SetGuard("auth_fail_limit", "3"); err != nil || p.GuardSettings().FailLimit != 3 {
		t.Fatalf("auth_fail_limit: %v %+v", err, p.GuardSettings())
	}
}

// The control API takes the guard's settings beside the NAT toggles.
func TestGuardControlAPI(t *testing.T) {
	p, _ := startProxy(t, Config{Location: newMemLocation("alice")})
	do := serveControl(t, p)
	if code, body := do("/set", ctl.SetRequest{Name: "auth_fail_limit", Value: "20"}); code != 200 || !strings.Contains(body, `"auth_fail_limit": 20`) {
		t.Fatalf("set auth_fail_limit: %d %s", code, body)
	}
	if code, _ := do("/set", ctl.SetRequest{Name: "auth_block_for", Value: "10m"}); code != 200 || p.GuardSettings().BlockFor != "10m0s" {
		t.Fatalf("set auth_block_for: %d %+v", code, p.GuardSettings())
	}
	if code, _ := do("/set", ctl.SetRequest{Name: "auth_fail_window", Value: "0"}); code != 400 {
		t.Fatalf("zero window: %d, want 400", code)
	}
	if code, body := do("/set", ctl.SetRequest{Name: "rport", Value: "force"}); code != 200 || !strings.Contains(body, `"rport": "force"`) {
		t.Fatalf("NAT toggle: %d %s", code, body)
	}
	if code, body := do("/unblock", ctl.UnblockRequest{Source: "203.0.113.66"}); code != 200 || !strings.Contains(body, `"unblocked": false`) {
		t.Fatalf("unblock: %d %s", code, body)
	}
	if code, _ := do("/unblock", ctl.UnblockRequest{Source: "nope"}); code != 400 {
		t.Fatalf("unblock of a non-address: %d", code)
	}
	var st Status
	_, body := do("/status", nil)
	if err := json.Unmarshal([]byte(body), &st); err != nil || st.Guard.Settings.FailLimit != 20 {
		t.Fatalf("status: %v %+v", err, st.Guard)
	}
}

// The attack through the proxy: wrong-password REGISTERs from one
// source are relayed to the registrar, which judges the source the
// proxy's Path records, blocks it (403 relayed back) and lets another
// source register. The relayed 401s keep no transaction at the proxy.
func TestRegisterGuessingThroughProxy(t *testing.T) {
	reg, regAddr := startRegistrar(t)
	p, px := startProxy(t, Config{Location: reg, Registrar: regAddr.String()})
	attacker := newPhone(t, "127.0.0.2")
	guess := func(password string) *sip.Response {
		m := attacker.newMsg("REGISTER", "sip:"+testDomain, "alice@"+testDomain, "alice@"+testDomain)
		m.extra = []string{"Expires: 300"}
		attacker.send(px, m)
		chal := attacker.final(sip.REGISTER)
		if chal.StatusCode != 401 {
			return chal
		}
		return withDigest(t, attacker, px, m, chal, "alice", password)
	}
	for i := 1; i < 10; i++ {
		mustCode(t, guess("wrong"), 401)
	}
	for deadline := time.Now().Add(2 * time.Second); p.txl.Held() != 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("proxy holds %d transactions after relayed 401s, want 0", p.txl.Held())
		}
	}
	res := guess("wrong")
	if res.StatusCode != 403 || res.Reason != "Forbidden (source blocked)" {
		t.Fatalf("10th guess: %d %s", res.StatusCode, res.Reason)
	}
	mustCode(t, guess("alicepw"), 403)
	if b := reg.Blocked(); len(b) != 1 || b[0].Source.String() != "127.0.0.2" {
		t.Fatalf("registrar blocked %+v, want the phone's source, not the proxy", b)
	}
	other := newPhone(t, "127.0.0.4")
	mustCode(t, register(t, other, px, "bob", "bobpw", "sip:bob@"+other.addr.String()), 200)
}

// The ACK for a stateless 407 ends in the socket's read loop: counted
// there, never parsed into a request the proxy handles, never routed.
func TestStatelessACKEndsUnparsed(t *testing.T) {
	loc := newMemLocation("alice", "bob")
	p, px := startProxy(t, Config{Location: loc, Auth: newAuth(t), AuthInvites: true})
	alice, bob := newPhone(t, "127.0.0.2"), newPhone(t, "127.0.0.3")
	loc.bind("bob", "sip:bob@"+bob.addr.String(), bob.addr)
	m := alice.newMsg("INVITE", "sip:bob@"+testDomain, "alice@"+testDomain, "bob@"+testDomain)
	alice.send(px, m)
	chal := alice.final(sip.INVITE)
	mustCode(t, chal, 407)
	ack := m
	ack.method, ack.toTag = "ACK", chal.To().Params.GetOr("tag", "")
	alice.send(px, ack)
	bob.silent(300*time.Millisecond, isRequest(sip.ACK), "the ACK for a 407")
	if n := p.Status().Guard.AbsorbedACKs; n != 1 {
		t.Errorf("ACKs absorbed in the read loop: %d, want 1", n)
	}
	if n := p.Stats().Requests["ACK"]; n != 0 {
		t.Errorf("%d ACKs reached the proxy's handler, want 0", n)
	}
}
