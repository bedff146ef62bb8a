package proxy

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

func TestLocalAnswers(t *testing.T) {
	loc := newMemLocation("alice", "bob", "carol") // carol: known, never registered
	_, px := startProxy(t, Config{Location: loc})
	alice := newPhone(t, "127.0.0.2")

	tests := []struct {
		name string
		edit func(*msg)
		want int
	}{
		{"unknown user", func(m *msg) { m.ruri, m.to = "sip:nobody@"+testDomain, "nobody@"+testDomain }, 404},
		{"no binding", func(m *msg) { m.ruri, m.to = "sip:carol@"+testDomain, "carol@"+testDomain }, 480},
		{"max-forwards exhausted", func(m *msg) { m.maxFwd = -1 }, 483},
		{"other domain, relay off", func(m *msg) { m.ruri, m.to = "sip:dave@elsewhere.test", "dave@elsewhere.test" }, 403},
		{"unsupported proxy extension", func(m *msg) { m.extra = []string{"Proxy-Require: frobnicate"} }, 420},
		{"unknown URI scheme", func(m *msg) { m.ruri = "xmpp:bob@" + testDomain }, 416},
		{"OPTIONS to the proxy itself", func(m *msg) { m.method, m.ruri = "OPTIONS", "sip:"+testDomain }, 200},
		{"MESSAGE to the proxy itself", func(m *msg) { m.method, m.ruri = "MESSAGE", "sip:"+testDomain }, 404},
		{"CANCEL matching nothing", func(m *msg) { m.method = "CANCEL" }, 481},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := alice.newMsg("INVITE", "sip:bob@"+testDomain, "alice@"+testDomain, "bob@"+testDomain)
			tc.edit(&m)
			alice.send(px, m)
			mustCode(t, alice.final(sip.RequestMethod(m.method)), tc.want)
		})
	}
}

// A binding whose contact is the proxy itself makes a real loop: the
// request spirals once (the Request-URI changes), then comes back
// unchanged and is refused with 482.
func TestLoopDetected(t *testing.T) {
	loc := newMemLocation("alice", "bob")
	p, px := startProxy(t, Config{Location: loc})
	loc.bind("bob", "sip:bob@"+px.String(), px)
	alice := newPhone(t, "127.0.0.2")
	m := alice.newMsg("INVITE", "sip:bob@"+testDomain, "alice@"+testDomain, "bob@"+testDomain)
	alice.send(px, m)
	mustCode(t, alice.final(sip.INVITE), 482)
	if n := p.Stats().Loops; n != 1 {
		t.Errorf("loops counter %d, want 1", n)
	}
}

func TestRecordRouteToggle(t *testing.T) {
	for _, rr := range []string{"on", "off"} {
		t.Run(rr, func(t *testing.T) {
			loc := newMemLocation("alice", "bob")
			p, px := startProxy(t, Config{Location: loc})
			if _, err := p.Set("record_route", rr); err != nil {
				t.Fatal(err)
			}
			alice, bob := newPhone(t, "127.0.0.2"), newPhone(t, "127.0.0.3")
			loc.bind("bob", "sip:bob@"+bob.addr.String(), bob.addr)
			alice.send(px, alice.newMsg("INVITE", "sip:bob@"+testDomain, "alice@"+testDomain, "bob@"+testDomain))
			req, from := bob.request(sip.INVITE)
			if got := req.RecordRoute() != nil; got != (rr == "on") {
				t.Errorf("record_route %s: Record-Route present = %v", rr, got)
			}
			bob.answer(req, from, 486, "Busy Here", "b")
			mustCode(t, alice.final(sip.INVITE), 486)
		})
	}
}

// ringThenCancel has alice INVITE bob through px, bob ring (To tag
// bobtag) and alice CANCEL once the 180 reached her. It returns alice's
// INVITE and bob's copy of it with its source.
func ringThenCancel(alice, bob *phone, px netip.AddrPort) (msg, *sip.Request, netip.AddrPort) {
	inv := alice.newMsg("INVITE", "sip:bob@"+testDomain, "alice@"+testDomain, "bob@"+testDomain)
	alice.send(px, inv)
	req, from := bob.request(sip.INVITE)
	bob.answer(req, from, 180, "Ringing", "bobtag")
	alice.response(180, sip.INVITE)
	cancel := inv
	cancel.method, cancel.contact = "CANCEL", ""
	alice.send(px, cancel)
	return inv, req, from
}

