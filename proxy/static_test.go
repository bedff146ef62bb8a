package proxy

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

func TestParseRoute(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Route
		wantErr bool
	}{
		{in: "pbx.siplab.test=10.0.0.30:5060", want: Route{"pbx.siplab.test", netip.MustParseAddrPort("10.0.0.30:5060")}},
		{in: " PBX.Siplab.Test = 10.0.0.30 ", want: Route{"pbx.siplab.test", netip.MustParseAddrPort("10.0.0.30:5060")}},
		{in: "10.0.0.30=10.0.0.30:5070", want: Route{"10.0.0.30", netip.MustParseAddrPort("10.0.0.30:5070")}},
		{in: "pbx.siplab.test", wantErr: true},
		{in: "=10.0.0.30:5060", wantErr: true},
		{in: "pbx.siplab.test=", wantErr: true},
		{in: "pbx.siplab.test=pbx:5060", wantErr: true}, // the lab resolves no names
		{in: "pbx.siplab.test=10.0.0.30:0", wantErr: true},
		{in: "bob@pbx.siplab.test=10.0.0.30:5060", wantErr: true},
	} {
		got, err := ParseRoute(tc.in)
		if tc.wantErr {
			if !errors.Is(err, ErrBadRoute) {
				t.Errorf("ParseRoute(%q) = %v, %v; want ErrBadRoute", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseRoute(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestValidateRoutes(t *testing.T) {
	hop := netip.MustParseAddrPort("10.0.0.30:5060")
	for name, tc := range map[string]struct {
		routes  []Route
		wantErr bool
	}{
		"ok":          {routes: []Route{{"PBX.siplab.test", hop}, {"voicemail.siplab.test", hop}}},
		"own domain":  {routes: []Route{{testDomain, hop}}, wantErr: true},
		"twice":       {routes: []Route{{"pbx.siplab.test", hop}, {"PBX.siplab.test", hop}}, wantErr: true},
		"no next hop": {routes: []Route{{"pbx.siplab.test", netip.AddrPort{}}}, wantErr: true},
		"no domain":   {routes: []Route{{" ", hop}}, wantErr: true},
	} {
		got, err := validateRoutes(tc.routes, testDomain)
		if (err != nil) != tc.wantErr || (err != nil && !errors.Is(err, ErrBadRoute)) {
			t.Errorf("%s: err = %v, want error %v", name, err, tc.wantErr)
		}
		if err == nil && got[0].Domain != "pbx.siplab.test" {
			t.Errorf("%s: domain not normalised: %q", name, got[0].Domain)
		}
	}
	if _, err := New(Config{Location: newMemLocation(), Domain: testDomain, Routes: []Route{{testDomain, hop}}}); !errors.Is(err, ErrBadRoute) {
		t.Errorf("New with a route for its own domain: %v, want ErrBadRoute", err)
	}
}

// A static route sends requests for its domain to the next hop with the
// Request-URI untouched (the PBX reads the dialled extension from it),
// while other foreign domains are still refused: no open relay.
// routedToPBX has alice INVITE ruri (To: to) through px and checks that
// the PBX gets it with the Request-URI unchanged and a Record-Route; the
// PBX answers 486.
func routedToPBX(t *testing.T, alice, pbx *phone, px netip.AddrPort, ruri, to string) {
	t.Helper()
	alice.send(px, alice.newMsg("INVITE", ruri, "alice@"+testDomain, to))
	req, from := pbx.request(sip.INVITE)
	if req.Recipient.String() != ruri {
		t.Errorf("Request-URI at the PBX %s, want %s", req.Recipient.String(), ruri)
	}
	if req.RecordRoute() == nil {
		t.Error("no Record-Route: the PBX's in-dialog requests would bypass the proxy")
	}
	pbx.answer(req, from, 486, "Busy Here", "pbx")
	mustCode(t, alice.final(sip.INVITE), 486)
}

func TestStaticRouteToPBX(t *testing.T) {
	pbx := newPhone(t, "127.0.0.9")
	_, px := startProxy(t, Config{Location: newMemLocation("alice", "bob"),
		Routes: []Route{{"pbx.siplab.test", pbx.addr}}})
	alice := newPhone(t, "127.0.0.2")

	for _, ruri := range []string{"sip:101@pbx.siplab.test", "sip:101@PBX.siplab.test:5090"} {
		routedToPBX(t, alice, pbx, px, ruri, "101@pbx.siplab.test")
	}

	// Not listed: 403, and nothing reaches the PBX.
	alice.send(px, alice.newMsg("MESSAGE", "sip:101@"+pbx.addr.String(), "alice@"+testDomain, "101@elsewhere.test"))
	mustCode(t, alice.final(sip.MESSAGE), 403)
	alice.send(px, alice.newMsg("MESSAGE", "sip:101@evil.siplab.test", "alice@"+testDomain, "101@evil.siplab.test"))
	mustCode(t, alice.final(sip.MESSAGE), 403)
	pbx.silent(300*time.Millisecond, isRequest(sip.MESSAGE), "MESSAGE for an unrouted domain")
}
