// Package siptest holds what several daemons' tests share to speak SIP by
// hand: a raw UDP socket that sends written requests and reads the final
// answer, or asserts it hears nothing (the relay target of the open-relay
// probe, issue 14), and that probe's request.
package siptest

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/siplab/siplab/sip/sipnet"
)

// RawUDP is a socket that sends hand-written requests and reads what comes
// back: a stranger's phone, or the relay target that must hear nothing.
type RawUDP struct {
	t    testing.TB
	Conn *net.UDPConn
	Addr netip.AddrPort
}

// NewRawUDP binds a socket on ip (any port), closed when the test ends.
func NewRawUDP(t testing.TB, ip string) *RawUDP {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(ip), 0)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &RawUDP{t: t, Conn: c, Addr: c.LocalAddr().(*net.UDPAddr).AddrPort()}
}

// Final sends req to dst and returns the first final response; it fails
// the test when none comes within 5s.
func (u *RawUDP) Final(dst netip.AddrPort, req string) *sip.Response {
	u.t.Helper()
	if _, err := u.Conn.WriteToUDPAddrPort([]byte(req), dst); err != nil {
		u.t.Fatal(err)
	}
	buf := make([]byte, 65535)
	deadline := time.Now().Add(5 * time.Second)
	for {
		u.Conn.SetReadDeadline(deadline)
		n, _, err := u.Conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			u.t.Fatalf("no final response: %v", err)
		}
		m, err := sip.ParseMessage(append([]byte(nil), buf[:n]...))
		if res, ok := m.(*sip.Response); err == nil && ok && res.StatusCode >= 200 {
			return res
		}
	}
}

// Silent asserts nothing at all arrives for d.
func (u *RawUDP) Silent(d time.Duration) {
	u.t.Helper()
	buf := make([]byte, 65535)
	u.Conn.SetReadDeadline(time.Now().Add(d))
	if n, from, err := u.Conn.ReadFromUDPAddrPort(buf); err == nil {
		line, _, _ := strings.Cut(string(buf[:n]), "\r\n")
		u.t.Fatalf("relay target %s got %q from %s", u.Addr, line, from)
	}
}

// Via is a top Via value for a request sent from addr, asking for rport.
func Via(addr netip.AddrPort) string {
	return fmt.Sprintf("SIP/2.0/UDP %s;branch=%s;rport", addr, sip.GenerateBranchN(12))
}

// Stranger writes an initial request from fluffy@example.com, as the
// issue's probe did: top Via via, Contact at contact, the given Route
// lines, and sdp (when not empty) as an application/sdp body.
func Stranger(method, ruri, via string, contact netip.AddrPort, sdp string, routes ...string) string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format+"\r\n", a...) }
	w("%s %s SIP/2.0", method, ruri)
	w("Via: %s", via)
	w("Max-Forwards: 70")
	for _, r := range routes {
		w("Route: %s", r)
	}
	w("From: <sip:fluffy@example.com>;tag=%s", sip.GenerateTagN(8))
	w("To: <%s>", ruri)
	w("Call-ID: %s@relay.test", sip.GenerateTagN(16))
	w("CSeq: 1 %s", method)
	w("Contact: <sip:fluffy@%s>", contact)
	if sdp != "" {
		w("Content-Type: application/sdp")
	}
	w("Content-Length: %d", len(sdp))
	w("")
	return b.String() + sdp
}

// Listen binds a SIP endpoint on ip:0 (UDP and TCP), plus a TLS listener
// on ip:0 when tlsCfg is set; it is closed when the test ends.
func Listen(t testing.TB, ip string, tlsCfg *tls.Config, log *slog.Logger) *sipnet.Endpoint {
	t.Helper()
	c := sipnet.Config{Listen: ip + ":0", Logger: log, TLS: tlsCfg}
	if tlsCfg != nil {
		c.TLSListen = ip + ":0"
	}
	ep, err := sipnet.Listen(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ep.Close() })
	return ep
}
