package carrier_test

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/sipnet"
)

type rawSock struct {
	t    *testing.T
	conn *net.UDPConn
	addr netip.AddrPort
}

func newRawSock(t *testing.T, ip string) *rawSock {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(ip), 0)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawSock{t: t, conn: c, addr: c.LocalAddr().(*net.UDPAddr).AddrPort()}
}

// request sends an initial request from this socket with the given Route
// lines and returns the final response.
func (s *rawSock) request(to netip.AddrPort, method, ruri string, routes ...string) *sip.Response {
	s.t.Helper()
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format+"\r\n", a...) }
	w("%s %s SIP/2.0", method, ruri)
	w("Via: SIP/2.0/UDP %s;branch=z9hG4bK%s;rport", s.addr, sip.GenerateTagN(12))
	w("Max-Forwards: 70")
	for _, r := range routes {
		w("Route: %s", r)
	}
	w("From: <sip:fluffy@example.com>;tag=%s", sip.GenerateTagN(8))
	w("To: <%s>", ruri)
	w("Call-ID: %s@relay.test", sip.GenerateTagN(16))
	w("CSeq: 1 %s", method)
	w("Contact: <sip:fluffy@%s>", s.addr)
	w("Content-Length: 0")
	w("")
	if _, err := s.conn.WriteToUDPAddrPort([]byte(b.String()), to); err != nil {
		s.t.Fatal(err)
	}
	buf := make([]byte, 65535)
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.conn.SetReadDeadline(deadline)
		n, _, err := s.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			s.t.Fatalf("no final response to %s: %v", method, err)
		}
		m, err := sip.ParseMessage(append([]byte(nil), buf[:n]...))
		if res, ok := m.(*sip.Response); err == nil && ok && res.StatusCode >= 200 {
			return res
		}
	}
}

func (s *rawSock) silent(d time.Duration) {
	s.t.Helper()
	buf := make([]byte, 65535)
	s.conn.SetReadDeadline(time.Now().Add(d))
	if n, from, err := s.conn.ReadFromUDPAddrPort(buf); err == nil {
		line, _, _ := strings.Cut(string(buf[:n]), "\r\n")
		s.t.Fatalf("relay target got %q from %s", line, from)
	}
}

// The carrier terminates calls and relays nothing: a stranger's request
// is refused by the source ACL, and even its trusted peer's initial
// request with a Route to somewhere else gets 403 naming it; the target
// hears nothing either way. A Route naming the carrier itself is fine.
func TestCarrierRefusesRelay(t *testing.T) {
	tr := newTrunk(t, sipnet.UDP, nil)
	car := tr.cep.Addr()
	victim := newRawSock(t, "127.0.40.75")
	route := "<sip:" + victim.addr.String() + ";lr>"
	for _, method := range []string{"OPTIONS", "MESSAGE", "INVITE"} {
		t.Run("stranger "+method, func(t *testing.T) {
			s := newRawSock(t, strangerIP)
			if res := s.request(car, method, "sip:someone@example.net", route); res.StatusCode != 403 {
				t.Errorf("got %d %s, want 403", res.StatusCode, res.Reason)
			}
			victim.silent(300 * time.Millisecond)
		})
		t.Run("trusted peer "+method, func(t *testing.T) {
			s := newRawSock(t, sbcIP)
			res := s.request(car, method, "sip:+15550100@"+car.String(), route)
			want := "Relaying Denied: Route to " + victim.addr.String() + " not allowed"
			if res.StatusCode != 403 || res.Reason != want {
				t.Errorf("got %d %q, want 403 %q", res.StatusCode, res.Reason, want)
			}
			victim.silent(300 * time.Millisecond)
		})
	}
	t.Run("own Route passes", func(t *testing.T) {
		s := newRawSock(t, sbcIP)
		if res := s.request(car, "OPTIONS", "sip:"+car.String(), "<sip:"+car.String()+";lr>"); res.StatusCode != 200 {
			t.Errorf("got %d %s, want 200", res.StatusCode, res.Reason)
		}
	})
}
