package proxy

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// labNumbers is the lab's rule: extensions (101, *97) and E.164 numbers.
const labNumbers = `^([+][0-9]+|[0-9*#]+)$`

func TestParseUserRoute(t *testing.T) {
	hop := netip.MustParseAddrPort("10.0.0.30:5060")
	for _, tc := range []struct {
		in      string
		wantErr bool
		match   []string
		noMatch []string
		hop     netip.AddrPort
	}{
		{in: labNumbers + "=10.0.0.30:5060", hop: hop,
			match:   []string{"101", "*97", "+15551234567", "#1"},
			noMatch: []string{"bob", "bob101", "101bob", "+", "1+1", "+1*", ""}},
		{in: "[0-9]+=10.0.0.30", hop: hop, match: []string{"7"}, noMatch: []string{"a7", "7a"}},
		// Anchored around a group: "a|b" is "^(a|b)$", so "ab" is no match.
		{in: "alice|bob=10.0.0.30:5070", hop: netip.MustParseAddrPort("10.0.0.30:5070"),
			match: []string{"alice", "bob"}, noMatch: []string{"aliceb", "xbob"}},
		// The split is at the last '=', so the expression may hold one.
		{in: "a=b=10.0.0.30", hop: hop, match: []string{"a=b"}},
		{in: "[0-9=10.0.0.30:5060", wantErr: true},   // bad regex
		{in: "^[0-9]+$", wantErr: true},              // no next hop
		{in: "=10.0.0.30:5060", wantErr: true},       // no expression
		{in: "[0-9]+=pbx:5060", wantErr: true},       // names are not resolved
		{in: "[0-9]+=10.0.0.30:0", wantErr: true},    // port 0
		{in: "[0-9]*=10.0.0.30:5060", wantErr: true}, // matches the empty user
		{in: "[0-9]+=", wantErr: true},               // empty hop
	} {
		r, err := ParseUserRoute(tc.in)
		if tc.wantErr {
			if !errors.Is(err, ErrBadRoute) {
				t.Errorf("ParseUserRoute(%q) = %v, %v; want ErrBadRoute", tc.in, r, err)
			}
			continue
		}
		if err != nil || r.NextHop != tc.hop {
			t.Errorf("ParseUserRoute(%q) = %v, %v; want next hop %v", tc.in, r, err, tc.hop)
			continue
		}
		for _, u := range tc.match {
			if !r.Match(u) {
				t.Errorf("%q does not match %q", tc.in, u)
			}
		}
		for _, u := range tc.noMatch {
			if r.Match(u) {
				t.Errorf("%q matches %q", tc.in, u)
			}
		}
	}
	// Config validation refuses what the flag parser refuses, and twins.
	for name, routes := range map[string][]UserRoute{
		"bad regex": {{Expr: "(", NextHop: hop}},
		"no hop":    {{Expr: "[0-9]+"}},
		"twice":     {{Expr: "[0-9]+", NextHop: hop}, {Expr: "[0-9]+", NextHop: hop}},
	} {
		if _, err := New(Config{Location: newMemLocation(), Domain: testDomain, UserRoutes: routes}); !errors.Is(err, ErrBadRoute) {
			t.Errorf("New with %s: %v, want ErrBadRoute", name, err)
		}
	}
}

// Numbers dialled at our domain go to the PBX before location is asked:
// "101" reaches it even though a phone registered as 101, E.164 numbers
// too; names are still found by location, and a number no rule covers is
// still 404. The Request-URI reaches the PBX untouched.
func TestUserRouteSendsNumbersToPBX(t *testing.T) {
	pbx := newPhone(t, "127.0.0.9")
	bob := newPhone(t, "127.0.0.3")
	loc := newMemLocation("alice", "bob", "101")
	loc.bind("bob", "sip:bob@"+bob.addr.String(), bob.addr)
	loc.bind("101", "sip:101@"+bob.addr.String(), bob.addr)
	rt, err := ParseUserRoute(labNumbers + "=" + pbx.addr.String())
	if err != nil {
		t.Fatal(err)
	}
	p, px := startProxy(t, Config{Location: loc, UserRoutes: []UserRoute{rt}})
	alice := newPhone(t, "127.0.0.2")

	for _, user := range []string{"101", "*97", "+15551234567"} {
		routedToPBX(t, alice, pbx, px, "sip:"+user+"@"+testDomain, user+"@"+testDomain)
	}
	bob.silent(200*time.Millisecond, isRequest(sip.INVITE), "INVITE for 101 to the phone registered as 101")

	// A name is routed by location, not by the rule.
	alice.send(px, alice.newMsg("INVITE", "sip:bob@"+testDomain, "alice@"+testDomain, "bob@"+testDomain))
	req, from := bob.request(sip.INVITE)
	bob.answer(req, from, 486, "Busy Here", "bob")
	mustCode(t, alice.final(sip.INVITE), 486)
	pbx.silent(200*time.Millisecond, isRequest(sip.INVITE), "INVITE for bob")

	// Matching the whole user only: "bob101" is nobody.
	alice.send(px, alice.newMsg("MESSAGE", "sip:bob101@"+testDomain, "alice@"+testDomain, "bob101@"+testDomain))
	mustCode(t, alice.final(sip.MESSAGE), 404)
	pbx.silent(200*time.Millisecond, isRequest(sip.MESSAGE), "MESSAGE for bob101")

	if st := p.Status(); len(st.UserRoutes) != 1 || st.UserRoutes[0] != rt.String() {
		t.Errorf("status user routes %v, want [%s]", st.UserRoutes, rt)
	}
}
