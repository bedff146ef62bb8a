package sbc

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/siplab/siplab/internal/siptest"
)

// strangerRequest is the open-relay probe's request from a stranger's
// phone at from.
func strangerRequest(method string, from netip.AddrPort, ruri string, routes ...string) string {
	return siptest.Stranger(method, ruri, siptest.Via(from), from, "", routes...)
}

// The open-relay probe of issue 14 on both faces of the SBC: a stranger's
// initial request with a Route to somewhere else gets 403 naming it, and
// the target hears nothing. A Route naming the SBC itself (a phone with
// the SBC as outbound proxy) still gets through to the platform.
func TestPreloadedRouteRefusedBothRealms(t *testing.T) {
	l := newLab(t, labOpts{})
	for _, side := range []struct {
		name   string
		net    string
		sbc    netip.AddrPort
		victim string
	}{
		{"access", accessNet, l.sbc.AccessAddr(), accessNet + "75"},
		{"core", coreNet, l.sbc.CoreAddr(), coreNet + "75"},
	} {
		t.Run(side.name, func(t *testing.T) {
			victim := siptest.NewRawUDP(t, side.victim)
			route := "<sip:" + victim.Addr.String() + ";lr>"
			for _, method := range []string{"OPTIONS", "MESSAGE", "INVITE", "REGISTER"} {
				t.Run(method, func(t *testing.T) {
					ph := siptest.NewRawUDP(t, side.net+"66")
					ruri := "sip:someone@example.net"
					if method == "REGISTER" {
						ruri = "sip:example.net"
					}
					res := ph.Final(side.sbc, strangerRequest(method, ph.Addr, ruri, route))
					want := "Relaying Denied: Route to " + victim.Addr.String() + " not allowed"
					if res.StatusCode != 403 || res.Reason != want {
						t.Errorf("got %d %q, want 403 %q", res.StatusCode, res.Reason, want)
					}
					victim.Silent(300 * time.Millisecond)
				})
			}
			t.Run("behind our own Route", func(t *testing.T) {
				ph := siptest.NewRawUDP(t, side.net+"66")
				res := ph.Final(side.sbc, strangerRequest("MESSAGE", ph.Addr, "sip:someone@example.net", "<sip:"+side.sbc.String()+";lr>", route))
				if res.StatusCode != 403 || !strings.HasPrefix(res.Reason, "Relaying Denied") {
					t.Errorf("got %d %q, want 403 Relaying Denied", res.StatusCode, res.Reason)
				}
				victim.Silent(300 * time.Millisecond)
			})
		})
	}
	t.Run("own Route passes", func(t *testing.T) {
		// The SBC sends it on to the proxy, which knows no such user: the
		// answer is the proxy's 404, not the SBC's 403.
		ph := siptest.NewRawUDP(t, accessNet+"67")
		res := ph.Final(l.sbc.AccessAddr(), strangerRequest("MESSAGE", ph.Addr, "sip:nobody@"+domain, "<sip:"+l.sbc.AccessAddr().String()+";lr>"))
		if res.StatusCode != 404 {
			t.Errorf("got %d %s, want the proxy's 404", res.StatusCode, res.Reason)
		}
	})
}