func TestCancelWhileRinging(t *testing.T) {
	loc := newMemLocation("alice", "bob")
	_, px := startProxy(t, Config{Location: loc})
	alice, bob := newPhone(t, "127.0.0.2"), newPhone(t, "127.0.0.3")
	loc.bind("bob", "sip:bob@"+bob.addr.String(), bob.addr)

	inv, req, from := ringThenCancel(alice, bob, px)
	mustCode(t, alice.final(sip.CANCEL), 200)
	terminated := alice.final(sip.INVITE)
	mustCode(t, terminated, 487)

	c, cfrom := bob.request(sip.CANCEL)
	if b1, b2 := c.Via().Params.GetOr("branch", ""), req.Via().Params.GetOr("branch", ""); b1 != b2 {
		t.Errorf("downstream CANCEL branch %q, INVITE branch %q: must match", b1, b2)
	}
	bob.answer(c, cfrom, 200, "OK", "")
	bob.answer(req, from, 487, "Request Terminated", "bobtag")
	ack, _ := bob.request(sip.ACK) // the proxy's client transaction ACKs the 487
	if ack.Via().SentBy() != px.String() {
		t.Errorf("ACK for 487 from %s, want the proxy", ack.Via().SentBy())
	}

	// The caller's ACK for its 487 ends at the proxy (hop by hop).
	a := inv
	a.method, a.contact = "ACK", ""
	a.toTag, _ = terminated.To().Params.Get("tag")
	alice.send(px, a)
	bob.silent(300*time.Millisecond, isRequest(sip.ACK), "the caller's ACK for a non-2xx")
}

func TestForwards2xxRetransmissions(t *testing.T) {
	loc := newMemLocation("alice", "bob")
	p, px := startProxy(t, Config{Location: loc})
	alice, bob := newPhone(t, "127.0.0.2"), newPhone(t, "127.0.0.3")
	loc.bind("bob", "sip:bob@"+bob.addr.String(), bob.addr)

	alice.send(px, alice.newMsg("INVITE", "sip:bob@"+testDomain, "alice@"+testDomain, "bob@"+testDomain))
	req, from := bob.request(sip.INVITE)
	ok := bob.answer(req, from, 200, "OK", "bobtag")
	alice.response(200, sip.INVITE)
	// The callee did not get an ACK and repeats its 200 (RFC 3261 §13.3.1.4).
	bob.send(from, ok)
	alice.response(200, sip.INVITE)
	if n := p.Stats().Retransmissions2xx; n != 1 {
		t.Errorf("2xx retransmissions counter %d, want 1", n)
	}
}

func TestTimerC(t *testing.T) {
	loc := newMemLocation("alice", "bob")
	p, px := startProxy(t, Config{Location: loc, TimerC: 300 * time.Millisecond})
	alice, bob := newPhone(t, "127.0.0.2"), newPhone(t, "127.0.0.3")
	loc.bind("bob", "sip:bob@"+bob.addr.String(), bob.addr)

	alice.send(px, alice.newMsg("INVITE", "sip:bob@"+testDomain, "alice@"+testDomain, "bob@"+testDomain))
	req, from := bob.request(sip.INVITE)
	bob.answer(req, from, 180, "Ringing", "bobtag") // and then rings forever
	alice.response(180, sip.INVITE)

	c, cfrom := bob.request(sip.CANCEL)
	if r := c.GetHeader("Reason"); r == nil {
		t.Error("Timer C CANCEL carries no Reason")
	}
	bob.answer(c, cfrom, 200, "OK", "")
	bob.answer(req, from, 487, "Request Terminated", "bobtag")
	mustCode(t, alice.final(sip.INVITE), 408)
	if n := p.Stats().TimerC; n != 1 {
		t.Errorf("timer C counter %d, want 1", n)
	}
}

// forked is one branch of a forked INVITE: the phone and what it got.
type forked struct {
	ph   *phone
	req  *sip.Request
	from netip.AddrPort
}

func (b forked) answer(code int, reason, tag string) { b.ph.answer(b.req, b.from, code, reason, tag) }

// forkToTwo has alice INVITE bob through a proxy that finds bob at two
// phones (127.0.0.3 and .4); it returns alice and both branches.
func forkToTwo(t *testing.T) (alice *phone, one, two forked) {
	t.Helper()
	loc := newMemLocation("alice", "bob")
	_, px := startProxy(t, Config{Location: loc})
	alice, one.ph, two.ph = newPhone(t, "127.0.0.2"), newPhone(t, "127.0.0.3"), newPhone(t, "127.0.0.4")
	loc.bind("bob", "sip:bob@"+one.ph.addr.String(), one.ph.addr)
	loc.bind("bob", "sip:bob@"+two.ph.addr.String(), two.ph.addr)
	alice.send(px, alice.newMsg("INVITE", "sip:bob@"+testDomain, "alice@"+testDomain, "bob@"+testDomain))
	one.req, one.from = one.ph.request(sip.INVITE)
	two.req, two.from = two.ph.request(sip.INVITE)
	return alice, one, two
}

