package sbc

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// rawUDP is a socket that sends hand-written requests and reads what comes
// back: a stranger's phone, or the relay target that must hear nothing.
type rawUDP struct {
	t    *testing.T
	conn *net.UDPConn
	addr netip.AddrPort
}

func newRawUDP(t *testing.T, ip string) *rawUDP {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(ip), 0)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawUDP{t: t, conn: c, addr: c.LocalAddr().(*net.UDPAddr).AddrPort()}
}

// final sends req to dst and returns the first final response.
func (u *rawUDP) final(dst netip.AddrPort, req string) *sip.Response {
	u.t.Helper()
	if _, err := u.conn.WriteToUDPAddrPort([]byte(req), dst); err != nil {
		u.t.Fatal(err)
	}
	buf := make([]byte, 65535)
	deadline := time.Now().Add(5 * time.Second)
	for {
		u.conn.SetReadDeadline(deadline)
		n, _, err := u.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			u.t.Fatalf("no final response: %v", err)
		}
		m, err := sip.ParseMessage(append([]byte(nil), buf[:n]...))
		if err != nil {
			continue
		}
		if res, ok := m.(*sip.Response); ok && res.StatusCode >= 200 {
			return res
		}
	}
}

// silent asserts nothing at all arrives for d.
func (u *rawUDP) silent(d time.Duration) {
	u.t.Helper()
	buf := make([]byte, 65535)
	u.conn.SetReadDeadline(time.Now().Add(d))
	if n, from, err := u.conn.ReadFromUDPAddrPort(buf); err == nil {
		line, _, _ := strings.Cut(string(buf[:n]), "\r\n")
		u.t.Fatalf("relay target %s got %q from %s", u.addr, line, from)
	}
}

func strangerRequest(method string, from netip.AddrPort, ruri string, routes ...string) string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format+"\r\n", a...) }
	w("%s %s SIP/2.0", method, ruri)
	w("Via: SIP/2.0/UDP %s;branch=%s;rport", from, sip.GenerateBranchN(12))
	w("Max-Forwards: 70")
	for _, r := range routes {
		w("Route: %s", r)
	}
	w("From: <sip:fluffy@example.com>;tag=%s", sip.GenerateTagN(8))
	w("To: <%s>", ruri)
	w("Call-ID: %s@relay.test", sip.GenerateTagN(16))
	w("CSeq: 1 %s", method)
	w("Contact: <sip:fluffy@%s>", from)
	w("Content-Length: 0")
	w("")
	return b.String()
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
			victim := newRawUDP(t, side.victim)
			route := "<sip:" + victim.addr.String() + ";lr>"
			for _, method := range []string{"OPTIONS", "MESSAGE", "INVITE", "REGISTER"} {
				t.Run(method, func(t *testing.T) {
					ph := newRawUDP(t, side.net+"66")
					ruri := "sip:someone@example.net"
					if method == "REGISTER" {
						ruri = "sip:example.net"
					}
					res := ph.final(side.sbc, strangerRequest(method, ph.addr, ruri, route))
					want := "Relaying Denied: Route to " + victim.addr.String() + " not allowed"
					if res.StatusCode != 403 || res.Reason != want {
						t.Errorf("got %d %q, want 403 %q", res.StatusCode, res.Reason, want)
					}
					victim.silent(300 * time.Millisecond)
				})
			}
			t.Run("behind our own Route", func(t *testing.T) {
				ph := newRawUDP(t, side.net+"66")
				res := ph.final(side.sbc, strangerRequest("MESSAGE", ph.addr, "sip:someone@example.net", "<sip:"+side.sbc.String()+";lr>", route))
				if res.StatusCode != 403 || !strings.HasPrefix(res.Reason, "Relaying Denied") {
					t.Errorf("got %d %q, want 403 Relaying Denied", res.StatusCode, res.Reason)
				}
				victim.silent(300 * time.Millisecond)
			})
		})
	}
	t.Run("own Route passes", func(t *testing.T) {
		// The SBC sends it on to the proxy, which knows no such user: the
		// answer is the proxy's 404, not the SBC's 403.
		ph := newRawUDP(t, accessNet+"67")
		res := ph.final(l.sbc.AccessAddr(), strangerRequest("MESSAGE", ph.addr, "sip:nobody@"+domain, "<sip:"+l.sbc.AccessAddr().String()+";lr>"))
		if res.StatusCode != 404 {
			t.Errorf("got %d %s, want the proxy's 404", res.StatusCode, res.Reason)
		}
	})
}