func TestForkFirst2xxWins(t *testing.T) {
	alice, desk, mobile := forkToTwo(t)
	desk.answer(180, "Ringing", "desk")
	mobile.answer(180, "Ringing", "mobile")
	mobile.answer(200, "OK", "mobile")
	ok := alice.final(sip.INVITE)
	mustCode(t, ok, 200)
	if tag, _ := ok.To().Params.Get("tag"); tag != "mobile" {
		t.Errorf("200 from %q, want mobile", tag)
	}
	c, cfrom := desk.ph.request(sip.CANCEL)
	desk.ph.answer(c, cfrom, 200, "OK", "")
	desk.answer(487, "Request Terminated", "desk")
	desk.ph.request(sip.ACK)
	alice.silent(300*time.Millisecond, func(m sip.Message) bool {
		r, ok := m.(*sip.Response)
		return ok && r.StatusCode >= 300
	}, "a failure after the 200")
}

func TestForkAllFail(t *testing.T) {
	tests := []struct {
		codes []int
		want  int
	}{
		{[]int{500, 486}, 486}, // lowest class wins
		{[]int{486, 603}, 603}, // 6xx wins
		{[]int{503, 503}, 500}, // 503 must not travel upstream
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.codes), func(t *testing.T) {
			alice, one, two := forkToTwo(t)
			one.answer(tc.codes[0], "First", "one")
			two.answer(tc.codes[1], "Second", "two")
			mustCode(t, alice.final(sip.INVITE), tc.want)
		})
	}
}

func TestBestResponse(t *testing.T) {
	mk := func(codes ...int) []*sip.Response {
		var out []*sip.Response
		for _, c := range codes {
			out = append(out, sip.NewResponse(c, "x"))
		}
		return out
	}
	tests := []struct {
		codes []int
		want  int
	}{
		{[]int{404, 302}, 302},
		{[]int{480, 407}, 407},
		{[]int{500, 600, 200}, 600},
		{[]int{408, 486}, 408},
		{[]int{503}, 500},
	}
	for _, tc := range tests {
		if got := bestResponse(mk(tc.codes...)).StatusCode; got != tc.want {
			t.Errorf("best of %v = %d, want %d", tc.codes, got, tc.want)
		}
	}
	if bestResponse(nil) != nil {
		t.Error("best of nothing must be nil")
	}

	// Challenges: one branch's stays single (phones send one answer per
	// challenge: a duplicate made baresip answer twice and get 400), two
	// branches' are merged (§16.7 step 7).
	challenge := func(code int, realm string) *sip.Response {
		r := sip.NewResponse(code, "Auth")
		name := "WWW-Authenticate"
		if code == 407 {
			name = "Proxy-Authenticate"
		}
		r.AppendHeader(sip.NewHeader(name, `Digest realm="`+realm+`"`))
		return r
	}
	one := bestResponse([]*sip.Response{challenge(401, "a")})
	if n := len(one.GetHeaders("WWW-Authenticate")); n != 1 {
		t.Errorf("single 401 relayed with %d challenges", n)
	}
	two := bestResponse([]*sip.Response{challenge(407, "a"), sip.NewResponse(486, "Busy"), challenge(407, "b")})
	if n := len(two.GetHeaders("Proxy-Authenticate")); n != 2 {
		t.Errorf("two 407s merged into %d challenges, want 2", n)
	}
}

// The callee answers 200 just as the caller's CANCEL goes through: the
// caller gets its 487 and then the 200, which it must ACK and BYE. The
// caller is on TCP: over UDP sipgo's Timer G would happen to resend the
// latest response handed to the finished transaction and hide the bug.
func TestCancelRacing2xx(t *testing.T) {
	loc := newMemLocation("alice", "bob")
	_, px := startProxy(t, Config{Location: loc})
	alice, bob := newTCPPhone(t, "127.0.0.2", px), newPhone(t, "127.0.0.3")
	loc.bind("bob", "sip:bob@"+bob.addr.String(), bob.addr)

	inv, req, from := ringThenCancel(alice, bob, px)
	alice.response(487, sip.INVITE)

	c, cfrom := bob.request(sip.CANCEL)
	bob.answer(req, from, 200, "OK", "bobtag") // too late to cancel
	bob.answer(c, cfrom, 200, "OK", "")
	ok := alice.response(200, sip.INVITE)
	ack := ackFor(inv, ok)
	alice.send(px, ack)
	bob.request(sip.ACK)
}
